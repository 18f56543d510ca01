"""Operation facts: which spans belong to the operation, and what its lifecycle says.

Scope: a trace that carries no ``operation.id`` other than the requested one is taken whole
(the dispatch trace's backend spans, e.g. ``workers.select``, carry no id at all). A trace that
mixes operation ids (the agent coordinator puts every child dispatch into one trace) is cut to
the subtrees of the operation's highest spans that hold no other operation's id, and their
ancestors. The ancestors are context: rules see them (the coordinator's ``outcome`` explains a
research operation), but they are not the operation's work: their errors belong to other
operations, and they do not stretch its extent, name its phase or hold its bottleneck.

Lifecycle: status is the last ``operation.state_transition``'s ``to_status`` for this
operation; finished means that status is terminal (a resume after a failure is not finished).
A request that never became an operation (no id, no transition) is finished once it is over
(``_request_over``): ``rejected`` when answered with an error, else ``answered``.
An operation that carries its id but never made a transition, and whose deepest error is the
last thing its service did for it, failed before it was registered.

Extent: a server span that outlives a client call which already gave up in error (a host
service still working on a request the backend timed out on four times) does not stretch the
operation: its subtree counts only up to the end of that call.

Where it is: the last phase seen. Spans are exported when they end, so a phase span in the
traces has ended: the operation is *after* it (KTRDR's training loop runs span-less after
``training.data_loading``), unless the span ends later than the clock judged by.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise, repeat
from operator import attrgetter
from typing import Any

import msgspec

from opdiag.diagnosis.answered_again import answered_again
from opdiag.diagnosis.conditions import attribute
from opdiag.diagnosis.result import LIFECYCLE_STATUSES, REQUEST_SETTLE_MS
from opdiag.diagnosis.rules import RuleSet
from opdiag.model import (
    CLIENT,
    SERVER,
    STATUS_OK,
    Span,
    Trace,
    failed,
    http_method,
    lifecycle_status,
    url_of,
    url_path,
)
from opdiag.operations import (
    TERMINAL,
    exited_early,
    never_recorded,
    operation_answered,
    operation_read,
    outcome_length,
    read_through,
)
from opdiag.search_window import id_time_us

OP_ID = "operation.id"
# ``create_service_span`` str()s every value, so an id that was never set can read "None".
_NO_ID = frozenset({"", "none", "null"})
_UNSEEN: Any = object()
_ATTRIBUTES = attrgetter("attributes")
_NOTHING: frozenset[str] = frozenset()


def operation_id_of(span: Span) -> str | None:
    """The span's ``operation.id``, or None when absent or a stringified None."""
    return _id_text(span.attributes.get(OP_ID))


def _id_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return None if text.lower() in _NO_ID else text


def _cached_operation_id(span: Span, cache: dict[str, str | None]) -> str | None:
    """``operation_id_of`` memoised on the raw text (100k spans carry a handful of values)."""
    raw = span.attributes.get(OP_ID)
    if raw is None:
        return None
    if raw.__class__ is not str:
        return operation_id_of(span)
    value = cache.get(raw, _UNSEEN)
    if value is _UNSEEN:
        value = cache[raw] = operation_id_of(span)
    return value


def _has_foreign_id(spans: list[Span], operation_id: str) -> bool:
    """Does any span carry an operation id other than ``operation_id``? Decided on the
    distinct raw values (a 100k-span trace holds a handful), gathered without a Python loop.
    ``True`` when unsure (an unhashable value): the caller then looks span by span."""
    raw = map(dict.get, map(_ATTRIBUTES, spans), repeat(OP_ID))
    try:
        distinct = set(raw)
    except TypeError:
        return True
    distinct.discard(None)
    for value in distinct:
        if value.__class__ is not str:  # 1 == True == 1.0: a set would merge their texts
            return True
        text = _id_text(value)
        if text is not None and text != operation_id:
            return True
    return False


