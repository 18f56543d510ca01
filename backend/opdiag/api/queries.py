"""The query functions behind both Grafana protocols: each returns validated row models.

REST (Infinity) and simpod only parse their own request shapes and then call these, so the
two protocols cannot disagree about a column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opdiag import timeutil
from opdiag.api.params import TimeRange, parse_time_us
from opdiag.api.schemas import (
    AnnotationRow,
    ComparisonRow,
    DiagnosisRow,
    FindingRow,
    FlowRow,
    OperationRow,
    Row,
    SolutionRow,
    VariableRow,
    VerdictCountRow,
)
from opdiag.errors import InputError
from opdiag.listing import VARIABLE_NAMES
from opdiag.render import rows as render_rows
from opdiag.settings import Settings


@dataclass(frozen=True, slots=True)
class Filters:
    """Multi-value filters; ``None`` means no filter."""

    operation_types: list[str] | None = None
    verdicts: list[str] | None = None
    services: list[str] | None = None

    def as_kwargs(self) -> dict[str, list[str] | None]:
        return {
            "operation_types": self.operation_types,
            "verdicts": self.verdicts,
            "services": self.services,
        }


def now_us() -> int:
    """The wall clock, read only at the HTTP edge."""
    return timeutil.wall_clock_us()


_ALL_TRACES = 2**31


def is_file_source(source: object) -> bool:
    """Files are a finite, recorded corpus (the demo); Jaeger is a live window."""
    try:
        from opdiag.sources.files import FileSource
    except ImportError:  # pragma: no cover - ships with opdiag
        return False
    return isinstance(source, FileSource)


def lookback_us(settings: Settings) -> int:
    return int(settings.jaeger.lookback_s * timeutil.US_PER_S)


def default_range(source: Any, settings: Settings, now_us: int) -> TimeRange:
    """The range of a request that names neither end: all of a file source (a recorded
    corpus whose times may be long past, like the demo's), the look-back of a live source."""
    if is_file_source(source):
        traces = source.recent_traces(0, timeutil.ALL_END_US, _ALL_TRACES)
        if traces:
            start = min(t.start_us for t in traces)  # floored to the ms rows carry
            start -= start % timeutil.US_PER_MS
            return TimeRange(start_us=start, end_us=max(t.end_us for t in traces) + 1)
    return TimeRange(start_us=now_us - lookback_us(settings), end_us=now_us)


def request_range(
    raw_from: Any, raw_to: Any, source: Any, settings: Settings, now: int | None = None
) -> TimeRange:
    """``from``/``to`` of a request (``timeutil.resolve_range``); without both,
    ``default_range``. Relative times count from ``now`` (the request's own, else the wall
    clock)."""
    clock = now_us() if now is None else now

    def whole() -> tuple[int, int]:
        span = default_range(source, settings, clock)
        return span.start_us, span.end_us

    start_us, end_us = timeutil.resolve_range(
        raw_from,
        raw_to,
        clock=lambda: clock,
        span_us=lookback_us(settings),
        parse=parse_time_us,
        whole=whole,
        past_now_us=0,  # Grafana's to=now
    )
    return TimeRange(start_us=start_us, end_us=end_us)


def operations(
    service: Any, span: TimeRange, filters: Filters, limit: int, now: int | None = None
) -> list[OperationRow]:
    """Recent operations with their verdicts, newest first, judged at ``now`` (None: the
    service's clock; a service backed by the verdict store answers rows already, the trace
    service diagnoses)."""
    found = service.operations(
        span.start_us, span.end_us, now, limit=limit, **filters.as_kwargs()
    )
    return [
        d if isinstance(d, OperationRow) else render_rows.operation_row(d) for d in found[:limit]
    ]


# Verdicts the dashboards mark on their time series: the operation failed, was refused, got
# stuck or lost its worker (not healthy, slow or cancelled).
PROBLEM_VERDICTS: tuple[str, ...] = (
    "failed",
    "invalid_input",
    "data_missing",
    "service_unreachable",
    "no_workers",
    "no_capable_workers",
    "workers_busy",
    "worker_lost",
    "stuck",
)


def annotations(
    service: Any, span: TimeRange, filters: Filters, limit: int, now: int | None = None
) -> list[AnnotationRow]:
    """Operations with a problem verdict (or the verdicts asked for) as annotations."""
    verdicts = filters.verdicts or list(PROBLEM_VERDICTS)
    wanted = Filters(filters.operation_types, verdicts, filters.services)
    found = operations(service, span, wanted, limit, now)
    return [render_rows.annotation_row(row) for row in found]


def _one(service: Any, ident: str, now_us: int | None, window: TimeRange | None) -> Any:
    return service.diagnose(ident, now_us=now_us, window=window)


def diagnosis(
    service: Any, ident: str, now_us: int | None = None, window: TimeRange | None = None
) -> list[DiagnosisRow]:
    """One operation's diagnosis as a single row (a list, so every route answers rows);
    ``window``: where a live source searches for it (the caller's time range)."""
    return [render_rows.diagnosis_row(_one(service, ident, now_us, window))]


def flow(
    service: Any, ident: str, now_us: int | None = None, window: TimeRange | None = None
) -> list[FlowRow]:
    return list(render_rows.flow_rows(_one(service, ident, now_us, window)))


def findings(
    service: Any, ident: str, now_us: int | None = None, window: TimeRange | None = None
) -> list[FindingRow]:
    return list(render_rows.finding_rows(_one(service, ident, now_us, window)))


def solution(
    service: Any, ident: str, now_us: int | None = None, window: TimeRange | None = None
) -> list[SolutionRow]:
    return list(render_rows.solution_rows(_one(service, ident, now_us, window)))


def comparison(
    service: Any, ident: str, now_us: int | None = None, window: TimeRange | None = None
) -> list[ComparisonRow]:
    return list(render_rows.comparison_rows(_one(service, ident, now_us, window)))


def verdict_counts(
    service: Any, span: TimeRange, interval_us: int, filters: Filters, now: int | None = None
) -> list[VerdictCountRow]:
    """Operations per verdict per bucket; the service aligns the buckets."""
    return list(
        service.verdict_counts(
            span.start_us, span.end_us, interval_us, now, **filters.as_kwargs()
        )
    )


def variable(service: Any, name: str, span: TimeRange) -> list[VariableRow]:
    """Values of one template variable in the range (the name is checked before any I/O)."""
    if name not in VARIABLE_NAMES:
        raise InputError(
            f"unknown variable; expected one of {', '.join(VARIABLE_NAMES)}", field="name"
        )
    return list(service.variable_values(name, span.start_us, span.end_us))


# Kinds of per-operation rows, by their simpod target / REST suffix.
PER_OPERATION: dict[str, Callable[..., list[Row]]] = {
    "diagnosis": diagnosis,
    "flow": flow,
    "findings": findings,
    "solution": solution,
    "comparison": comparison,
}

MAX_BUCKETS = 1000


def default_interval_us(span: TimeRange) -> int:
    """About 100 buckets, never under a minute."""
    return max(60_000_000, (span.end_us - span.start_us) // 100)


def bounded_interval_us(span: TimeRange, interval_us: int) -> int:
    """Widen the bucket so a range never yields more than ``MAX_BUCKETS`` buckets."""
    return max(interval_us, -(-(span.end_us - span.start_us) // MAX_BUCKETS))
