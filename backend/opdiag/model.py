"""The one normalised trace model every reader produces and every analysis consumes.

Readers parse and validate at the boundary; after that everything works on these plain,
slotted structures. The per-span ones (``Span``, ``Event``, ``Reference``) are msgspec structs,
not dataclasses: a reader makes them 100k at a time, and a struct is made three times faster.
They compare by identity, as the dataclasses did, and the garbage collector does not track them
(they hold no cycle). Times are integer microseconds since the epoch, trace ids are 32 lower-case
hex characters, span ids 16 (a duplicate id gets a ``_1``, ``_2`` … suffix, as Jaeger UI does).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from operator import add, attrgetter
from typing import Any
from urllib.parse import urlsplit

import msgspec

INTERNAL = "internal"
SERVER = "server"
CLIENT = "client"
PRODUCER = "producer"
CONSUMER = "consumer"
SPAN_KINDS = frozenset({INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER})

CHILD_OF = "CHILD_OF"
FOLLOWS_FROM = "FOLLOWS_FROM"

STATUS_UNSET = "unset"
STATUS_OK = "ok"
STATUS_ERROR = "error"
SPAN_STATUSES = frozenset({STATUS_UNSET, STATUS_OK, STATUS_ERROR})

_HEX = frozenset("0123456789abcdefABCDEF")
_FALSE_STRINGS = frozenset({"false", "0", "", "no", "off", "none", "null"})


def normalise_trace_id(raw: str) -> str:
    """Lower-case and left-pad to 32 hex so 16- and 32-char forms of one id compare equal."""
    return raw.strip().lower().rjust(32, "0")


MAX_ID_CHARS = 512  # the longest id the API takes


def addressable(ident: str) -> bool:
    """Can a URL name this id? Not empty, at most ``MAX_ID_CHARS``, printable, no space at
    either end: what the API's id parameter takes (``api.params.IDENT_PATTERN``). An
    operation id from a trace may be anything; links name one that is not by its trace."""
    return 0 < len(ident) <= MAX_ID_CHARS and ident.isprintable() and ident == ident.strip()


def lifecycle_status(attributes: dict[str, Any]) -> str | None:
    """The status a span moves its operation to: KTRDR's ``operation.to_status``
    (``completed``), or the documented dialect's ``operation.status`` (``COMPLETED``, also
    on the real ``operation.register``: ``pending``); lower-case. None: not a transition."""
    raw = attributes.get("operation.to_status")
    if raw is None:
        raw = attributes.get("operation.status")
        if raw is None:
            return None
    return raw.strip().lower() if raw.__class__ is str else str(raw).strip().lower()


def looks_like_trace_id(ident: str) -> bool:
    """16 to 32 hex characters: the forms Jaeger prints (16 when the high half is zero).
    Operation ids carry ``_`` or letters beyond ``f``, so they never match."""
    s = ident.strip()
    return 16 <= len(s) <= 32 and all(c in _HEX for c in s)


def normalise_span_id(raw: str) -> str:
    """Lower-case and left-pad to 16 hex (old Jaeger builds did not zero-pad)."""
    return raw.strip().lower().rjust(16, "0")


def truthy(value: Any) -> bool:
    """Lenient truthiness for tag values: ``True``, ``"true"``, ``1`` — but not ``"false"``."""
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE_STRINGS
    return bool(value)


class Event(msgspec.Struct, gc=False, eq=False):
    """A span event (OTLP) or log (legacy Jaeger); exceptions arrive as ``name == "exception"``."""

    name: str
    time_us: int
    attributes: dict[str, Any]


class Reference(msgspec.Struct, gc=False, eq=False):
    """A parent or link reference exactly as the source gave it (ids normalised)."""

    ref_type: str
    trace_id: str
    span_id: str


class SpanQuery(msgspec.Struct, frozen=True):
    """Spans wanted from neighbouring traces: service name glob and exact span name (a rule
    pack's ``neighbours`` section: health checks, background connection loops, watchdogs)."""

    service: str
    span: str

    def matches(self, service: str, name: str) -> bool:
        return name == self.span and fnmatchcase(service, self.service)


class Span(msgspec.Struct, gc=False, eq=False):
    """One span, normalised.

    ``parent_id`` and ``error`` are filled by :func:`build_trace`; ``span_id`` is unique within
    its trace (``original_span_id`` keeps the id the source sent).
    """

    trace_id: str
    span_id: str
    name: str
    service: str
    start_us: int
    duration_us: int
    kind: str = INTERNAL
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    events: list[Event] = msgspec.field(default_factory=list)
    references: list[Reference] = msgspec.field(default_factory=list)
    status: str = STATUS_UNSET
    status_message: str = ""
    resource: dict[str, Any] = msgspec.field(default_factory=dict)
    warnings: list[str] = msgspec.field(default_factory=list)
    parent_id: str | None = None
    error: bool = False
    original_span_id: str = ""

    @property
    def end_us(self) -> int:
        return self.start_us + self.duration_us

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attributes.get(key, default)

    def exception_events(self) -> list[Event]:
        return [e for e in self.events if e.name == "exception" or "exception.type" in e.attributes]


def url_of(span: Span) -> object:
    """The URL a client span called (old or new semantic conventions)."""
    attrs = span.attributes
    return attrs.get("http.url") or attrs.get("url.full")


def url_path(span: Span) -> str:
    """The path a call named: of its URL (old or new conventions), else its target."""
    url = url_of(span)
    if not isinstance(url, str) or not url:
        target = span.attributes.get("http.target") or span.attributes.get("url.path")
        return target if isinstance(target, str) else ""
    try:
        return urlsplit(url).path
    except ValueError:
        return ""


def http_method(span: Span) -> str:
    """The method a call named (old or new conventions), upper-case; empty when unknown."""
    attrs = span.attributes
    method = attrs.get("http.method") or attrs.get("http.request.method")
    return method.upper() if isinstance(method, str) else ""


def http_status(span: Span) -> int | None:
    """HTTP status under the old and the new semantic conventions, as an int when it parses."""
    for key in ("http.status_code", "http.response.status_code"):
        value = span.attributes.get(key)
        if value is None:
            continue
        try:
            return int(value)
        except (TypeError, ValueError):
            return None
    return None


def failed(span: Span) -> bool:
    """The span failed: in error, or answered with an HTTP status of 400 or more (a 400 the
    backend does not mark as an error)."""
    if span.error:
        return True
    status = http_status(span)
    return status is not None and status >= 400


def is_error(span: Span) -> bool:
    """SPEC's one error flag: status ERROR, a truthy ``error`` tag, 5xx on a server span,
    or an exception event. (Called once per span by ``build_trace``: no generator for the
    common span without events.)"""
    if span.status == STATUS_ERROR:
        return True
    attrs = span.attributes
    if attrs:
        code = attrs.get("otel.status_code")
        if code is not None and code != "OK" and isinstance(code, str) and code.upper() == "ERROR":
            return True
        if "error" in attrs and truthy(attrs["error"]):
            return True
        if span.kind == SERVER:
            status = http_status(span)
            if status is not None and status >= 500:
                return True
    events = span.events
    return bool(events) and any(
        e.name == "exception" or "exception.type" in e.attributes for e in events
    )


@dataclass(slots=True, eq=False)
class Trace:
    """All spans of one trace id, indexed once. Build it with :func:`build_trace`."""

    trace_id: str
    spans: list[Span]
    by_id: dict[str, Span]
    children: dict[str, list[Span]]
    roots: list[Span]
    sources: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Computed once by build_trace: traces are sorted and filtered by these constantly.
    first_start_us: int = 0
    last_end_us: int = 0
    # The moment it was cut to by ``opdiag.asof`` (None: as the source holds it): spans of
    # it that ended later are left out.
    cut_at_us: int | None = None
    # walk_list(), computed on first use (a trace is not changed after build_trace): the
    # diagnosis engine and the critical path both walk 100k-span traces in this order.
    _walked: list[tuple[Span, int]] | None = field(default=None, repr=False)

    @property
    def start_us(self) -> int:
        return self.first_start_us

    @property
    def end_us(self) -> int:
        return self.last_end_us

    @property
    def duration_us(self) -> int:
        return self.end_us - self.start_us

    def services(self) -> list[str]:
        return sorted({s.service for s in self.spans})

    def walk(self) -> Iterator[tuple[Span, int]]:
        """Depth-first, children in start order, iteratively (100k-span traces are fine)."""
        return iter(self.walked())

    def walk_list(self) -> list[tuple[Span, int]]:
        """``list(walk())`` (a new list each time; the walk itself is done once)."""
        return list(self.walked())

    def walked(self) -> list[tuple[Span, int]]:
        """The cached ``walk_list()``, shared: callers must not change it."""
        if self._walked is None:
            self._walked = self._walk()
        return self._walked

    def _walk(self) -> list[tuple[Span, int]]:
        return _walk(self.roots, self.children)


def subtree(trace: Trace, top: Span) -> list[tuple[Span, int]]:
    """``top`` and its descendants, depth-first (depths counted from ``top``)."""
    return _walk([top], trace.children)


def subtrees(trace: Trace, spans: Iterable[Span]) -> Trace:
    """A trace of some of ``trace``'s spans, those whose parent is left out as roots (the
    subtrees of an operation's own spans; its run since a resume). The spans are shared, not
    changed: ``build_trace`` would re-parent them in the trace they belong to."""
    kept = list(spans)
    by_id = {span.span_id: span for span in kept}
    roots = sorted((s for s in kept if s.parent_id not in by_id), key=_START)
    children = {
        s.span_id: [k for k in kids if k.span_id in by_id]
        for s in kept
        if (kids := trace.children.get(s.span_id))
    }
    first, last = _bounds(kept)
    return Trace(
        trace_id=trace.trace_id,
        spans=kept,
        by_id=by_id,
        children=children,
        roots=roots,
        sources=trace.sources,
        first_start_us=first,
        last_end_us=last,
    )


# How build_trace's warning of spans whose parent is missing ends: merge_traces recognises it.
ORPHANS_WARNING = (
    " not in the trace: a span is exported when it ends, so it may still be open (a command or"
    " request still running), or it was lost"
)


def build_trace(
    trace_id: str,
    spans: Iterable[Span],
    sources: Iterable[str] = (),
    warnings: Iterable[str] = (),
) -> Trace:
    """Index spans into a tree with Jaeger UI's rules.

    Duplicate span ids are kept apart (later ones renamed ``id_1``, ``id_2`` …); a span's parent
    is its first reference whose span exists in this trace; spans without one are roots; roots
    and children are sorted by start time. The error flag is computed here, once.
    """
    trace_id = normalise_trace_id(trace_id)
    span_list = list(spans)
    trace_warnings = list(warnings)
    by_id = dict(zip(map(_SPAN_ID, span_list), span_list, strict=True))
    if len(by_id) != len(span_list):
        by_id = _renaming_duplicates(span_list)
    # One pass with the index complete: the error flag, then the parent (a span's first
    # reference to a span of this trace that is not itself).
    children: dict[str, list[Span]] = {}
    roots: list[Span] = []
    orphans = 0
    missing: set[str] = set()  # the parents orphans name
    for span in span_list:
        if not span.original_span_id:
            span.original_span_id = span.span_id
        span.trace_id = trace_id
        attrs = span.attributes
        # is_error(span), its usual answer without the call: no status, no error-ish tag
        # (an exporter's "OK" is not one), not a server span, no events
        code = attrs.get("otel.status_code") if attrs else None
        span.error = (
            is_error(span)
            if span.status == STATUS_ERROR
            or span.events
            or span.kind == SERVER
            or (code is not None and code != "OK")
            or "error" in attrs
            else False
        )
        parent_id = None
        refs = span.references
        if refs:
            own = span.span_id
            for ref in refs:
                ref_id = ref.span_id
                if ref_id in by_id and ref_id != own:
                    parent_id = ref_id
                    break
        span.parent_id = parent_id
        if parent_id is None:
            roots.append(span)
            if refs:
                orphans += 1
                missing.add(refs[0].span_id)
        else:
            kids = children.get(parent_id)
            if kids is None:
                children[parent_id] = [span]
            else:
                kids.append(span)
    roots.sort(key=_START)
    for kids in children.values():
        if len(kids) > 1:
            kids.sort(key=_START)
    # The walk every analysis needs is also the cycle check: without a cycle it reaches
    # every span exactly once (each span has at most one parent).
    # (without children: every span a root, in start order; no cycle)
    walked = _walk(roots, children) if children else [(root, 0) for root in roots]
    if len(walked) != len(span_list):
        _break_cycles(by_id, children, roots)
        roots.sort(key=_START)
        walked = _walk(roots, children)
    if orphans:
        parents = (
            f"parent {next(iter(missing))}" if len(missing) == 1 else f"{len(missing)} parents"
        )
        trace_warnings.append(f"{orphans} span(s) reference {parents}{ORPHANS_WARNING}")
    first, last = _bounds(span_list)
    return Trace(
        trace_id=trace_id,
        spans=span_list,
        by_id=by_id,
        children=children,
        roots=roots,
        sources=list(dict.fromkeys(sources)),
        warnings=trace_warnings,
        first_start_us=first,
        last_end_us=last,
        _walked=walked,
    )


def _renaming_duplicates(span_list: list[Span]) -> dict[str, Span]:
    """The index of spans some of which share an id: later ones are renamed ``id_1``,
    ``id_2`` … (their ``original_span_id`` keeps the id they came with)."""
    by_id: dict[str, Span] = {}
    # Per duplicated id, the next suffix to try: it only grows, so 30k spans sharing one id
    # cost 30k lookups, not 30k²/2.
    next_suffix: dict[str, int] = {}
    for span in span_list:
        if not span.original_span_id:
            span.original_span_id = span.span_id
        sid = span.span_id
        if sid in by_id:
            n = next_suffix.get(sid, 1)
            while f"{sid}_{n}" in by_id:
                n += 1
            next_suffix[sid] = n + 1
            span.span_id = f"{sid}_{n}"
            span.warnings.append(f"duplicate span id {sid}; renamed {span.span_id}")
        by_id[span.span_id] = span
    return by_id


def _walk(roots: list[Span], children: dict[str, list[Span]]) -> list[tuple[Span, int]]:
    """Depth-first (span, depth), children in start order, iteratively: a stack of child
    iterators, one per level of the path walked down."""
    out: list[tuple[Span, int]] = []
    append = out.append
    get = children.get
    stack = [iter(roots)]
    depth = 0
    while stack:
        for span in stack[-1]:
            append((span, depth))
            kids = get(span.span_id)
            if kids:
                stack.append(iter(kids))
                depth += 1
                break
        else:
            stack.pop()
            depth -= 1
    return out


_START = attrgetter("start_us")
_SPAN_ID = attrgetter("span_id")
_DURATION = attrgetter("duration_us")


def _bounds(spans: list[Span]) -> tuple[int, int]:
    """Earliest start and latest end; spans with unusable times (tests inject them) are skipped."""
    if len(spans) == 1:  # a listing's traces: thousands of one-span traces
        start, duration = spans[0].start_us, spans[0].duration_us
        if type(start) is int and type(duration) is int:
            return start, start + duration
    try:
        return (
            min(map(_START, spans), default=0),
            max(map(add, map(_START, spans), map(_DURATION, spans)), default=0),
        )
    except TypeError:
        usable = [
            s for s in spans if isinstance(s.start_us, int) and isinstance(s.duration_us, int)
        ]
        return _bounds(usable)


def below(children: dict[str, list[Span]], span_ids: Iterable[str]) -> set[str]:
    """``span_ids`` and every span under them (safe on hostile input: each id once)."""
    found: set[str] = set()
    stack = list(span_ids)
    while stack:
        sid = stack.pop()
        if sid in found:
            continue
        found.add(sid)
        stack.extend(c.span_id for c in children.get(sid, ()))
    return found


def _break_cycles(
    by_id: dict[str, Span], children: dict[str, list[Span]], roots: list[Span]
) -> None:
    """Hostile input can make references loop; promote one span per cycle to a root (the
    caller found that the walk from the roots misses spans)."""
    reachable = below(children, [r.span_id for r in roots])
    for sid, span in by_id.items():
        if sid in reachable:
            continue
        parent = span.parent_id
        if parent is not None and parent in children:
            children[parent] = [c for c in children[parent] if c.span_id != sid]
        span.parent_id = None
        span.warnings.append("reference cycle broken here; treated as a root")
        roots.append(span)
        # (nothing under an unreachable span is reachable: a span has one parent)
        reachable |= below(children, [sid])


def merge_traces(traces: Iterable[Trace]) -> list[Trace]:
    """Merge traces that share an id (several files or API pages can hold parts of one trace)."""
    grouped: dict[str, list[Trace]] = {}
    for trace in traces:
        grouped.setdefault(trace.trace_id, []).append(trace)
    merged: list[Trace] = []
    for trace_id, parts in grouped.items():
        if len(parts) == 1:
            merged.append(parts[0])
            continue
        seen: set[tuple[str, str, int]] = set()
        spans: list[Span] = []
        for part in parts:
            for span in part.spans:
                key = (span.original_span_id or span.span_id, span.name, span.start_us)
                if key in seen:
                    continue
                seen.add(key)
                span.span_id = span.original_span_id or span.span_id
                spans.append(span)
        merged.append(
            build_trace(
                trace_id,
                spans,
                sources=[s for p in parts for s in p.sources],
                # the parts' orphans may have their parents in another part: counted again
                warnings=list(
                    dict.fromkeys(
                        w for p in parts for w in p.warnings if not w.endswith(ORPHANS_WARNING)
                    )
                ),
            )
        )
    return merged