def scoped_walk(
    trace: Trace, operation_id: str | None
) -> tuple[list[tuple[Span, int]], frozenset[str]]:
    """Pre-order (span, depth) of the trace's spans that belong to the operation, and the ids
    of the context-only ancestors among them.

    In a trace that mixes operation ids, a span carrying the requested id belongs with the
    whole subtree of its highest ancestor that holds no other operation's id: a child training
    of a research is its backend's ``training.start``, the dispatch under it and the worker's
    phase spans, which carry no id. The ancestors above that are context. A read of the
    operation (its id in the URL) carries it too."""
    walk = trace.walk_list()
    # one span cannot both carry the id and hold another (a listing's one-span traces)
    if (
        operation_id is None
        or len(trace.spans) < 2
        or not _has_foreign_id(trace.spans, operation_id)
    ):
        return walk, frozenset()
    carriers: list[Span] = []
    foreign: list[Span] = []
    ids: dict[str, str | None] = {}
    for span, _ in walk:
        value = _cached_operation_id(span, ids)
        if value is None:
            # a read of its status is about it, its command's span exported or not (a CLI
            # exports its command's span when the command ends, its reads every 5 s)
            if operation_read(span) == operation_id:
                carriers.append(span)
            continue
        (carriers if value == operation_id else foreign).append(span)
    if not foreign or not carriers:
        return walk, frozenset()
    by_id = trace.by_id
    tainted = _with_ancestors(foreign, by_id)  # their subtrees hold another operation's id
    holds_own = _with_ancestors(carriers, by_id)
    carrier_ids = {s.span_id for s in carriers}
    inside: set[str] = set()  # the subtrees of the operation's highest own spans
    out: list[tuple[Span, int]] = []
    for span, depth in walk:
        sid = span.span_id
        parent_id = span.parent_id
        if (
            (parent_id is not None and parent_id in inside)
            or sid in carrier_ids
            or (sid in holds_own and sid not in tainted)
        ):
            inside.add(sid)
            out.append((span, depth))
        elif sid in holds_own:
            out.append((span, depth))
    return out, frozenset(holds_own - inside)


def _with_ancestors(spans: list[Span], by_id: dict[str, Span]) -> set[str]:
    """The ids of ``spans`` and of all their ancestors (each climb stops at one seen)."""
    found: set[str] = set()
    for span in spans:
        current: Span | None = span
        while current is not None and current.span_id not in found:
            found.add(current.span_id)
            parent_id = current.parent_id
            current = by_id.get(parent_id) if parent_id is not None else None
    return found


class OperationFacts(msgspec.Struct):
    """What the engine knows about the operation before any rule runs."""

    operation_id: str | None
    operation_type: str | None = None
    status: str = "unknown"
    finished: bool = False
    has_lifecycle: bool = False
    start_us: int = 0
    end_us: int = 0
    idle_us: int = 0
    stuck: bool = False
    running: bool = False
    slow: bool = False
    trace_count: int = 0
    request_traces: int = 0  # traces of more than one span (a one-span trace holds no call)
    work_traces: int = 0  # of those, the ones not a read of its status (a poll's trace)
    # calls that began a trace of their own while their caller is in another of its traces
    unlinked_calls: int = 0
    unlinked_call: Span | None = None  # the first of them (the callee's server span)
    unlinked_caller: Span | None = None  # the span that called it
    error_spans: int = 0
    span_count: int = 0
    last_span: Span | None = None
    last_transition: Span | None = None
    phase: str | None = None
    phase_span: Span | None = None
    where: str | None = None  # "after training.data_loading", "in data.download"
    where_since_us: int = 0
    # span id -> where its extent stops (the end of an abandoned call above it)
    clipped_ends: dict[str, int] = msgspec.field(default_factory=dict)
    error_origin: Span | None = None
    services: list[str] = msgspec.field(default_factory=list)
    resumed: bool = False  # a transition to resuming (or marked resumed) is among its own
    # a final status was not the operation's end (its orphan detector failed work still going
    # on): a later transition left it for another (KTRDR's failed -> failed), or, set by the
    # engine (``_went_on``), its work started again after a failure
    ended_before: bool = False
    # its status is what a command following it to its end said (no transition said it):
    # ``last_transition`` is then the command's last status read, ``follower`` the command
    followed: bool = False
    follower: Span | None = None
    # a failure recorded after the operation had ended, by another service that still saw it
    # running (KTRDR's orphan detector, a minute after a completion nobody read): the end is
    # its outcome and ``last_transition`` (``outcome_length``); this is the first such failure
    failed_late: Span | None = None
    # KTRDR holds no record of it: every read of it the backend answered said 404, the last
    # at this time (``operations.never_recorded``); 0 when it does, or may
    unrecorded_us: int = 0
    # no span of its work names it: known only through reads of it and one-span records
    no_work: bool = False
    # failed by the backend that came back after its reads were refused (a pack's
    # ``failed_at_restart``: KTRDR's startup reconciliation writes no transition span)
    failed_at_restart: bool = False

    @property
    def duration_us(self) -> int:
        return max(0, self.end_us - self.start_us)

    def as_dict(self) -> dict[str, Any]:
        """The values rule ``facts`` conditions test (rules.FACTS)."""
        return {
            "status": self.status,
            "finished": self.finished,
            "stuck": self.stuck,
            "running": self.running,
            "slow": self.slow,
            "overdue": False,  # (a baseline decides it: slow.apply_slow)
            "rushed": False,  # (likewise)
            "has_lifecycle": self.has_lifecycle,
            "found": True,
            "trace_count": self.trace_count,
            "request_traces": self.request_traces,
            "work_traces": self.work_traces,
            "unlinked_calls": self.unlinked_calls,
            "ended_before": self.ended_before,
            "followed": self.followed,
            "failed_late": self.failed_late is not None,
            "failed_at_restart": self.failed_at_restart,
            "error_spans": self.error_spans,
            "operation_type": self.operation_type,
            "duration_s": self.duration_us / 1e6,
            "idle_s": self.idle_us / 1e6,
            "unrecorded": self.unrecorded_us > 0,
        }


