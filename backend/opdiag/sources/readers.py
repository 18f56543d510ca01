"""Format detection and parsing of every trace format opdiag accepts, into ``opdiag.model``.

Accepted, auto-detected (research/jaeger.md §1.3, §2.2; SPEC "Traces in"):

* legacy Jaeger JSON: the ``/api/traces`` envelope ``{data:[trace…], errors}``, one trace
  object ``{traceID, spans, processes}`` (also Jaeger UI's download/transformed form), a list
  of trace objects, and the anonymizer/Elasticsearch bare array of spans with an embedded
  ``process``;
* OTLP-JSON: ``{resourceSpans}``, the api_v3 body ``{result:{resourceSpans}}``, the api_v3
  error body, and files with one such object per line (OTel file exporters);
* the OpenTelemetry Python SDK ``ConsoleSpanExporter`` output: pretty-printed span objects
  written one after another.

Decisions worth knowing:

* A span whose ``processID`` is not in ``processes`` is kept, with service ``"unknown"`` and
  a span warning: losing the span would hide evidence, the service name is only a label.
* api_v3 ``404`` bodies ("No traces found", unknown trace) are an empty result, not an error;
  any other api_v3 error body, or a legacy envelope holding only ``errors``, is an error.
* Jaeger's trace-summaries, services, operations and dependency bodies hold no spans and are
  refused with a message that says what they are.
* Parsing is hand-written (no pydantic per span): a 100k-span file is a hot loop. The raw
  document handed to :func:`parse_bytes` is consumed while the model is built, so both never
  sit in memory whole at once.

Where the code is: ``documents`` tells the formats apart (and runs the typed path),
``legacy_typed``/``otlp_typed`` are the typed fast paths over ``schema``'s msgspec structs,
``legacy_json``/``otlp_json``/``console_json`` the general path over plain JSON values, and
``reader_base`` what they share (collector, failures, id, time and value checks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import orjson

from opdiag.errors import TraceFormatError
from opdiag.gcpause import gc_paused
from opdiag.model import Trace
from opdiag.sources.documents import CutOff, dispatch, documents, json_problem
from opdiag.sources.documents import typed as _typed
from opdiag.sources.rawbytes import (
    DEFAULT_MAX_BYTES,
    has_surrogate_escape,
    is_utf8,
    read_regular_file,
    repair_surrogates,
    text_bytes,
    utf8_problem,
)
from opdiag.sources.reader_base import MAX_TIME_US, UNKNOWN_SERVICE, Collector, Fail, otlp_id

__all__ = [
    "MAX_TIME_US",
    "UNKNOWN_SERVICE",
    "otlp_id",
    "parse_bytes",
    "parse_document",
    "read_file",
]


_NESTED_TOO_DEEPLY = (
    "a value where the format wants a name, id, time or message is JSON nested too deeply "
    "to read"
)
# A document whose first MiB is more than this share of blanks is compacted before decoding.
_SAMPLE = 1 << 20
_BLANK_SHARE = 0.2


def read_file(path: Path | str, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Trace]:
    """Read and parse one trace file of any accepted format (gzip-compressed too); only
    regular files of at most ``max_bytes`` are read."""
    p = Path(path)
    return _parse_taken([read_regular_file(p, max_bytes)], str(p), max_bytes)


def parse_bytes(data: bytes, source: str, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Trace]:
    """Parse the bytes of a file or HTTP body; ``source`` names it in every error."""
    return _parse_taken([data], source, max_bytes)


def _parse_taken(box: list[bytes], source: str, max_bytes: int) -> list[Trace]:
    """``parse_bytes`` of the bytes taken out of ``box``: when nothing else holds them (a file
    just read), each larger form is freed as soon as the smaller one exists (gzip inflated,
    a pretty-printed document compacted)."""
    data = text_bytes(box.pop(), source, max_bytes)
    if not data or data.isspace():  # not data.strip(): that copies a 70 MB file
        raise TraceFormatError("empty, no JSON document", source=source)
    data = _compacted(data)
    with gc_paused():
        try:
            return _parse_bytes(data, source)
        except RecursionError:  # a name, id or message that is a list in a list …
            raise TraceFormatError(_NESTED_TOO_DEEPLY, source=source) from None


def _compacted(data: bytes) -> bytes:
    """A pretty-printed document without its whitespace (every token kept as it is), or
    ``data`` itself when it is mostly tokens already or is not one JSON document (the general
    path reads it as it is). Indent 4 is 60 % whitespace: the typed decoder then reads and
    keeps slices of a third of the bytes."""
    sample = data[:_SAMPLE]
    if sample.count(b" ") + sample.count(b"\n") < len(sample) * _BLANK_SHARE:
        return data
    if not is_utf8(data):  # errors in other text name offsets of the bytes as they came
        return data
    try:
        return msgspec.json.format(data, indent=-1)
    except (msgspec.DecodeError, RecursionError):  # the general path words it
        return data


def _parse_bytes(data: bytes, source: str) -> list[Trace]:
    # The typed decoder refuses lone surrogate escapes wherever they are, so a document it
    # takes holds none; the others are repaired before the general path reads them.
    typed = _typed(data, source) if is_utf8(data) else None
    if typed is not None:
        return typed
    if has_surrogate_escape(data):
        data = repair_surrogates(data)
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if not exc.msg.startswith("unexpected content after document"):
            problem = utf8_problem(data)
            raise TraceFormatError(problem or json_problem(exc), source=source) from None
        collector = Collector(source)
        try:
            for where, one in documents(data):
                dispatch(one, where, collector, consume=True)
        except Fail as fail:
            raise TraceFormatError(str(fail), source=source) from None
        except CutOff as cut:
            # every trace of the file may miss the spans of that line: each says so
            for tid in collector.spans:
                collector.warn(
                    tid, f"line {cut.line} of {source} is cut off and was not read ({cut.problem})"
                )
        return collector.finish()
    collector = Collector(source)
    try:
        dispatch(doc, "", collector, consume=True)
    except Fail as fail:
        raise TraceFormatError(str(fail), source=source) from None
    del doc
    return collector.finish()


def parse_document(obj: Any, source: str) -> list[Trace]:
    """Parse an already-decoded JSON document (e.g. an HTTP response); ``obj`` is not changed."""
    collector = Collector(source)
    with gc_paused():
        try:
            dispatch(obj, "", collector, consume=False)
        except Fail as fail:
            raise TraceFormatError(str(fail), source=source) from None
        except RecursionError:
            raise TraceFormatError(_NESTED_TOO_DEEPLY, source=source) from None
        return collector.finish()
