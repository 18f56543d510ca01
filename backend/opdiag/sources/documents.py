"""Which format a decoded document is, and the files that hold several documents (one per
line, or pretty-printed ones one after another); the typed path's own dispatch too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson
from msgspec import UNSET

from opdiag.model import Trace
from opdiag.sources import schema
from opdiag.sources.console_json import console_span
from opdiag.sources.legacy_json import legacy_spans, legacy_trace
from opdiag.sources.legacy_typed import Shared, legacy_typed
from opdiag.sources.otlp_json import otlp_document
from opdiag.sources.otlp_typed import otlp_typed
from opdiag.sources.reader_base import Collector, Fail, General, at

_MAX_KEYS_SHOWN = 8


def json_problem(exc: orjson.JSONDecodeError, line: int | None = None) -> str:
    where = f"line {exc.lineno if line is None else line} column {exc.colno}"
    if "depth" in exc.msg:  # valid JSON, but deeper than the decoder goes (1024 levels)
        return f"JSON nested too deeply to read (more than 1024 levels, at {where})"
    if exc.pos >= len(exc.doc) - 1 or "end of data" in exc.msg or "EOF" in exc.msg:
        return f"not valid JSON, the file looks truncated ({exc.msg} at {where})"
    return f"not valid JSON ({exc.msg} at {where})"


class CutOff(Exception):
    """The last line of a one-document-per-line file is cut off (an exporter killed while
    writing, a copy taken while it wrote): the lines before it are whole and were read."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem


def documents(data: bytes) -> Iterator[tuple[str, Any]]:
    """Several JSON documents in one file: one per line (OTel file exporters) or
    pretty-printed ones one after another (OTel ConsoleSpanExporter). A cut-off last line
    ends the documents with ``CutOff`` once the whole lines before it are given."""
    lines = data.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), 0)
    try:
        first_doc = orjson.loads(lines[first])
    except orjson.JSONDecodeError:
        first_doc = None
    if isinstance(first_doc, dict | list):
        for i in range(first, len(lines)):
            line = lines[i]
            lines[i] = b""
            if not line.strip():
                continue
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                problem = json_problem(exc, i + 1)
                last = not any(rest.strip() for rest in lines[i + 1 :])
                ended = "end of data" in exc.msg or "EOF" in exc.msg  # not just malformed
                if last and i > first and ended:
                    raise CutOff(i + 1, problem) from None
                raise Fail("", problem) from None
            yield f"line {i + 1}", doc
        return
    del lines
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Fail("", f"not UTF-8 text (byte {exc.start})") from None
    decoder = json.JSONDecoder()
    pos, n, index = 0, len(text), 0
    while True:
        while pos < n and text[pos] in " \t\r\n":
            pos += 1
        if pos >= n:
            return
        try:
            doc, pos = decoder.raw_decode(text, pos)
        except RecursionError:
            raise Fail(f"document {index + 1}", "JSON nested too deeply") from None
        except json.JSONDecodeError as exc:
            truncated = " (the file looks truncated)" if exc.pos >= n - 1 else ""
            raise Fail(
                "", f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}){truncated}"
            ) from None
        yield f"document {index + 1}", doc
        index += 1


def keys_of(obj: dict) -> str:
    keys = [str(k)[:40] for k in list(obj)[:_MAX_KEYS_SHOWN]]
    more = ", …" if len(obj) > _MAX_KEYS_SHOWN else ""
    return ", ".join(repr(k) for k in keys) + more if keys else "none"


def dispatch(doc: Any, where: str, col: Collector, *, consume: bool) -> None:
    """Detect the format of one decoded document and feed its spans to ``col``."""
    if isinstance(doc, list):
        dispatch_list(doc, where, col, consume=consume)
        return
    if not isinstance(doc, dict):
        raise Fail(where, f"not a Jaeger or OTLP trace document: a JSON {type(doc).__name__}")
    if "resourceSpans" in doc:
        otlp_document(doc, where, col, consume=consume)
    elif "result" in doc and isinstance(doc["result"], dict):
        otlp_document(doc["result"], at(where, "result"), col, consume=consume)
    elif "data" in doc:
        legacy_envelope(doc, where, col, consume=consume)
    elif "spans" in doc:
        legacy_trace(doc, where, col, consume=consume)
    elif "spanID" in doc:
        legacy_spans([doc], where, col, consume=False)
    elif isinstance(doc.get("context"), dict) and "name" in doc:
        col.add(console_span(doc, where))
    elif "error" in doc and isinstance(doc["error"], dict):
        v3_error(doc["error"], where)
    elif "summaries" in doc:
        raise Fail(where, "a Jaeger trace-summaries response holds no spans, only summaries")
    elif "services" in doc or "operations" in doc:
        what = "services" if "services" in doc else "operations"
        raise Fail(where, f"a Jaeger {what} response holds no spans")
    else:
        raise Fail(where, f"not a Jaeger or OTLP trace document: top-level keys {keys_of(doc)}")