def operation_facts(
    walks: Sequence[tuple[Trace, list[tuple[Span, int]]]],
    operation_id: str | None,
    rules: RuleSet,
    *,
    now_us: int,
    stuck_after_s: float,
    context: Mapping[str, frozenset[str]] | None = None,
    recovered: dict[str, set[str]] | None = None,
    live_until_us: int = 0,
) -> OperationFacts:
    """One pass over the scoped spans: lifecycle, type, phase, extent, errors. ``recovered``:
    per trace id, the spans of failed attempts a retry made good (``analysis.retries``);
    their errors are not the operation's. ``context``: per trace id, the context-only
    ancestors (``scoped_walk``). ``live_until_us``: the last sign of life in the rest of the
    traces its scope was cut from (it is not stuck while they move)."""
    facts = OperationFacts(operation_id=operation_id)
    transitions: list[Span] = []
    registered_type: str | None = None
    own_type: str | None = None
    any_type: str | None = None
    hinted_type: str | None = None
    names: dict[str, tuple[str | None, bool]] = {}
    services: set[str] = set()
    start: int | None = None
    end: int | None = None
    phase_key: tuple[int, str] | None = None
    origin_depth = -1
    span_count = 0
    error_spans = 0
    ids: dict[str, str | None] = {}
    phase_end = 0
    for trace, walk in walks:
        if walk:
            facts.trace_count += 1
            if len(walk) > 1:
                facts.request_traces += 1
                if not _a_read(trace):
                    facts.work_traces += 1
        span_count += len(walk)
        by_id = trace.by_id
        clipped = facts.clipped_ends
        made_good = recovered.get(trace.trace_id, _NOTHING) if recovered else _NOTHING
        above = context.get(trace.trace_id, _NOTHING) if context else _NOTHING
        for span, depth in walk:
            span_start = span.start_us
            span_end = span_start + span.duration_us
            parent_id = span.parent_id
            if parent_id is not None and (clipped or span.kind == SERVER):
                limit = clipped.get(parent_id)
                parent = by_id.get(parent_id)
                if (
                    parent is not None
                    and span.kind == SERVER
                    and parent.kind == CLIENT
                    and parent.error
                    and span_end > parent.end_us
                ):
                    limit = parent.end_us if limit is None else min(limit, parent.end_us)
                if limit is not None:
                    clipped[span.span_id] = limit
                    span_end = min(span_end, limit)
            if above and span.span_id in above:
                continue  # another operation's span above this one's: not its work
            attrs = span.attributes
            services.add(span.service)
            if start is None or span_start < start:
                start = span_start
            if end is None or span_end > end:
                end = span_end
                facts.last_span = span
            if span.error and span.span_id not in made_good:
                error_spans += 1
                if depth > origin_depth:
                    origin_depth, facts.error_origin = depth, span
            raw_op = attrs.get(OP_ID)  # _cached_operation_id inlined: 100k calls
            if raw_op is None:
                span_op = None
            elif raw_op.__class__ is str:
                span_op = ids.get(raw_op, _UNSEEN)
                if span_op is _UNSEEN:
                    span_op = ids[raw_op] = operation_id_of(span)
            else:
                span_op = operation_id_of(span)
            own = operation_id is None or span_op == operation_id
            if own and ("operation.to_status" in attrs or "operation.status" in attrs):
                transitions.append(span)
            elif (
                span_op is None
                and operation_id is not None
                and span.kind == SERVER
                and rules.requested_status(span, operation_id) is not None
            ):
                transitions.append(span)  # a request that set the status (no span of its own)
            op_type = attrs.get("operation.type")
            if op_type is not None:
                if own and span.name == "operation.register":
                    registered_type = registered_type or str(op_type)
                elif own and span_op is not None:
                    own_type = own_type or str(op_type)
                else:
                    any_type = any_type or str(op_type)
            info = names.get(span.name)
            if info is None:
                info = names[span.name] = rules.name_info(span.name)
            hinted_type = hinted_type or info[0]
            progress = attrs.get("progress.phase")
            if (info[1] or progress is not None) and (
                phase_key is None or span.start_us >= phase_key[0]
            ):
                phase_key = (span.start_us, span.name if info[1] else str(progress))
                facts.phase_span = span
                phase_end = span_end if info[1] else -1
    facts.span_count = span_count
    facts.error_spans = error_spans
    facts.services = sorted(services)
    facts.start_us = start or 0
    facts.end_us = end or 0
    facts.phase = phase_key[1] if phase_key else None
    if phase_key is not None:
        if phase_end < 0:  # a progress message, not a phase span: where the work reported
            facts.where, facts.where_since_us = f"at {phase_key[1]}", phase_key[0]
        elif phase_end > now_us:
            facts.where, facts.where_since_us = f"in {phase_key[1]}", phase_key[0]
        else:
            facts.where, facts.where_since_us = f"after {phase_key[1]}", phase_end
    facts.operation_type = (
        registered_type
        or own_type
        or _type_from_id(operation_id, rules)
        or any_type
        or hinted_type
        or _type_from_calls(walks, rules)
    )
    if transitions:
        facts.resumed = any(
            t.attributes.get("operation.resumed") is True
            or lifecycle_status(t.attributes) == "resuming"
            for t in transitions
        )
        transitions.sort(key=lambda s: (s.start_us, s.end_us))
        statuses = [transition_status(t, rules, operation_id) for t in transitions]
        kept = outcome_length(transitions, statuses)
        if kept < len(transitions):  # the failures recorded after its end are not its end
            facts.failed_late = transitions[kept]
            late = {id(t) for t in transitions[kept:]}
            transitions, statuses = transitions[:kept], statuses[:kept]
            _extent_without(facts, walks, late, context)
        facts.last_transition = transitions[-1]
        to_status = statuses[-1] or "unknown"
        facts.status = to_status if to_status in LIFECYCLE_STATUSES else "unknown"
        facts.finished = to_status in TERMINAL
        if facts.finished and facts.end_us > transitions[-1].end_us:
            outlived = _callers_lost(walks, transitions[-1].end_us)
            if outlived:
                _extent_without(facts, walks, outlived, context)
        if facts.finished:  # the backend's reads of it after its end are no part of it
            after = _reads_after(walks, transitions[-1].end_us)
            if operation_id:  # nor is a child's work that went on without it
                after |= _children_after(walks, transitions[-1].end_us, operation_id)
            if after:
                _extent_without(facts, walks, after, context)
        facts.ended_before = _ended_before(transitions, statuses)
        if facts.status == "cancelled" and phase_key is not None and phase_end > 0:
            # where it was when cancelled: a phase that ends after the cancel (KTRDR checks
            # its token only between phases) was still running, not "after" it
            cancelled_at = min(
                (t.start_us for t, s in zip(transitions, statuses, strict=True)
                 if s == "cancelled"),
                default=None,
            )
            if cancelled_at is not None and phase_key[0] <= cancelled_at < phase_end:
                facts.where, facts.where_since_us = f"in {phase_key[1]}", phase_key[0]
    facts.no_work = bool(operation_id) and _unnamed_work(walks, operation_id)
    made = id_time_us(operation_id) if operation_id and facts.no_work else None
    if made is not None and 0 < made < facts.start_us:
        # known only through reads and records (its process died before its first export):
        # it began no later than its id was made (KTRDR writes the UTC time into it)
        facts.start_us = made
    if facts.trace_count > 1:
        unlinked = unlinked_calls(walks)
        facts.unlinked_calls = len(unlinked)
        if unlinked:
            facts.unlinked_call, facts.unlinked_caller = unlinked[0]
    facts.idle_us = max(0, now_us - max(facts.end_us, live_until_us)) if end is not None else 0
    facts.has_lifecycle = bool(transitions) or _carries_id(walks, operation_id)
    if facts.has_lifecycle and not transitions and operation_id:
        missed = never_recorded((t for t, _ in walks), operation_id)
        if missed is not None:
            first_miss, facts.unrecorded_us = missed
            # what a poller read after the first 404 is no part of it: it was already gone
            # (before, every later read made it last longer: 19m49s for a 20 ms life)
            later = _reads_after(walks, first_miss + 1)
            if later:
                _extent_without(facts, walks, later, context)
    if facts.has_lifecycle and not transitions and _died_unregistered(walks, facts.error_origin):
        facts.status, facts.finished = "failed", True
    if facts.has_lifecycle and not facts.finished and operation_id and rules.followers:
        seen = followed_end(walks, operation_id, rules)
        if seen is not None:
            facts.follower, facts.last_transition, facts.status = seen
            facts.finished, facts.followed = facts.status in TERMINAL, True
    if facts.has_lifecycle and not facts.finished and operation_id:
        _failed_at_restart(facts, walks, operation_id, rules)
    if facts.has_lifecycle and not facts.finished:
        if quiet_too_long(facts.idle_us, stuck_after_s):
            facts.stuck = True
        else:
            facts.running = True
        # started, not finished: in flight, stuck or not (its length runs to now either
        # way); unknown when KTRDR never saved it (no status of it exists)
        if facts.status == "unknown" and not facts.unrecorded_us:
            facts.status = "running"
    if not facts.has_lifecycle and end is not None and _request_over(walks, end, now_us):
        facts.finished = True
        facts.status = "rejected" if _rejected(walks, error_spans) else "answered"
    return facts


