"""Files and directories of exported traces as a trace source, as good as a live Jaeger.

Why a separate source: the demo corpus, CI and users without Jaeger access all diagnose from
files. The files are read once, on first use, then served from memory: traces merged by id
across files (one operation's CLI, dispatch and worker spans may sit in different files) and
indexed by trace id and by every ``operation.id`` attribute value.

Error policy: a path that does not exist, or a file named explicitly that cannot be parsed,
is an error (the user asked for it). Inside a directory one bad file is skipped and recorded
in :attr:`FileSource.problems`; a source that ends up with no trace at all is an error.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import attrgetter
from pathlib import Path
from typing import Any

from opdiag.errors import InputError
from opdiag.model import Trace, looks_like_trace_id, merge_traces, normalise_trace_id
from opdiag.operations import answers_about, needs_answers
from opdiag.sources.base import SpanQuery
from opdiag.sources.rawbytes import DEFAULT_MAX_BYTES
from opdiag.sources.readers import read_file
from opdiag.timeutil import TimeRange

TRACE_SUFFIXES = (
    ".json",
    ".jsonl",
    ".ndjson",
    ".json.gz",
    ".jsonl.gz",
    ".ndjson.gz",
)
IGNORED_TOP_LEVEL = frozenset({"expected.yaml", "expected.yml"})
OPERATION_ID_KEY = "operation.id"
_NOT_AN_ID = frozenset({"", "None", "none", "null"})


def trace_files(directory: Path) -> list[Path]:
    """Trace files under ``directory``, recursively, sorted; hidden files and directories
    and a top-level ``expected.yaml`` (test vectors' expectations) are left out."""
    found: list[Path] = []
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if len(rel.parts) == 1 and rel.name in IGNORED_TOP_LEVEL:
            continue
        if path.is_file() and path.name.lower().endswith(TRACE_SUFFIXES):
            found.append(path)
    return found


class FileSource:
    """A :class:`~opdiag.sources.base.TraceSource` over trace files and directories."""

    def __init__(
        self, paths: Sequence[Path | str], max_file_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        if not paths:
            raise InputError("no trace files or directories given")
        self.paths = [Path(p) for p in paths]
        self.max_file_bytes = max_file_bytes
        for path in self.paths:
            if not path.exists():
                raise InputError("no such file or directory", source=str(path))
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self._loaded = False
        self._by_id: dict[str, Trace] = {}
        self._by_operation: dict[str, list[str]] = {}
        self._starts: dict[str, list[int]] = {}
        self._span_count = 0
        self._last_end_us: int | None = None
        # per neighbour query set: (start of each wanted span, its trace id), sorted
        self._wanted: dict[tuple[SpanQuery, ...], tuple[list[int], list[str]]] = {}

    # ------------------------------------------------------------------ loading

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    def _load(self) -> None:
        parts: list[Trace] = []
        problems: list[str] = []
        for path in self.paths:
            if path.is_dir():
                for file in trace_files(path):
                    try:
                        parts.extend(read_file(file, self.max_file_bytes))
                    except InputError as exc:
                        problems.append(exc.message)
            else:
                # named explicitly: errors propagate
                parts.extend(read_file(path, self.max_file_bytes))
        traces = merge_traces(parts)
        if not traces:
            where = ", ".join(str(p) for p in self.paths)
            detail = f"; skipped: {'; '.join(problems)}" if problems else ""
            raise InputError(f"no traces found in {where}{detail}")
        self.problems = problems
        self._index(traces)

    def _index(self, traces: Iterable[Trace]) -> None:
        by_operation: dict[str, dict[str, None]] = {}
        for trace in traces:
            self._by_id[trace.trace_id] = trace
            self._span_count += len(trace.spans)
            for op in _raw_ids(trace):
                if op is None:
                    continue
                op_s = str(op).strip()
                if op_s not in _NOT_AN_ID:
                    by_operation.setdefault(op_s, {})[trace.trace_id] = None
        self._by_operation = {op: list(ids) for op, ids in by_operation.items()}

    # ------------------------------------------------------------------ TraceSource

    def describe(self) -> str:
        names = ", ".join(str(p) for p in self.paths)
        if not self._loaded:
            return f"files {names}"
        skipped = f", {len(self.problems)} file(s) skipped" if self.problems else ""
        return f"files {names} ({len(self._by_id)} traces, {self._span_count} spans{skipped})"

    def check(self) -> None:
        """Load now; malformed input raises ``InputError``/``TraceFormatError``."""
        self._ensure_loaded()

    def latest_us(self) -> int:
        """The end of the recording (its last span's end): a moment well before it is in
        the recording's past (``DiagnosisService``, ``opdiag.asof``)."""
        self._ensure_loaded()
        if self._last_end_us is None:
            self._last_end_us = max((t.end_us for t in self._by_id.values()), default=0)
        return self._last_end_us

    def traces_for(self, ident: str, window: TimeRange | None = None) -> list[Trace]:
        """Files are a finite recording: all of it is searched, whatever the window."""
        self._ensure_loaded()
        key = ident.strip()
        ids = self._by_operation.get(key) or ()
        found = [self._by_id[t] for t in ids]
        if not found and looks_like_trace_id(key):
            trace = self._by_id.get(normalise_trace_id(key))
            return [] if trace is None else [trace]
        if not needs_answers(key, found):
            return found
        # nothing of its work names it (its process exported nothing; at most its orphan
        # detector's record does): the traces in which the backend answered reads of it
        # hold what there is (a scan, only then)
        return found + [
            t for t in self._by_id.values() if t.trace_id not in ids and answers_about(t, key)
        ]

    def recent_traces(self, start_us: int, end_us: int, limit: int = 500) -> list[Trace]:
        """Every trace with a span starting in ``[start_us, end_us)``, newest first. Files
        hold no health-check noise worth filtering, and failed dispatches carry no
        ``operation.id``, so nothing is left out."""
        self._ensure_loaded()
        hits = [t for t in self._by_id.values() if self._starts_in(t, start_us, end_us)]
        hits.sort(key=lambda t: (t.start_us, t.trace_id), reverse=True)
        return hits[: max(limit, 0)]

    def _starts_in(self, trace: Trace, start_us: int, end_us: int) -> bool:
        """Does a span of ``trace`` start in ``[start_us, end_us)``? Its first start decides
        unless it lies before the range; only then are its starts sorted (once)."""
        first = trace.start_us
        if first >= start_us:
            return first < end_us
        starts = self._starts.get(trace.trace_id)
        if starts is None:
            with self._lock:
                starts = self._starts[trace.trace_id] = sorted(s.start_us for s in trace.spans)
        i = bisect_left(starts, start_us)
        return i < len(starts) and starts[i] < end_us

    def neighbour_traces(
        self, start_us: int, end_us: int, queries: Sequence[SpanQuery], limit: int
    ) -> list[Trace]:
        if not queries or end_us <= start_us or limit <= 0:
            return []
        starts, trace_ids = self._wanted_index(tuple(queries))
        lo, hi = bisect_left(starts, start_us), bisect_left(starts, end_us)
        hits = list(dict.fromkeys(trace_ids[lo:hi]))
        found = [self._by_id[t] for t in hits]
        found.sort(key=lambda t: (t.start_us, t.trace_id), reverse=True)
        return found[:limit]

    def _wanted_index(self, queries: tuple[SpanQuery, ...]) -> tuple[list[int], list[str]]:
        """Every span the queries ask for, by start: built once per query set (a rule pack
        has one), so each diagnosis of a long listing costs a bisection, not a scan."""
        self._ensure_loaded()
        with self._lock:
            index = self._wanted.get(queries)
            if index is None:
                by_name: dict[str, list[SpanQuery]] = {}  # a query names its span exactly
                for q in queries:
                    by_name.setdefault(q.span, []).append(q)
                rows = sorted(
                    (span.start_us, trace.trace_id)
                    for trace in self._by_id.values()
                    for span in trace.spans
                    if (named := by_name.get(span.name)) is not None
                    and any(q.matches(span.service, span.name) for q in named)
                )
                index = self._wanted[queries] = ([r[0] for r in rows], [r[1] for r in rows])
            return index

    def all_services(self) -> list[str]:
        self._ensure_loaded()
        return sorted({s.service for t in self._by_id.values() for s in t.spans})

    # ------------------------------------------------------------------ extras

    def operation_ids(self) -> list[str]:
        """Every ``operation.id`` value seen, sorted."""
        self._ensure_loaded()
        return sorted(self._by_operation)

    def all_traces(self) -> list[Trace]:
        """Every trace, oldest first."""
        self._ensure_loaded()
        return sorted(self._by_id.values(), key=lambda t: (t.start_us, t.trace_id))


_ATTRIBUTES = attrgetter("attributes")


def _raw_ids(trace: Trace) -> Iterable[Any]:
    """The raw ``operation.id`` values of the trace's spans, each text once, in the order they
    first appear (a 100k-span trace holds a handful; gathered without a Python loop). Every
    value, repeats too, when one is not a string: ``1``, ``True`` and ``1.0`` are equal keys
    but different texts."""
    raw = map(dict.get, map(_ATTRIBUTES, trace.spans), repeat(OPERATION_ID_KEY))
    try:
        distinct = dict.fromkeys(raw)
    except TypeError:  # an unhashable value
        return [s.attributes.get(OPERATION_ID_KEY) for s in trace.spans]
    if all(v.__class__ is str or v is None for v in distinct):
        return distinct
    return [s.attributes.get(OPERATION_ID_KEY) for s in trace.spans]
