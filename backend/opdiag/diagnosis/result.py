"""What a diagnosis is: plain values that every renderer (JSON, Markdown, HTML, API rows,
panels) reads. The engine builds them; nothing here does I/O.

``Diagnosis.to_dict()`` is the JSON contract of SPEC.md ("The CLI contract"): its keys and
types are stable; additions are allowed, renames are not.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec
from msgspec.structs import replace

from opdiag.timeutil import format_duration

VERDICTS: tuple[str, ...] = (
    "healthy",
    "failed",
    "invalid_input",
    "data_missing",
    "service_unreachable",
    "no_workers",
    "no_capable_workers",
    "workers_busy",
    "worker_lost",
    "stuck",
    "slow",
    "cancelled",
    "not_found",
)

SEVERITIES: tuple[str, ...] = ("critical", "error", "warning", "info")
WARNING_OR_WORSE = frozenset(SEVERITIES[: SEVERITIES.index("warning") + 1])


def warned(verdict: str, severity: str) -> bool:
    """A healthy verdict whose rule warns (a data load completed with missing bars): renderers
    that show the verdict alone say the severity beside it."""
    return verdict == "healthy" and severity in WARNING_OR_WORSE


def verdict_severity(verdict: str) -> str:
    """The severity of a verdict no rule decided (the engine's fallbacks), as the default
    pack rates the same verdicts: nothing wrong, worth a look, or a failure."""
    if verdict == "healthy":
        return "info"
    if verdict in {"cancelled", "slow", "not_found"}:
        return "warning"
    return "error"

# Operation status as KTRDR names it (the last transition's ``to_status``).
LIFECYCLE_STATUSES: tuple[str, ...] = (
    "pending",
    "running",
    "resuming",
    "completed",
    "failed",
    "cancelled",
)
# A request that never became an operation, once it is over: ``rejected`` (answered with an
# error, or its command failed: a 400, 500 or 503 to a start) or ``answered``; ``background``
# for a trace that is no request at all, a background probe (diagnosis.probe_trace).
REQUEST_STATUSES: tuple[str, ...] = ("rejected", "answered", "background")
# Every status a diagnosis may have: KTRDR's, a request's, and "unknown" (no transition seen,
# and not over).
STATUSES: tuple[str, ...] = (*LIFECYCLE_STATUSES, *REQUEST_STATUSES, "unknown")
# Statuses of an operation still under way (stuck or not).
IN_FLIGHT = frozenset({"pending", "running", "resuming"})
# A request that never became an operation may still change this long after its last span:
# the backend exports its spans in batches, seconds after the command's (run1's CLI wrote its
# 503 before the backend's spans), and KTRDR's CLI retries a refused start within seconds
# (1.9, 2.6 and 5 s apart). Its diagnosis is final, and the verdict store's record settled,
# only then.
REQUEST_SETTLE_MS = 60_000


class RootCause(msgspec.Struct):
    """The deepest span of the error chain (or the span that proves the verdict); it may
    sit in a neighbouring trace (``neighbour``), e.g. the refused ``ib.connect``."""

    trace_id: str
    span_id: str
    service: str
    span_name: str
    evidence: dict[str, Any]
    exception_type: str | None = None
    exception_message: str | None = None
    neighbour: bool = False
    time_ms: float | None = None
    # a client span (named by its method only): the method and URL it called, as shown
    target: str | None = None


class Bottleneck(msgspec.Struct):
    """Where the critical path spends most of its time, transport noise ignored.

    ``kind == "span"``: the span with the most time on the critical path. ``kind == "gap"``:
    time in which no span of the operation was open on ``service`` (KTRDR's training loop
    emits none); ``span_id``/``span_name`` are then None, ``after_span_id``/
    ``after_span_name`` name the span the gap follows and ``duration_ms`` is the gap's length.
    """

    trace_id: str
    span_id: str | None
    service: str
    span_name: str | None
    self_time_ms: float
    share: float  # time on the critical path / critical-path length, 0..1
    duration_ms: float
    kind: str = "span"
    after_span_id: str | None = None
    after_span_name: str | None = None
    start_ms: float | None = None  # the gap's start, epoch ms (gaps only)
    # a span: the attempts of one call its caller made (the same call again: retries, a
    # download in segments); duration, self time and share are theirs together, the span
    # named is the attempt with the most time on the path
    attempts: int = 1
    target: str | None = None  # a client span: the method and URL it called
    # of the attempts, how many failed (in error, or answered >= 400)
    failed_attempts: int = 0

    @property
    def text(self) -> str:
        """In words: the span's name (a call: what it called), or what the gap is."""
        if self.kind == "gap":
            return f"uninstrumented work on {self.service} after {self.after_span_name}"
        name = self.target or self.span_name or "an unknown span"
        return f"{name} × {self.attempts}" if self.attempts > 1 else name

    @property
    def named(self) -> str:
        """Its text with where it is, said once (a gap's text names its service already)."""
        return self.text if self.kind == "gap" else f"{self.text} on {self.service}"

    @property
    def calls_text(self) -> str:
        """The calls in words: retries are attempts (every one failed but perhaps the last:
        the IB host's four timeouts); calls that mostly succeeded are work done in parts,
        not retries (a data load's 30 segment requests, 2 of them failed)."""
        n, failed = self.attempts, self.failed_attempts
        if failed and failed >= n - 1:
            return f"{n} attempts"
        return f"{n} calls, {failed} failed" if failed else f"{n} calls"


class Finding(msgspec.Struct):
    """One rule that fired, with the evidence it fired on."""

    rule_id: str
    severity: str
    summary: str
    verdict: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    service: str | None = None
    span_name: str | None = None
    evidence: dict[str, Any] = msgspec.field(default_factory=dict)
    # ``neighbour``: the span sits in another trace than the operation's own (a health check,
    # a background connection loop); ``trace_id`` says which. ``time_ms``: the span's start,
    # epoch ms.
    neighbour: bool = False
    time_ms: float | None = None
    # the other neighbouring traces whose spans matched the rule too (14 refused
    # ib.connect loops: the finding points at the last, these name the rest)
    other_trace_ids: list[str] = msgspec.field(default_factory=list)
    target: str | None = None  # a client span: the method and URL it called, as shown


class FlowStep(msgspec.Struct):
    """One span of the execution flow, in start order."""

    index: int
    trace_id: str
    span_id: str
    parent_id: str | None
    service: str
    span_name: str
    start_ms: float  # offset from the operation's start
    duration_ms: float
    self_time_ms: float
    depth: int
    critical: bool
    error: bool
    root_cause: bool = False
    bottleneck: bool = False
    # a failed attempt that a later identical call made good (``analysis.retries``): its
    # errors are shown, not counted against the operation
    recovered: bool = False
    target: str | None = None  # a client span: the method and URL it called, as shown


class Solution(msgspec.Struct):
    """What to do about it: steps and commands from the rule pack, filled from evidence."""

    title: str
    steps: list[str] = msgspec.field(default_factory=list)
    commands: list[str] = msgspec.field(default_factory=list)
    rule_id: str | None = None


class Links(msgspec.Struct):
    """Where to look next. ``jaeger`` deep-links the root-cause (or bottleneck) span."""

    jaeger: str | None = None
    grafana_explore: str | None = None
    diagnosis_page: str | None = None
    grafana_dashboard: str | None = None
    traces: dict[str, str] = msgspec.field(default_factory=dict)  # trace id -> Jaeger UI trace URL


class BaselineRun(msgspec.Struct):
    """One of the last good runs a comparison is made against."""

    key: str  # operation id (or trace id)
    started_at_ms: int  # epoch ms
    duration_ms: float
    verdict: str = "healthy"
    size: float | None = None  # its data size (``comparison.size``), when known


class PhaseChange(msgspec.Struct):
    """One phase lined up between this run and the baseline runs.

    ``kind``: ``span`` (a span name on the worker side, repeated spans summed), ``gap`` (time
    no span was open on the worker side, named by the span it follows, ``after``) or
    ``outside`` (before the worker side started / after it ended). ``status``: ``new`` (no
    baseline run has it), ``missing`` (most baseline runs have it, this run does not),
    ``slower``, ``faster`` or ``same``.
    """

    name: str
    kind: str
    this_ms: float
    baseline_ms: float  # median over the baseline runs (0 for a run without the phase)
    change_ms: float
    change_pct: float | None  # None: the same time, or a baseline median under 1 ms
    status: str
    count: int = 0  # spans (or gaps) of this phase in this run
    baseline_count: float = 0.0  # median count over the baseline runs
    share_of_change: float | None = None  # change / total change (None when total is 0)
    service: str = ""
    after: str | None = None


class Comparison(msgspec.Struct):
    """This run against the last good runs of its type: totals, phases, new error types.

    ``phases`` are ordered so that the ones that explain most of the total change come
    first; ``headline`` says the first of them in words.
    """

    runs: list[BaselineRun]
    wanted_runs: int
    this_ms: float
    baseline_ms: float | None = None  # median total of the runs
    # the runs' median time per unit of data times this run's (None: sizes unknown or equal,
    # a run that did not complete, or runs that do not judge its speed)
    expected_ms: float | None = None
    size: float | None = None  # this run's data size (``comparison.size``), when known
    judges_speed: bool = True  # False: the runs are not of its strategy (not for ``slow``)
    change_ms: float | None = None  # None: no baseline, or a run that did not complete
    change_pct: float | None = None
    matched_on: dict[str, str] = msgspec.field(default_factory=dict)
    phases: list[PhaseChange] = msgspec.field(default_factory=list)
    phases_omitted: int = 0
    new_error_types: list[str] = msgspec.field(default_factory=list)
    worker_services: list[str] = msgspec.field(default_factory=list)
    headline: str = ""
    note: str = ""
    # the total in a word (``comparison.total_status``): ``slower``, ``faster``, ``same``,
    # ``as expected`` (for its data's size), ``not comparable`` (the runs do not judge its
    # speed), ``stopped`` / ``in progress`` (it did not complete: no change, no expected
    # time), ``no baseline``; empty in a comparison made by hand
    status: str = ""


class Diagnosis(msgspec.Struct):
    """The answer for one operation (or one trace when no operation id exists)."""

    operation_id: str | None
    trace_ids: list[str]
    verdict: str
    summary: str
    # how bad the verdict is: the severity of the finding that decided it (a healthy load
    # with a gap is "warning"), ``verdict_severity`` when no rule decided; "" before conclude
    severity: str = ""
    operation_type: str | None = None
    status: str = "unknown"
    services: list[str] = msgspec.field(default_factory=list)
    started_at_ms: int | None = None  # epoch ms
    ended_at_ms: int | None = None  # epoch ms of the last span end seen
    duration_ms: float | None = None
    finished: bool = False
    root_cause: RootCause | None = None
    bottleneck: Bottleneck | None = None
    findings: list[Finding] = msgspec.field(default_factory=list)
    # Traces outside the operation's own that a finding or the root cause was built from.
    evidence_trace_ids: list[str] = msgspec.field(default_factory=list)
    execution_flow: list[FlowStep] = msgspec.field(default_factory=list)
    execution_flow_truncated: int = 0  # spans left out of execution_flow (huge traces)
    solution: Solution | None = None
    links: Links = msgspec.field(default_factory=Links)
    baseline_ms: float | None = None  # what "slow" compared against, when it applies
    warnings: list[str] = msgspec.field(default_factory=list)
    comparison: Comparison | None = None  # finished operations: against the last good runs
    # Every finding of every rule that fired, unfolded, in rank order: what ``findings`` (one
    # per fact) is made from, kept so the verdict can be decided again (``reassess_slow``).
    fired: list[Finding] = msgspec.field(default_factory=list)
    # A resume is in its lifecycle: its length holds the attempt before it and the pause
    # between, so it is not judged slow (KTRDR restarts the clock at a resume).
    resumed: bool = False
    # When a lost worker last answered, epoch ms: its work ended there, whatever the status
    # says; the comparison ends the run's open phase there, not at KTRDR's orphan detector.
    worked_until_ms: float | None = None
    # In flight and quiet for this long (no span of its own work ended) while something says
    # it is alive (its worker answers): once a baseline is known, quiet for longer than its
    # earlier runs took in all is ``overdue`` (``slow.apply_slow``).
    quiet_ms: float | None = None
    # Its steps name other workers of the type as ones to run on, judged on the probes of
    # the neighbour window alone: the service then fetches the health checks up to now and
    # asks again (``engine.diagnose``'s ``later``).
    standby_unchecked: bool = False

    @property
    def key(self) -> str:
        """The id a user (or a link) uses for this diagnosis."""
        return self.operation_id or (self.trace_ids[0] if self.trace_ids else "")

    @property
    def is_request(self) -> bool:
        """A request that never became an operation, and is over: there is no run to
        compare with the good runs of its type."""
        return self.status in REQUEST_STATUSES

    @property
    def without_root_cause(self) -> str:
        """Why there is no root cause, in words (the Markdown and the page say it alike)."""
        if self.verdict == "healthy":
            return "None: nothing failed."
        if self.verdict == "cancelled":
            return "None: it was cancelled, nothing failed (who cancelled it and when is above)."
        return "No single span caused this; see the diagnosis above."

    @property
    def baseline_basis(self) -> str:
        """What ``baseline_ms`` is, in words (the Markdown and the page say it alike): "of
        this operation type" was read beside a comparison whose median was a quarter of it,
        when the figure was the time expected for the run's data."""
        c, base = self.comparison, self.baseline_ms
        if base is None or c is None or not c.judges_speed:
            return "what 'slow' judged it against"
        if c.expected_ms is not None and c.size and base == c.expected_ms:
            return f"the time expected for its {c.size:,.0f} data rows"
        if c.baseline_ms is not None and base == c.baseline_ms:
            runs = len(c.runs)
            if runs == 1:
                return "the one good run it was compared with"
            return f"the median of the {runs} good runs it was compared with"
        return "what 'slow' judged it against"

    @property
    def share_basis(self) -> str:
        """What the bottleneck's share is a share of, in words (the Markdown and the page
        say it alike): the time (the critical path), or for an operation whose worker was
        lost, the time it worked: its silence since is no work, and "97 % of the time
        (20.5 s)" beside a duration of 6.6 min read as a contradiction."""
        b = self.bottleneck
        gap = b is None or b.kind == "gap"
        if self.worked_until_ms is None or b is None:
            return "the time" if gap else "the critical path"
        if not gap:
            return "the critical path until its worker was lost"
        worked = format_duration(b.duration_ms / b.share) if b.share > 0 else "time"
        return f"the {worked} it worked before its worker was lost"

    @property
    def still_working(self) -> bool:
        """In flight and not abandoned by a lost worker: its bottleneck is one so far (a lost
        worker's work ended when it died, whatever the status still says)."""
        return self.status in IN_FLIGHT and self.verdict != "worker_lost"

    def to_dict(self) -> dict[str, Any]:
        out = plain(self)
        for name in INTERNAL_FIELDS:
            del out[name]
        out["key"] = self.key
        return out


# Diagnosis fields that are not part of the JSON contract (the engine's working state).
INTERNAL_FIELDS: tuple[str, ...] = (
    "fired",
    "resumed",
    "worked_until_ms",
    "quiet_ms",
    "standby_unchecked",
)


def copied(diagnosis: Diagnosis, **changes: Any) -> Diagnosis:
    """A shallow copy of ``diagnosis`` with ``changes``: a listing copies every diagnosis
    once or twice."""
    return replace(diagnosis, **changes)


def plain(value: Any) -> Any:
    """``value`` as plain data, what ``dataclasses.asdict`` made of the results when they were
    dataclasses: a struct becomes a dict of its fields in order, lists, tuples and dicts are
    copied with their items made plain, anything else is deep-copied (a caller may change
    the dict it gets without touching the diagnosis)."""
    if isinstance(value, msgspec.Struct):
        return {name: plain(getattr(value, name)) for name in value.__struct_fields__}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, tuple):
        return type(value)(plain(item) for item in value)
    if isinstance(value, dict):
        return type(value)((plain(k), plain(v)) for k, v in value.items())
    return copy.deepcopy(value)