def _failed_at_restart(
    facts: OperationFacts,
    walks: Sequence[tuple[Trace, list[tuple[Span, int]]]],
    operation_id: str,
    rules: RuleSet,
) -> None:
    """An operation of a type the pack's ``failed_at_restart`` names, its reads refused (the
    last one could not connect: nothing listened), then answered by the backend that came
    back, with no transition since: failed when that process started. KTRDR runs a
    research's coordinator in the backend's own process
    (``is_backend_local``); its ``StartupReconciliation`` fails every such operation still
    RUNNING ("Backend restarted - …") with a repository update, which writes no span, and
    ``resume_if_needed`` resumes only the active ones: no transition will ever say it."""
    if facts.operation_type not in rules.failed_at_restart:
        return
    back = answered_again(walks, operation_id)
    if back is None or not back.could_not_connect:  # timed out: a live backend was slow
        return
    last = facts.last_transition
    if last is not None and last.end_us > back.refused_until_us:
        return
    facts.status, facts.finished, facts.failed_at_restart = "failed", True, True
    facts.last_transition = back.read


def quiet_too_long(idle_us: int, stuck_after_s: float) -> bool:
    """An operation in flight that no span moved for this long is stuck (else running); the
    engine asks it again of a failure its work outlived."""
    return idle_us > stuck_after_s * 1e6


