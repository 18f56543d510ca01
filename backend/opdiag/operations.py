"""Grouping traces into operations: the unit a person asks about.

An operation is everything that carries its ``operation.id``. In KTRDR one operation spans
several traces (CLI trace, dispatch trace, worker trace) and one trace can hold several
operations (the agent coordinator dispatches training and backtests inside one long trace),
so the mapping is many-to-many. A dispatch that failed before any operation id existed (503
after ``workers.select`` found no worker, a CLI command in error) has no id at all: it becomes
an operation keyed by its trace id, because it is exactly what an operator needs to see.
Health checks, ``/metrics`` scrapes and polling are noise, never operations.

The operation type is guessed cheaply here (attribute, id pattern, route) so listings can be
filtered before anything expensive runs; the engine decides the real verdict.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import msgspec

from opdiag.globs import Globs
from opdiag.model import (
    CLIENT,
    SERVER,
    STATUS_UNSET,
    Span,
    Trace,
    failed,
    http_status,
    lifecycle_status,
    normalise_trace_id,
    url_path,
)

if TYPE_CHECKING:
    from opdiag.diagnosis.result import Diagnosis

OPERATION_ID_KEY = "operation.id"
OPERATION_TYPE_KEY = "operation.type"
UNKNOWN_TYPE = "unknown"

# ``create_service_span`` str()s every value, so a missing id arrives as "None".
_MISSING = frozenset({"", "none", "null", "nil", "undefined"})
_UNSEEN: Any = object()

# the operation types a KTRDR id names (``op_training_20251113_123456_1a2b3c4d``)
_ID_TYPES = (
    "data_load",
    "training",
    "backtesting",
    "indicator_compute",
    "fuzzy_analysis",
    "dummy",
    "agent_research",
    "agent_design",
    "agent_assessment",
)
_OP_ID_RE = re.compile(rf"^op_(?:[a-z0-9]+_)*?({'|'.join(_ID_TYPES)})_\d{{8}}_\d{{6}}_[0-9a-f]+$")
# a path about one operation: its id, then the route below it (KTRDR's backend and workers
# alike: ``/api/v1/operations/{id}``, ``…/{id}/resume``, ``…/{id}/metrics``)
_OPERATION_PATH = re.compile(r"/operations/([^/?#]+)(/[^?#]*)?")
_OTHER_ID_TYPES: tuple[tuple[str, str], ...] = (
    ("worker_backtest_", "backtesting"),
    ("worker_training_", "training"),
    ("op_design_", "agent_design"),
    ("op_assessment_", "agent_assessment"),
)

# Spans that are transport or polling noise. Settings may add more (noise_span_patterns).
NOISE_SPAN_PATTERNS: tuple[str, ...] = (
    "* http send",
    "* http receive",
    "GET /health*",
    "GET /api/v1/health*",
    "GET /metrics*",
    "GET /api/v1/metrics*",
    "GET /api/v1/operations*",
    "GET /operations*",
    "GET /api/v1/workers*",
    "POST /api/v1/workers/register*",
    "operations.list",
    "operations.get*",
    "workers.list",
    "data.health_check",
    "fuzzy.health_check",
    "training.health_check",
)
# URL paths of client spans (httpx names them by method only) that are noise.
_NOISE_URL_PATTERNS: tuple[str, ...] = (
    "*/health",
    "*/health/",
    "*/metrics",
    "*/metrics/",
    "*/api/v1/operations*",
    "*/api/v1/workers*",
)
# Read-only CLI / MCP commands: polling unless they failed themselves.
POLLING_COMMANDS: frozenset[str] = frozenset(
    {
        "cli.status",
        "cli.follow",
        "cli.ops",
        "cli.workers",
        "cli.agent.status",
        "mcp.tool.get_operation_status",
        "mcp.tool.list_operations",
        "mcp.tool.get_operation_metrics",
        "mcp.tool.get_operation_results",
        "mcp.tool.check_backend_health",
    }
)
# Server routes that dispatch work; answered >= 400 they are a failed dispatch.
DISPATCH_ROUTES: tuple[str, ...] = (
    "POST */start",
    "POST */resume",
    "POST */trigger",
    "POST */download",
    "POST /api/v1/data/*",
)
_NOISE_URLS = Globs.of(_NOISE_URL_PATTERNS)
_DISPATCH = Globs.of(DISPATCH_ROUTES)
SELECTION_SPANS: frozenset[str] = frozenset({"workers.select", "worker_registry.select_worker"})

# The statuses an operation ends in (KTRDR's).
TERMINAL = frozenset({"completed", "failed", "cancelled"})
# Cheap type hints from span names and routes, first match wins.
_ROUTE_TYPES: tuple[tuple[str, str], ...] = (
    ("backtest", "backtesting"),
    ("training", "training"),
    ("train", "training"),
    ("data_load", "data_load"),
    ("/data/", "data_load"),
    ("data.download", "data_load"),
    ("research", "agent_research"),
    ("agent", "agent_research"),
)


# Every type this module gives an operation (rule packs and settings may name more)
KNOWN_TYPES = frozenset(
    (*_ID_TYPES, *(t for _, t in _OTHER_ID_TYPES), *(t for _, t in _ROUTE_TYPES), UNKNOWN_TYPE)
)


class OperationTraces(msgspec.Struct):
    """One operation (or one failed dispatch without an id) and every trace that holds it."""

    key: str  # the operation id, or the trace id for a failed dispatch without one
    operation_id: str | None
    operation_type: str
    traces: list[Trace] = msgspec.field(default_factory=list)
    start_us: int = 0
    end_us: int = 0
    alone: bool = True  # no trace of this operation holds another operation

    @property
    def trace_ids(self) -> list[str]:
        return [t.trace_id for t in self.traces]


def operation_id_of(span: Span) -> str | None:
    """The span's ``operation.id`` when it is a real id (not KTRDR's ``"None"``)."""
    return _id_text(span.attributes.get(OPERATION_ID_KEY))


def _id_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return None if text.lower() in _MISSING else text


def is_operation_id(text: str) -> bool:
    """Is ``text`` shaped like a KTRDR operation id (``op_<type>_<date>_<time>_<hex>``)?"""
    return _OP_ID_RE.match(text) is not None


def type_from_id(operation_id: str) -> str | None:
    """Operation type encoded in a KTRDR id (``op_training_20251113_123456_1a2b3c4d``)."""
    match = _OP_ID_RE.match(operation_id)
    if match:
        return match.group(1)
    for prefix, op_type in _OTHER_ID_TYPES:
        if operation_id.startswith(prefix):
            return op_type
    return None


def is_noise_span(span: Span, extra_patterns: Sequence[str] = ()) -> bool:
    """Transport, health, metrics or polling span."""
    return _is_noise(span, Globs.of((*NOISE_SPAN_PATTERNS, *extra_patterns)))


def _is_noise(span: Span, noise: Globs) -> bool:
    """``is_noise_span`` with its patterns compiled (once per grouping, not per trace)."""
    name = span.name
    if noise.known(name):  # (a listing asks about the same few names)
        return True
    if span.kind == CLIENT and name in {"GET", "HEAD"}:
        return _NOISE_URLS(url_path(span))
    return False


def _is_command(span: Span) -> bool:
    return span.name.startswith(("cli.", "mcp.tool.")) or span.service.endswith("-cli")


def exited_early(trace: Trace) -> bool:
    """A command alone in its trace that ended without a status: it stopped before any
    request. KTRDR's CLI telemetry (``trace_cli_command``) sets the command's span OK when
    it returns and ERROR when it raises; only ``sys.exit`` leaves it unset, and the CLI
    exits with 1, never 0, when it refuses its arguments (``ktrdr data load`` with a mode or
    timeframe it does not know)."""
    if len(trace.spans) != 1:
        return False
    span = trace.spans[0]
    return (
        span.parent_id is None
        and span.status == STATUS_UNSET
        and _is_command(span)
        and span.name not in POLLING_COMMANDS
    )


def _is_noise_trace(trace: Trace, noise: Globs) -> bool:
    """Every root is noise, or a read-only command that did not fail itself."""
    if not trace.roots:
        return True
    for root in trace.roots:
        if root.name in POLLING_COMMANDS and not root.error:
            continue
        if not _is_noise(root, noise):
            return False
    return True


def _count(span: Span, suffix: str) -> int | None:
    for prefix in ("worker.", "worker_registry."):
        value = span.attributes.get(prefix + suffix)
        if value is None:
            continue
        try:
            return int(str(value).strip())
        except ValueError:
            return None
    return None


def _selection_failed(span: Span) -> bool:
    """Counts decide, the status string only when counts are absent."""
    available = _count(span, "available_workers")
    if available is not None:
        return available <= 0
    status = span.attributes.get("worker.selection_status") or span.attributes.get(
        "worker_registry.selection_status"
    )
    return isinstance(status, str) and status.strip().lower() not in {"", "success"}


def _is_failed_dispatch(trace: Trace) -> bool:
    """A dispatch that never got an operation id: failed selection, a dispatch route
    answered >= 400, or a command span (CLI / MCP) in error or that exited early."""
    if exited_early(trace):
        return True
    has_error = False
    for span in trace.spans:
        if span.error:
            has_error = True
        if span.name in SELECTION_SPANS and _selection_failed(span):
            return True
        if span.kind == SERVER and _DISPATCH(span.name):
            status = http_status(span)
            if span.error or (status is not None and status >= 400):
                return True
        if span.error and _is_command(span) and span.name not in POLLING_COMMANDS:
            return True
    return has_error and any(s.name in SELECTION_SPANS for s in trace.spans)


def _failed_dispatch(
    groups: dict[str, OperationTraces], trace: Trace, any_type: str | None
) -> None:
    """A failed dispatch with no operation: a row of its own, keyed by its trace id."""
    key = trace.trace_id
    if key in groups:  # an operation id equal to a trace id: keep them apart
        return
    op_type = any_type or _type_from_names(trace.spans) or UNKNOWN_TYPE
    groups[key] = OperationTraces(key, None, op_type, [trace], trace.start_us, trace.end_us)


def _operation_in_url(trace: Trace) -> str | None:
    """The operation a failed call of the trace named in its URL (``POST
    /api/v1/operations/{id}/resume``): the CLI's ``cli.resume`` carries no id, and a 409
    leaves no transition that would."""
    for span in trace.spans:
        if span.kind not in (CLIENT, SERVER):
            continue
        route = operation_route(url_path(span))
        if route is not None and route[1] == "/resume" and _OP_ID_RE.match(route[0]):
            return route[0]
    return None


# The backend's read of one operation, as its server span records the path (old and new
# HTTP conventions): what an exact tag search finds when no span carries the id yet.
READ_ROUTE = "/api/v1/operations/{}"
PATH_KEYS = ("http.target", "url.path")


def operation_answered(span: Span) -> str | None:
    """The operation a server span answered a read of (``GET /api/v1/operations/{id}``
    under 400): the backend knows it, whether or not any span carries its id yet (a worker
    exports its first spans up to 5 s after it took the work, and none if it dies first)."""
    if span.kind != SERVER or failed(span):
        return None
    return operation_read(span)


def operation_route(path: str) -> tuple[str, str] | None:
    """The operation id a path names and the route below it (``""`` for the operation
    itself, ``"/resume"``, ``"/metrics"``), or None. One parse for every caller: a status
    read is the id alone (the CLI's polls while it follows a run), while the backend's
    reads from a worker take the routes below it too."""
    found = _OPERATION_PATH.search(path)
    if found is None:
        return None
    return found.group(1), (found.group(2) or "").rstrip("/")


def operation_read(span: Span) -> str | None:
    """The operation a span's path reads (``/api/v1/operations/{id}``), whoever sent or
    answered it and however it ended."""
    route = operation_route(url_path(span))
    if route is None or route[1] or not is_operation_id(route[0]):
        return None
    return route[0]


def only_records(traces: Sequence[Trace]) -> bool:
    """Every trace is a single span: records about an operation (a status transition its
    orphan detector wrote), none of its work."""
    return all(len(t.spans) == 1 for t in traces)


def needs_answers(ident: str, found: Sequence[Trace]) -> bool:
    """Whether a lookup of ``ident`` that found ``found`` (its spans that carry the id) must
    also take the backend's answers to reads of it: an operation id none of whose work
    carries it (its process exported nothing: none found, or only one-span records of it).
    The file source and the Jaeger source ask alike."""
    return is_operation_id(ident) and only_records(found)


def answers_about(trace: Trace, operation_id: str) -> bool:
    """Whether the backend answered a read of ``operation_id`` in ``trace``, or passed it
    on to the worker that took it (``read_through``)."""
    return any(operation_answered(s) == operation_id for s in trace.spans) or (
        read_through(trace) == operation_id
    )


def read_through(trace: Trace) -> str | None:
    """The operation a backend read of the trace asked the worker for, whatever it answered.
    KTRDR's backend reads an operation it has no row of from the worker it dispatched it to
    (``operations_service._fetch_operation_from_proxy``: the proxy exists once that worker
    accepted the dispatch) and answers 404 when that read fails: a worker killed before it
    wrote the operation leaves only these reads naming it."""
    for span in trace.spans:
        if span.kind != SERVER:
            continue
        read = operation_read(span)
        if read is None:
            continue
        for child in trace.children.get(span.span_id, ()):
            if child.kind == CLIENT and operation_read(child) == read:
                return read
    return None


def never_recorded(traces: Iterable[Trace], operation_id: str) -> tuple[int, int] | None:
    """When the backend first and last answered a read of ``operation_id`` 404, if every
    read of it it answered did and no span carries its id: KTRDR holds no record of the
    operation (its worker died before ``operations.create`` wrote it), so ``ktrdr status``
    answers not found, ``ktrdr ops`` does not list it, and the orphan detector, which fails
    RUNNING operations only, never fails it. A read the backend could not answer (5xx) says
    nothing either way."""
    first: int | None = None
    last: int | None = None
    for trace in traces:
        for span in trace.spans:
            if operation_id_of(span) == operation_id:
                return None
            if span.kind != SERVER or operation_read(span) != operation_id:
                continue
            status = http_status(span)
            if status == 404:
                first = span.start_us if first is None else min(first, span.start_us)
                last = span.start_us if last is None else max(last, span.start_us)
            elif status is None or status < 500:
                return None
    return None if first is None or last is None else (first, last)


def _answered_in(trace: Trace) -> str | None:
    for span in trace.spans:
        op_id = operation_answered(span)
        if op_id is not None:
            return op_id
    return None


def _read_at_root(trace: Trace) -> str | None:
    """The operation a trace's root answered a read of (a status poll), if it is one."""
    roots = trace.roots
    return operation_answered(roots[0]) if len(roots) == 1 else None


def _type_from_names(span_iter: Iterable[Span]) -> str | None:
    spans = list(span_iter)
    for span in spans:
        worker_type = span.attributes.get("worker.type") or span.attributes.get(
            "worker_registry.worker_type"
        )
        if isinstance(worker_type, str) and worker_type.strip():
            return worker_type.strip().lower()  # the documented dialect shouts
    for span in spans:
        text = f"{span.name} {url_path(span)}".lower()
        for needle, op_type in _ROUTE_TYPES:
            if needle in text:
                return op_type
    return None


_ATTRIBUTES = attrgetter("attributes")


def _raw_pairs(spans: list[Span]) -> Iterable[tuple[Any, Any]]:
    """Each span's raw (``operation.id``, ``operation.type``), each pair once, in the order
    they first appear (what ``_scan`` decides from a pair does not change when the pair comes
    again; a 100k-span trace holds a handful), gathered without a Python loop. Every pair,
    repeats too, when a value is not a string (``1``, ``True`` and ``1.0`` are equal keys but
    different texts)."""
    if len(spans) == 1:  # (a listing of many one-span operations)
        only = spans[0].attributes
        return ((only.get(OPERATION_ID_KEY), only.get(OPERATION_TYPE_KEY)),)
    attrs = list(map(_ATTRIBUTES, spans))
    pairs = zip(
        map(dict.get, attrs, repeat(OPERATION_ID_KEY)),
        map(dict.get, attrs, repeat(OPERATION_TYPE_KEY)),
        strict=True,
    )
    try:
        distinct = dict.fromkeys(pairs)
    except TypeError:  # an unhashable value
        distinct = {}
    if distinct and all(
        (i.__class__ is str or i is None) and (t.__class__ is str or t is None)
        for i, t in distinct
    ):
        return distinct
    return [(a.get(OPERATION_ID_KEY), a.get(OPERATION_TYPE_KEY)) for a in attrs]


class _TraceScan(msgspec.Struct):
    """What one pass over a trace's spans tells about the operations it holds."""

    op_types: dict[str, str | None]  # operation id -> operation.type seen on its spans
    any_type: str | None


def _scan(trace: Trace) -> _TraceScan:
    op_types: dict[str, str | None] = {}
    any_type: str | None = None
    ids: dict[str, str | None] = {}  # per raw id text: a trace repeats a handful
    for raw_id, raw_type in _raw_pairs(trace.spans):
        if raw_id.__class__ is str:
            op_id = ids.get(raw_id, _UNSEEN)
            if op_id is _UNSEEN:
                op_id = ids[raw_id] = _id_text(raw_id)
        else:
            op_id = _id_text(raw_id)
        if raw_type is None:
            op_type = ""
        else:
            op_type = str(raw_type).strip().lower()
            op_type = "" if op_type in _MISSING else op_type
        if op_type and any_type is None:
            any_type = op_type
        if op_id is None:
            continue
        if op_id not in op_types or (op_types[op_id] is None and op_type):
            op_types[op_id] = op_type or None
    return _TraceScan(op_types=op_types, any_type=any_type)


def group_operations(
    traces: Iterable[Trace], noise_patterns: Sequence[str] = (), *, whole: bool = False
) -> list[OperationTraces]:
    """Operations held by ``traces``, newest first.

    A trace belongs to every operation whose id appears on one of its spans; a trace without
    any id is an operation of its own (keyed by trace id) only when it is a failed dispatch,
    unless the failed call named an operation in its URL whose own traces are here (``ktrdr
    resume`` of a completed operation answered 409: the operation's); ``whole``: ``traces``
    are all the source holds for a window (a listing), not a lookup's few, so reads the
    backend passed on to an operation's worker name an operation none of whose spans is
    there (a lookup of one such read by its trace id reads it as a probe of its own); noise
    traces (health, metrics, polling — even polling that names an operation id, since
    polling is not activity of the operation) belong to nothing.
    """
    groups: dict[str, OperationTraces] = {}
    hints: dict[str, list[str | None]] = {}
    noise = Globs.of((*NOISE_SPAN_PATTERNS, *noise_patterns))
    # failed calls naming an operation (in a resume's URL, or else by an answered read)
    about: list[tuple[str, bool, Trace, str | None]] = []
    unclaimed: list[tuple[str, Trace, str | None]] = []  # reads of an operation answered

    def join(op_id: str, trace: Trace, op_type: str | None, *, single: bool) -> None:
        group = groups.get(op_id)
        if group is None:
            group = OperationTraces(op_id, op_id, UNKNOWN_TYPE, [], trace.start_us, trace.end_us)
            groups[op_id] = group
            hints[op_id] = []
        group.traces.append(trace)
        group.alone = group.alone and single
        group.start_us = min(group.start_us, trace.start_us)
        group.end_us = max(group.end_us, trace.end_us)
        hints[op_id].append(op_type)

    polled: list[tuple[str, Trace]] = []  # reads of an operation, noise unless nothing else
    # reads the backend passed on to the worker it dispatched the operation to (it holds a
    # proxy for it only once a worker accepted it), whatever they answered: an operation
    # although no span names it (its worker died before its first export)
    dispatched: list[tuple[str, Trace]] = []

    for trace in traces:
        if not trace.spans:
            continue
        if _is_noise_trace(trace, noise):
            read = _read_at_root(trace)
            through = read_through(trace)
            if through is not None and read in (None, through):
                dispatched.append((through, trace))
            elif read is not None:
                polled.append((read, trace))
            continue
        scan = _scan(trace)
        if scan.op_types:
            single = len(scan.op_types) == 1
            for op_id, op_type in scan.op_types.items():
                join(op_id, trace, op_type, single=single)
                if single and op_type is None:
                    hints[op_id].append(scan.any_type)
            continue
        if not _is_failed_dispatch(trace):
            read = _answered_in(trace)
            if read is not None:  # the operation's, if no span of it carries its id yet
                unclaimed.append((read, trace, scan.any_type))
            continue
        in_url = _operation_in_url(trace)
        named = in_url or _answered_in(trace)
        if named is not None:
            about.append((named, in_url is not None, trace, scan.any_type))
            continue
        _failed_dispatch(groups, trace, scan.any_type)
    for named, by_url, trace, any_type in about:  # the operation's, when its traces are here
        if named in hints and (by_url or only_records(groups[named].traces)):
            join(named, trace, None, single=True)
        elif named not in hints and not by_url:
            # reads of it refused, then answered (its backend restarted): nothing names it
            # yet, so these answers are all there is of it, as for a trace of answers only
            unclaimed.append((named, trace, any_type))
        else:
            _failed_dispatch(groups, trace, any_type)
    # an operation no span names yet: the backend's answers to reads of it are all there is;
    # so are they when what names it is only one-span records written after it ran (KTRDR's
    # orphan detector failing it: the process that ran it died before its first export)
    carried = {op_id for op_id in hints if not only_records(groups[op_id].traces)}
    for read, trace, any_type in unclaimed:
        if read not in carried:
            join(read, trace, any_type, single=True)
    # an operation of which only one-span records arrived (its worker died before its first
    # export): the backend's reads of it, noise otherwise, name the worker it read it from
    for read, trace in polled:
        if read in hints and read not in carried:
            join(read, trace, None, single=True)
    for read, trace in dispatched:
        if read not in carried and (read in hints or whole):
            join(read, trace, None, single=True)
    for op_id, found in hints.items():
        group = groups[op_id]
        if len(group.traces) > 1:
            group.traces.sort(key=lambda t: t.start_us)
        group.operation_type = (
            next((t for t in found if t), None)
            or type_from_id(op_id)
            or _type_from_names(s for t in group.traces for s in t.roots)
            or UNKNOWN_TYPE
        )
    return sorted(groups.values(), key=lambda g: (g.start_us, g.key), reverse=True)


def type_of(diagnosis: Diagnosis, group: OperationTraces) -> str:
    """The engine's type when it knows one, the cheap guess otherwise."""
    found = diagnosis.operation_type
    return found if found and found != UNKNOWN_TYPE else group.operation_type


def outcome_length(transitions: Sequence[Span], statuses: Sequence[str | None]) -> int:
    """How many transitions (in time order) tell the operation's outcome: all of them, or up
    to the first final one (completed, failed, cancelled) after which every transition moved
    it to failed from a status that was not final, on another service than the one that
    ended it. Such a failure was recorded by a party that still saw the operation running:
    KTRDR's backend learns of a worker's outcome only when someone reads the status, and its
    orphan detector fails a RUNNING operation that no worker claims a minute later ("no
    worker claimed it"), although the worker had completed (or failed) it. A failure of the
    service that ended it, one that says it left a final status (KTRDR's failed -> failed),
    or a resume, is no such thing: all the transitions then count."""
    for k, ended in enumerate(statuses[:-1]):
        if ended in TERMINAL and all(
            _stale_failure(then, status, transitions[k].service)
            for then, status in zip(transitions[k + 1 :], statuses[k + 1 :], strict=True)
        ):
            return k + 1
    return len(transitions)


def _stale_failure(span: Span, status: str | None, ended_on: str) -> bool:
    left = span.attributes.get("operation.from_status")
    if status != "failed" or span.service == ended_on or left.__class__ is not str:
        return False
    left = left.strip().lower()
    return (
        left not in TERMINAL
        and left != "resuming"
        and span.attributes.get("operation.resumed") is not True
    )


def last_status(
    group: OperationTraces, requested: Callable[[Span, str], str | None] | None = None
) -> str | None:
    """The status of the group's last own state transition that tells its outcome
    (``outcome_length``: not a failure recorded after it by a party that still saw it
    running), found cheaply (used to skip runs that cannot be a baseline before the engine
    looks at them). ``requested``: the status a request span sets
    (``RuleSet.requested_status``: KTRDR's worker shutting down PATCHes CANCELLED and writes
    no transition)."""
    op_id = group.operation_id
    if op_id is None:
        return None
    found: list[tuple[int, int, str, Span]] = []
    for trace in group.traces:
        for span in trace.spans:
            status = lifecycle_status(span.attributes)
            if status is None:  # only a server span answers a request: tested first,
                # as a 100k-span operation would pay a call per span (55 ms)
                if (
                    requested is None
                    or span.kind != SERVER
                    or (status := requested(span, op_id)) is None
                ):
                    continue
            elif operation_id_of(span) != op_id:
                continue
            found.append((span.start_us, span.end_us, status, span))
    if len(found) < 2:  # none, or one (a listing's one-span operations): no order to find
        return found[0][2] if found else None
    found.sort(key=lambda t: t[:2])  # stable: of two alike, the one seen last stays last
    statuses = [t[2] for t in found]
    return statuses[outcome_length([t[3] for t in found], statuses) - 1]


def find_operation(groups: Sequence[OperationTraces], ident: str) -> OperationTraces | None:
    """The group a user id names: by key first, then the operation a trace id belongs to
    when that trace holds exactly one operation."""
    wanted = ident.strip()
    for group in groups:
        if group.key == wanted:
            return group
    trace_id = normalise_trace_id(wanted)
    holders = [g for g in groups if trace_id in g.trace_ids]
    return holders[0] if len(holders) == 1 else None