def dispatch_list(doc: list, where: str, col: Collector, *, consume: bool) -> None:
    if not doc:
        return
    first = doc[0]
    if not isinstance(first, dict):
        raise Fail(
            where,
            f"not a Jaeger or OTLP trace document: a JSON array of {type(first).__name__}",
        )
    if "spanID" in first:
        legacy_spans(doc, where, col, consume=consume)
    elif "parent" in first and "child" in first:
        raise Fail(where, "Jaeger service dependency links (parent/child/callCount), not traces")
    else:
        for i in range(len(doc)):
            item = doc[i]
            if consume:
                doc[i] = None
            dispatch(item, f"{where}[{i}]", col, consume=consume)


def v3_error(err: dict, where: str) -> None:
    code = err.get("httpCode", err.get("code"))
    message = str(err.get("message", ""))[:500]
    if code == 404:
        return
    raise Fail(where, f"Jaeger answered an error instead of traces: HTTP {code}: {message}")


def legacy_envelope(doc: dict, where: str, col: Collector, *, consume: bool) -> None:
    data = doc.get("data")
    errors = doc.get("errors") or []
    messages = [error_text(e) for e in errors] if isinstance(errors, list) else [str(errors)]
    if data is None or data == []:
        if messages:
            raise Fail(where, "Jaeger answered errors instead of traces: " + "; ".join(messages))
        return
    if not isinstance(data, list):
        raise Fail(at(where, "data"), f"not a list of traces but a {type(data).__name__}")
    if data and not isinstance(data[0], dict):
        raise Fail(
            at(where, "data"),
            "a list of names (a services/operations response), not traces",
        )
    before = {tid: len(spans) for tid, spans in col.spans.items()} if messages else {}
    dispatch_list(data, at(where, "data"), col, consume=consume)
    for tid, spans in col.spans.items() if messages else ():
        if len(spans) != before.get(tid, 0):
            for message in messages:
                col.warn(tid, f"Jaeger reported: {message}")


def error_text(err: Any) -> str:
    if isinstance(err, dict):
        text = str(err.get("msg") or err.get("message") or err)
        if err.get("traceID"):
            text += f" (traceID {err['traceID']})"
        if err.get("code"):
            text = f"{err['code']} {text}"
        return text[:500]
    return str(err)[:500]


# Well-formed legacy and OTLP documents decode straight into ``schema``'s structs, whatever
# their whitespace or key order. A document that does not fit them, or that the typed code
# (``legacy_typed``, ``otlp_typed``) finds anything unusual in, is parsed again by the
# general path over plain JSON values: it accepts every lenient variant and words the
# errors, so both paths give the same model for what they both accept.


def typed(data: bytes, source: str) -> list[Trace] | None:
    """The model of ``data`` by the typed path, or ``None`` when it is not the one to use."""
    try:
        doc = schema.DECODER.decode(data)
    except (*schema.Mismatch, RecursionError):  # the general path words it (or takes it)
        return None
    collector = Collector(source)
    try:
        if doc.resourceSpans is not UNSET:
            otlp_typed(doc.resourceSpans, collector)
        elif doc.result is not UNSET:
            otlp_typed(doc.result.resourceSpans, collector)
        elif doc.data is not UNSET:
            if doc.errors:
                return None  # Jaeger's errors beside data become trace warnings: rare
            shared = Shared()
            for trace in doc.data:
                legacy_typed(
                    trace.spans,
                    trace.processes,
                    trace.traceID,
                    trace.warnings,
                    collector,
                    shared=shared,
                )
        elif doc.spans is not UNSET:
            legacy_typed(doc.spans, doc.processes, doc.traceID, doc.warnings, collector)
        else:
            return None
    except (General, Fail, *schema.Mismatch, RecursionError):
        return None
    del doc
    return collector.finish()