def _request_over(
    walks: Sequence[tuple[Trace, list[tuple[Span, int]]]], end_us: int, now_us: int
) -> bool:
    """A request that never became an operation is over once none of its spans is open: all
    had ended by now, and every parent a span names is there (a span is exported when it
    ends: a command still retrying a refused start has not exported its own), or nothing
    happened in it for ``REQUEST_SETTLE_MS`` (a parent that never comes: a proxy that
    propagates context but exports nothing)."""
    if end_us > now_us:
        return False
    if now_us - end_us >= REQUEST_SETTLE_MS * 1000:
        return True
    return not any(
        span.parent_id is None and span.references for _, walk in walks for span, _ in walk
    )


def _rejected(walks: Sequence[tuple[Trace, list[tuple[Span, int]]]], error_spans: int) -> bool:
    """Answered with an error: an error span (the command or a call failed), an HTTP status
    of 400 or more (a 400 the backend does not mark as an error), or a command that exited
    before any request (``operations.exited_early``)."""
    return (
        bool(error_spans)
        or any(failed(span) for _, walk in walks for span, _ in walk)
        or any(exited_early(trace) for trace, _ in walks)
    )


def followed_end(
    walks: Sequence[tuple[Trace, list[tuple[Span, int]]]], operation_id: str, rules: RuleSet
) -> tuple[Span, Span, str] | None:
    """What a command that followed the operation to its end says of it (a pack's
    ``followers``): the command's span, its last status read and the status, or None.

    KTRDR's worker exports its spans in batches every 5 s; killed within that window after
    finishing, it never exports its running -> completed transition, and the backend, which
    learns the status by reading it from the worker, writes none. The CLI following the
    operation read it: its polls end when the status is terminal, and it ends OK only on
    completed (or cancelled, which the backend records when it cancels: a cancel request
    among the operation's spans voids this). The command counts only with its flag true,
    its status OK (not merely unset: a failed operation's ``SystemExit`` leaves it unset)
    and an answered poll of the operation below it."""
    followers = rules.followers
    best: tuple[Span, Span, str] | None = None
    for trace, walk in walks:
        commands: dict[str, str] = {}  # span id -> the status its OK end says
        polls: list[Span] = []
        for span, _ in walk:
            name = span.name
            if span.kind == SERVER:
                if operation_answered(span) != operation_id:
                    continue
                if any(f.unless is not None and f.unless.known(name) for f in followers):
                    return None  # a cancel was asked: an OK end may say cancelled
                if any(f.polls.known(name) for f in followers):
                    polls.append(span)
                continue
            if span.status != STATUS_OK:
                continue
            for f in followers:
                if f.span.known(name) and _flag_set(span.attributes, f.flag):
                    commands[span.span_id] = f.status
                    break
        if not commands or not polls:
            continue
        by_id = trace.by_id
        for poll in polls:
            command = _command_above(poll, by_id, commands)
            if command is None:
                continue
            if best is None or poll.end_us > best[1].end_us:
                best = (command, poll, commands[command.span_id])
    return best


def _flag_set(attributes: dict[str, Any], key: str) -> bool:
    value = attribute(attributes, key)
    return value is True or (value.__class__ is str and value.strip().lower() == "true")


def _command_above(span: Span, by_id: dict[str, Span], commands: dict[str, str]) -> Span | None:
    """The nearest ancestor of ``span`` that is one of ``commands``."""
    parent_id = span.parent_id
    seen = 0
    while parent_id is not None and seen < 1000:
        parent = by_id.get(parent_id)
        if parent is None:
            return None
        if parent_id in commands:
            return parent
        parent_id, seen = parent.parent_id, seen + 1
    return None


def transition_status(span: Span, rules: RuleSet, operation_id: str | None) -> str | None:
    """The status a transition moves the operation to: its ``operation.to_status`` (or
    ``operation.status``), else the one a pack's ``status_requests`` entry says its request
    set (KTRDR's worker shutting down PATCHes CANCELLED and writes no transition)."""
    status = lifecycle_status(span.attributes)
    if status is None and operation_id is not None:
        return rules.requested_status(span, operation_id)
    return status


def _ended_before(transitions: Sequence[Span], statuses: Sequence[str | None]) -> bool:
    """Did the operation go on after a final status (in time order)? A later transition
    leaves it (KTRDR's failed -> failed) or moves to another status (a worker's completion
    after the orphan detector's failure). Not a resume, which starts a new run, nor the
    same end said twice (a cancel recorded by the worker and by the backend). ``statuses``:
    where each transition moved it (``transition_status``)."""
    for (_, ended), (then, status) in pairwise(zip(transitions, statuses, strict=True)):
        if ended not in TERMINAL:
            continue
        if status == "resuming" or then.attributes.get("operation.resumed") is True:
            continue
        left = then.attributes.get("operation.from_status")
        if status != ended or (left.__class__ is str and left.strip().lower() in TERMINAL):
            return True
    return False


def _callers_lost(
    walks: Sequence[tuple[Trace, list[tuple[Span, int]]]], ended_us: int
) -> set[int]:
    """The spans still open after the operation ended (``ended_us``) below a server span
    whose caller never reached the traces (the process that called it died before its
    export: a backend killed under a data load, whose IB host call waited on for minutes):
    the callee's work for a caller that is gone, not the operation's."""
    lost: set[int] = set()
    for trace, walk in walks:
        by_id = trace.by_id
        # (a root's check first: most traces have no such root, and their spans no climb)
        orphaned = {
            id(root)
            for root in trace.roots
            if root.kind == SERVER
            and any(r.trace_id == trace.trace_id and r.span_id not in by_id
                    for r in root.references)
        }
        if not orphaned:
            continue
        for span, _ in walk:
            if span.end_us <= ended_us:
                continue
            top = span
            while top.parent_id is not None and top.parent_id in by_id:
                top = by_id[top.parent_id]
            if id(top) in orphaned:
                lost.add(id(span))
    return lost


def _unnamed_work(
    walks: Sequence[tuple[Trace, list[tuple[Span, int]]]], operation_id: str
) -> bool:
    """No span of a trace of more than one span carries the operation's id: it is known only
    through the backend's reads of it and one-span records (the orphan detector's)."""
    return not any(
        len(walk) > 1 and any(operation_id_of(span) == operation_id for span, _ in walk)
        for _, walk in walks
    )


def _reads_after(
    walks: Sequence[tuple[Trace, list[tuple[Span, int]]]], ended_us: int
) -> set[int]:
    """The spans of the backend's reads of the operation (a poll's trace) that began after
    it ended: what a status read answers then is no work of it (a read 13 min after the
    orphan detector failed it made it last 13 min longer)."""
    return {
        id(span)
        for trace, walk in walks
        if walk and _a_read(trace) and min(s.start_us for s, _ in walk) >= ended_us
        for span, _ in walk
    }


def _children_after(
    walks: Sequence[tuple[Trace, list[tuple[Span, int]]]], ended_us: int, operation_id: str
) -> set[int]:
    """The spans of another operation's work in its traces (a child: the subtree of the
    highest ancestor of a span carrying another id that holds none carrying this one) that
    ended after this one ended: KTRDR's cancel of a research stops none of the training or
    backtest its coordinator started on a worker, which runs on for minutes (a research
    cancelled 1.6 min in read 4.8 min in, the length of its child's training)."""
    left: set[int] = set()
    for trace, walk in walks:
        if not walk or all(s.end_us <= ended_us for s, _ in walk):
            continue
        by_id = trace.by_id
        carriers = [s for s, _ in walk if operation_id_of(s) is not None]
        own = _with_ancestors([s for s in carriers if operation_id_of(s) == operation_id], by_id)
        tops: set[str] = set()
        for span in carriers:
            if operation_id_of(span) == operation_id:
                continue
            current, top = span, None
            while current is not None and current.span_id not in own:
                top = current
                current = by_id.get(current.parent_id) if current.parent_id else None
            if top is not None:
                tops.add(top.span_id)
        if not tops:
            continue
        inside: set[str] = set()
        for span, _ in walk:
            if span.span_id in tops or (span.parent_id is not None and span.parent_id in inside):
                inside.add(span.span_id)
                if span.end_us > ended_us:
                    left.add(id(span))
    return left


def _extent_without(
    facts: OperationFacts,
    walks: Sequence[tuple[Trace, list[tuple[Span, int]]]],
    left_out: set[int],
    context: Mapping[str, frozenset[str]] | None,
) -> None:
    """The operation's end and last span without the spans ``left_out``: the failures
    recorded after it ended (a completion 5 s in, failed by the orphan detector 72 s later,
    lasted 5 s), a callee's work for a caller that is gone (``_callers_lost``)."""
    end: int | None = None
    last: Span | None = None
    clipped = facts.clipped_ends
    for trace, walk in walks:
        above = context.get(trace.trace_id, _NOTHING) if context else _NOTHING
        for span, _ in walk:
            if id(span) in left_out or span.span_id in above:
                continue
            span_end = min(span.end_us, clipped.get(span.span_id, span.end_us))
            if end is None or span_end > end:
                end, last = span_end, span
    if end is not None:
        facts.end_us, facts.last_span = end, last


# How far a callee's clock may run ahead of (or behind) its caller's.
_CALL_SKEW_US = 1_000_000


def unlinked_calls(
    walks: Sequence[tuple[Trace, list[tuple[Span, int]]]],
) -> list[tuple[Span, Span]]:
    """Calls whose trace context was lost: a server span that begins a trace (no parent)
    while its caller is in another of the operation's traces: a client span of the same
    method and path, answered by no server span of its own trace, whose time holds it.
    Several traces alone prove nothing: each KTRDR command (``train``, ``cancel``,
    ``resume``) starts its own, and the orphan detector writes its own; a status read sent
    with curl while the CLI polls is no call of the CLI's (each poll is answered in its
    own trace)."""
    roots: list[tuple[str, Span]] = []
    clients: list[tuple[str, Span]] = []
    for trace, walk in walks:
        tid = trace.trace_id
        children = trace.children
        for span, _ in walk:
            if span.kind == CLIENT:
                if not any(c.kind == SERVER for c in children.get(span.span_id, ())):
                    clients.append((tid, span))  # unanswered in its own trace
            elif span.kind == SERVER and span.parent_id is None:
                roots.append((tid, span))
    if not roots or not clients:
        return []
    found: list[tuple[Span, Span]] = []
    for tid, server in roots:
        caller = next((c for ctid, c in clients if ctid != tid and _calls(c, server)), None)
        if caller is not None:
            found.append((server, caller))
    return found


def _holds(outer: Span, inner: Span) -> bool:
    return (
        outer.start_us - _CALL_SKEW_US <= inner.start_us
        and inner.end_us <= outer.end_us + _CALL_SKEW_US
    )


def _calls(client: Span, server: Span) -> bool:
    """The client span is the call the server span answered: same method and path (when
    both say them), the server's time inside the call's."""
    if not _holds(client, server):
        return False
    method, called = http_method(client), http_method(server)
    if method and called and method != called:
        return False
    path, served = url_path(client), url_path(server)
    return not (path and served and path != served)


def _type_from_calls(
    walks: Sequence[tuple[Trace, list[tuple[Span, int]]]], rules: RuleSet
) -> str | None:
    """The type a call names when no span did: a client span is named by its method alone
    (``POST``), but ``POST /api/v1/backtests/start`` read from its URL is what the server
    span would be called. A caller's spans arrive first (KTRDR's CLI exports each span when
    it ends, the backend in batches): until the backend's do, only the URL says it."""
    for _, walk in walks:
        for span, _ in walk:
            if span.kind != CLIENT:
                continue
            method = http_method(span)
            path = url_path(span) if isinstance(url_of(span), str) else ""
            if not method or not path:
                continue
            hint = rules.name_info(f"{method} {path}")[0]
            if hint is not None:
                return hint
    return None


def _type_from_id(operation_id: str | None, rules: RuleSet) -> str | None:
    if operation_id is None or rules.id_pattern is None:
        return None
    m = rules.id_pattern.match(operation_id)
    return m.group("type") if m else None


def _died_unregistered(
    walks: Sequence[tuple[Trace, list[tuple[Span, int]]]], origin: Span | None
) -> bool:
    """An operation that failed before its first transition: the error is the last thing its
    service did for it. KTRDR's worker creates and registers the operation in one background
    task (``operations.create``, ``operation.register``, then ``running``); when creating it
    raises (PostgreSQL down), no transition ever comes, and the worker is free for the next
    operation, so its later death is not this one's story."""
    if origin is None:
        return False
    service, ended = origin.service, origin.end_us
    return not any(
        span.service == service and span.start_us >= ended for _, walk in walks for span, _ in walk
    )


def _a_read(trace: Trace) -> bool:
    """A trace whose only root is the backend answering a read of an operation (a poll)."""
    roots = trace.roots
    return len(roots) == 1 and (
        operation_answered(roots[0]) is not None or read_through(trace) is not None
    )


def _carries_id(
    walks: Sequence[tuple[Trace, list[tuple[Span, int]]]], operation_id: str | None
) -> bool:
    if operation_id is None:
        return False
    return any(
        operation_id_of(span) == operation_id or operation_answered(span) == operation_id
        for _, walk in walks
        for span, _ in walk
    ) or any(read_through(trace) == operation_id for trace, _ in walks)
