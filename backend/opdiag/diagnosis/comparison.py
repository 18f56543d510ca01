"""What changed since the last good runs: baseline selection and the phase-by-phase comparison.

A run is reduced once to a ``RunProfile`` (its phases on the worker side, the gaps between
them, its error types and what makes it alike to other runs: strategy, symbol). The baseline of
a run is the N most recent *good* runs of its type — healthy, finished, and not slow against
their own baseline — preferring runs that share its strategy and symbol, then its strategy,
then any run of the type, whichever first gives at least ``min_runs``. Earlier runs come first
("since the last good run"); later ones fill up when there are too few.

The comparison lines up phases by kind and name, gives for each this run, the baseline median
(a run without the phase counts 0) and the change, and orders them so that the ones that
explain most of the total change come first. Pure: profiles in, values out; the service does
the I/O and keeps profiles of finished runs.
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_right
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter, methodcaller
from typing import Any

from opdiag.analysis.phases import OUTSIDE, PhaseProfile, phase_key, phase_profile
from opdiag.diagnosis.bottleneck import noise_check
from opdiag.diagnosis.conditions import json_field, missing
from opdiag.diagnosis.facts import TERMINAL, scoped_walk
from opdiag.diagnosis.matching import exceptions_of
from opdiag.diagnosis.result import IN_FLIGHT, BaselineRun, Comparison, Diagnosis, PhaseChange
from opdiag.globs import Globs
from opdiag.model import Span, Trace, lifecycle_status
from opdiag.operations import UNKNOWN_TYPE
from opdiag.settings import ComparisonSettings
from opdiag.timeutil import format_duration

_ALIKE_SPANS = 2_000  # alike values are read from this many spans at the operation's start
_SAME_FRACTION = 0.05  # a change under 5 % of the phase's baseline (and under 1 ms) is "same"
_SAME_MS = 1.0
# within 10 % of the time expected for its data, a run took what it should: that time is an
# estimate from a few runs' time per row, so it is held less tightly than a median
_EXPECTED_FRACTION = 0.1


@dataclass(slots=True)
class RunProfile:
    """What a comparison needs of one run; small, kept per finished run by the service."""

    key: str
    operation_type: str | None
    started_at_ms: int
    duration_ms: float
    phases: PhaseProfile
    error_types: list[str] = field(default_factory=list)
    alike: dict[str, str] = field(default_factory=dict)
    verdict: str = "healthy"
    size: float | None = None  # how much data it processed (``ComparisonSettings.size``)
    status: str = "completed"  # the operation's status: a run that did not complete stopped


_PHASES = RunProfile.__dict__["phases"]  # the slot the dataclass keeps ``phases`` in


class _LazyRunProfile(RunProfile):
    """A ``RunProfile`` whose phases are made when first read (``run_profile(lazy=True)``):
    a listing's rows read only the runs' starts, durations, sizes and alike values, unless a
    slow finding names the phase that changed most. Equal in every field to the eager one."""

    __slots__ = ("_make",)

    @property  # type: ignore[override]
    def phases(self) -> PhaseProfile:
        value: PhaseProfile | None = _PHASES.__get__(self, RunProfile)
        if value is None:
            value = self._make()
            _PHASES.__set__(self, value)
            del self._make
        return value

    @phases.setter
    def phases(self, value: PhaseProfile) -> None:
        _PHASES.__set__(self, value)


# --- one run ---------------------------------------------------------------------------------


def _field(raw: Any, path: str) -> Any:
    """A dotted field of a JSON-encoded attribute value (``None`` when absent or unreadable:
    ``conditions.json_field``)."""
    value = json_field(raw, path)
    return None if value is missing() else value


def _text(value: Any) -> str | None:
    """An alike value as text: lists joined by commas, empty and null values absent."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        parts = [str(v).strip() for v in value if v is not None and str(v).strip()]
        return ",".join(parts) or None
    if isinstance(value, Mapping):
        return None
    text = str(value).strip()
    return text if text and text.lower() not in {"none", "null"} else None


def alike_values(spans: Sequence[Span], sources: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Per alike name (``strategy``, ``symbol``), the value of its first source that one of the
    first ``_ALIKE_SPANS`` spans carries (what a run is about is said when it starts: the CLI's
    arguments, the registration, the first phase), the first carrier of a key winning."""
    early = [span.attributes for span in spans[:_ALIKE_SPANS]]
    first: dict[str, Any] = {}
    if len(early) == 1:  # a one-span run (a listing of many small ones)
        only = early[0]
        first = {key: only[key] for key in _source_keys(sources) if key in only}
    else:
        for key in _source_keys(sources):
            found = next(filter(methodcaller("__contains__", key), early), None)
            if found is not None:
                first[key] = found[key]
    out: dict[str, str] = {}
    for name, options in sources.items():
        for source in options:
            key, _, path = source.partition(">")
            if key not in first:
                continue
            value = _text(_field(first[key], path) if path else first[key])
            if value is not None:
                out[name] = value
                break
    return out


_SOURCE_KEYS: dict[int, tuple[Mapping[str, Sequence[str]], frozenset[str]]] = {}


def _source_keys(sources: Mapping[str, Sequence[str]]) -> frozenset[str]:
    """The attribute keys ``sources`` read (``key>path`` reads ``key``), kept per mapping
    (held: its id stays its): every run of a listing asks."""
    known = _SOURCE_KEYS.get(id(sources))
    if known is not None and known[0] is sources:
        return known[1]
    keys = frozenset(source.split(">", 1)[0] for options in sources.values() for source in options)
    if len(_SOURCE_KEYS) >= 64:
        _SOURCE_KEYS.clear()
    _SOURCE_KEYS[id(sources)] = (sources, keys)
    return keys


def data_size(spans: Iterable[Span], keys: Sequence[str]) -> float | None:
    """The first positive number one of ``keys`` holds on the spans (``data.rows`` on a
    data-loading phase): how much data the run processed."""
    if not keys:
        return None
    for span in spans:
        attributes = span.attributes
        for key in keys:
            if key not in attributes:
                continue
            value = attributes[key]
            if isinstance(value, bool):
                continue
            try:
                number = float(value)
            except (TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit int
                continue
            if number > 0 and number != float("inf"):
                return number
    return None


def error_types(spans: Iterable[Span]) -> list[str]:
    """Distinct exception types of the error spans (or ``error in <span>`` without one)."""
    found: set[str] = set()
    for span in spans:
        if not span.error:
            continue
        types = [e.type for e in exceptions_of(span) if e.type]
        found.update(types or [f"error in {span.name}"])
    return sorted(found)


def operation_spans(traces: Sequence[Trace], operation_id: str | None) -> list[Span]:
    """The spans of the operation, trace by trace in walk order (pre-order, children by
    start), context-only ancestors left out."""
    spans: list[Span] = []
    for trace in traces:
        walk, context = scoped_walk(trace, operation_id)
        if context:
            spans.extend(span for span, _ in walk if span.span_id not in context)
        else:
            spans.extend(map(itemgetter(0), walk))
    return spans


def run_profile(
    diagnosis: Diagnosis,
    traces: Sequence[Trace],
    settings: ComparisonSettings,
    noise_patterns: Sequence[str],
    *,
    lazy: bool = False,
) -> RunProfile:
    """The profile of one diagnosed run from the traces that hold it. ``lazy``: its phases
    are made when first read (the profile then holds the run's spans until they are)."""
    spans = operation_spans(traces, diagnosis.operation_id)

    def phases_of() -> PhaseProfile:
        is_worker = Globs.of(settings.worker_services)
        return phase_profile(
            spans,
            is_worker=is_worker,
            is_noise=noise_check(Globs.of(noise_patterns)),
            min_gap_us=int(settings.min_gap_ms * 1000),
            open_until_us=_open_until(diagnosis, spans, is_worker),
        )

    if lazy and diagnosis.started_at_ms and diagnosis.duration_ms is not None:
        profile = _LazyRunProfile(
            key=diagnosis.key,
            operation_type=diagnosis.operation_type,
            started_at_ms=int(diagnosis.started_at_ms),
            duration_ms=float(diagnosis.duration_ms),
            phases=None,  # type: ignore[arg-type]
            error_types=error_types(spans),
            alike=alike_values(spans, settings.alike),
            verdict=diagnosis.verdict,
            size=data_size(spans, settings.size),
            status=diagnosis.status,
        )
        profile._make = phases_of
        return profile
    phases = phases_of()
    return RunProfile(
        key=diagnosis.key,
        operation_type=diagnosis.operation_type,
        started_at_ms=int(diagnosis.started_at_ms or phases.start_us // 1000),
        duration_ms=float(
            diagnosis.duration_ms if diagnosis.duration_ms is not None else phases.duration_us / 1e3
        ),
        phases=phases,
        error_types=error_types(spans),
        alike=alike_values(spans, settings.alike),
        verdict=diagnosis.verdict,
        size=data_size(spans, settings.size),
        status=diagnosis.status,
    )


# --- the baseline ----------------------------------------------------------------------------


def _open_until(
    diagnosis: Diagnosis, spans: Sequence[Span], is_worker: Callable[[str], bool]
) -> int | None:
    """Until when the worker's side of a run it did not close is open: now for a run in
    flight, its end for one KTRDR closed elsewhere (the orphan detector on the backend), and
    a lost worker's last answer (what came after, to the orphan detector's failure minutes
    later, was no work: ``engine._open_tail`` ends its bottleneck there too); None when it
    completed or its worker recorded the end (a cancel it answered)."""
    if diagnosis.status == "completed" or diagnosis.started_at_ms is None:
        return None
    if any(
        lifecycle_status(s.attributes) in TERMINAL and is_worker(s.service) for s in spans
    ):
        return None
    if diagnosis.worked_until_ms is not None:
        return int(diagnosis.worked_until_ms * 1000)
    return int((diagnosis.started_at_ms + (diagnosis.duration_ms or 0)) * 1000)


def _levels(target: RunProfile, order: Sequence[str]) -> list[tuple[str, ...]]:
    """Alike keys to insist on, strongest first: all the target has, then fewer, then none."""
    present = [name for name in order if name in target.alike]
    return [tuple(present[:i]) for i in range(len(present), -1, -1)]


def judges_speed(
    target: RunProfile,
    matched: Mapping[str, str],
    order: Sequence[str],
    runs: Sequence[RunProfile] = (),
    paced: Collection[str] = (),
) -> bool:
    """Whether a baseline (``runs``, matched on ``matched``) may call ``target`` slow: not
    when the target names the strongest alike key (its strategy) and the baseline does not
    share it, nor when the target does not name it (started with curl: only KTRDR's CLI
    writes the strategy), its type is one the strategy paces (``paced``: a training's
    epochs) and the baseline's runs do name theirs. A 150-epoch model is not slow next to
    10-epoch ones; such runs are still shown side by side, but only as a comparison. Runs
    that all share its strategy judge it, matched on it or not (too few of them to be
    matched on, or the one run ``opdiag compare`` was given)."""
    strongest = order[0] if order else None
    if strongest is None or strongest in matched:
        return True
    if strongest in target.alike:
        mine = target.alike[strongest]
        return bool(runs) and all(r.alike.get(strongest) == mine for r in runs)
    if target.operation_type not in paced:
        return True
    return not any(strongest in r.alike for r in runs)


class RunPool(list[RunProfile]):
    """Good runs with an index for :func:`select_baseline`: per operation type, sorted once by
    start. Choosing a baseline then walks outwards from the target's start and stops once
    enough alike runs are found, instead of filtering and sorting every run for every run
    (a 200k-operation listing did that 600k times)."""

    def by_type(self, op_type: str | None) -> tuple[list[int], list[RunProfile]]:
        index: dict[str | None, tuple[list[int], list[RunProfile]]] | None = getattr(
            self, "_index", None
        )
        if index is None:
            groups: dict[str | None, list[RunProfile]] = {}
            for run in self:
                groups.setdefault(run.operation_type, []).append(run)
            index = {}
            for key, runs in groups.items():
                runs.sort(key=lambda r: (r.started_at_ms, r.key))
                index[key] = ([r.started_at_ms for r in runs], runs)
            self._index = index
        return index.get(op_type, ([], []))

    def alike_to(
        self, op_type: str | None, level: tuple[str, ...], values: tuple[str, ...]
    ) -> tuple[list[int], list[RunProfile]]:
        """The runs of a type that share ``values`` for the alike keys ``level``, by start:
        grouped once per (type, level), so a run whose symbol no other run has does not
        walk the whole pool to find that out (every run of a listing asks)."""
        Group = dict[tuple[str | None, ...], tuple[list[int], list[RunProfile]]]
        groups: dict[tuple[str | None, tuple[str, ...]], Group] | None = getattr(
            self, "_alike", None
        )
        if groups is None:
            groups = self._alike = {}
        by_values = groups.get((op_type, level))
        if by_values is None:
            by_values = groups[(op_type, level)] = {}
            for run in self.by_type(op_type)[1]:  # in start order
                found = tuple(run.alike.get(k) for k in level)
                if None not in found:
                    starts, runs = by_values.setdefault(found, ([], []))
                    starts.append(run.started_at_ms)
                    runs.append(run)
        return by_values.get(values, ([], []))

    def selected(
        self, target: RunProfile, runs: int, min_runs: int, order: Sequence[str]
    ) -> tuple[list[RunProfile], dict[str, str]] | None:
        """The baseline ``good_runs`` already chose for ``target`` in a pool of the same runs
        (none was left out), with the same arguments; None when it did not."""
        known: tuple[tuple[int, int, tuple[str, ...]], dict[int, Any]] | None = getattr(
            self, "_selected", None
        )
        if known is None or known[0] != (runs, min_runs, tuple(order)):
            return None
        hit = known[1].get(id(target))
        if hit is None or hit[0] is not target:
            return None
        return hit[1], hit[2]


def _pool_order(
    target: RunProfile, pool: RunPool, level: tuple[str, ...] = ()
) -> Iterator[RunProfile]:
    """The target's same-type runs (itself left out) as a baseline is taken from them: the
    earlier ones newest first, then the later ones oldest first; lazily. ``level``: only the
    runs that share the target's values of those alike keys."""
    if level:
        values = tuple(target.alike[k] for k in level)
        starts, runs = pool.alike_to(target.operation_type, level, values)
    else:
        starts, runs = pool.by_type(target.operation_type)
    split = bisect_right(starts, target.started_at_ms)
    for i in range(split - 1, -1, -1):
        if runs[i].key != target.key:
            yield runs[i]
    for i in range(split, len(runs)):
        if runs[i].key != target.key:
            yield runs[i]


def select_baseline(
    target: RunProfile,
    good: Iterable[RunProfile],
    *,
    runs: int,
    min_runs: int,
    order: Sequence[str] = (),
) -> tuple[list[RunProfile], dict[str, str]]:
    """The baseline runs of ``target`` among ``good`` runs and the alike values they share."""
    pool = good if isinstance(good, RunPool) else RunPool(good)
    known = pool.selected(target, runs, min_runs, order)
    if known is not None:
        return known
    need = max(runs, min_runs)
    chosen: list[RunProfile] = []
    matched: dict[str, str] = {}
    for level in _levels(target, order or list(target.alike)):
        if not level:  # every run is alike
            alike = list(islice(_pool_order(target, pool), need))
        else:
            alike = list(islice(_pool_order(target, pool, level), need))
        chosen, matched = alike[:runs], {k: target.alike[k] for k in level}
        if len(alike) >= min_runs:
            break
    return chosen, matched


def _median_ms(runs: Sequence[RunProfile]) -> float:
    return float(_median([r.duration_ms for r in runs]))


def _median(values: list[float]) -> float:
    """``statistics.median`` (the same arithmetic) without its generality: a listing asks
    for one per run."""
    if not values:
        import statistics  # only for its error: the import costs ~3 ms of start-up

        return statistics.median(values)  # raises as it does
    values.sort()
    n = len(values)
    if n % 2 == 1:
        return values[n // 2]
    i = n // 2
    return (values[i - 1] + values[i]) / 2


def expected_ms(this: RunProfile, runs: Sequence[RunProfile]) -> float | None:
    """What a good run would take for this run's data. Larger than the runs' plain median:
    the median of their time per unit of data times this run's size. Smaller: fixed costs
    (start-up, loading a model) do not shrink with the data, so only runs of other sizes can
    say what they are: when the runs' sizes differ (by half at least), a line through their
    (size, time) points (its fixed part at least 0) gives the time at this size, or at the
    smallest run's size for a run smaller still; when they are all alike, a smaller run is
    held to their plain median. None when a size is unknown or the plain median stands. (A
    six-month backtest next to six-month and two-year ones is held to about its own kind's
    time, not to the middle of the two.)"""
    size = this.size
    if not size or not runs or any(not r.size for r in runs):
        return None
    median = _median_ms(runs)
    scaled = float(_median([r.duration_ms / r.size * size for r in runs if r.size]))
    if scaled > median:
        return scaled
    line = _fixed_and_rate(runs)
    if line is None:
        return None
    fixed, rate = line
    # below the smallest run the line is not known (a bar loop that slows down with more
    # bars pulls its fixed part under the real start-up costs): held to that run's size
    smallest = min(float(r.size or 0) for r in runs)
    at_size = max(fixed + rate * max(size, smallest), scaled)
    return at_size if at_size < median else None


def _fixed_and_rate(runs: Sequence[RunProfile]) -> tuple[float, float] | None:
    """Least squares ``time = fixed + rate * size`` over the runs, when their sizes differ
    by half at least; the fixed part is held to [0, the shortest run] and the rate then
    refitted through it. None for alike sizes or a rate that falls with size."""
    sizes = [float(r.size or 0) for r in runs]
    if min(sizes) <= 0 or max(sizes) < 1.5 * min(sizes):
        return None
    times = [r.duration_ms for r in runs]
    n = len(runs)
    mean_x, mean_y = sum(sizes) / n, sum(times) / n
    spread = sum((x - mean_x) ** 2 for x in sizes)
    rate = sum((x - mean_x) * (y - mean_y) for x, y in zip(sizes, times, strict=True)) / spread
    if rate <= 0:
        return None
    fixed = min(max(0.0, mean_y - rate * mean_x), *times)
    rate = sum(x * (y - fixed) for x, y in zip(sizes, times, strict=True)) / sum(
        x * x for x in sizes
    )
    return (fixed, rate) if rate > 0 else None


def _slow_limit_ms(this: RunProfile, runs: Sequence[RunProfile]) -> float:
    scaled = expected_ms(this, runs)
    return scaled if scaled is not None else _median_ms(runs)


def good_runs(
    healthy: Sequence[RunProfile],
    *,
    runs: int,
    min_runs: int,
    slow_factor: float,
    order: Sequence[str] = (),
    paced: Collection[str] = (),
) -> RunPool:
    """Healthy runs that are not slow against their own baseline (taken among the healthy
    runs): one slow outlier must not raise the bar for the next run."""
    pool = RunPool(healthy)
    out = RunPool()
    chosen: dict[int, tuple[RunProfile, list[RunProfile], dict[str, str]]] = {}
    for run in healthy:
        base, matched = select_baseline(run, pool, runs=runs, min_runs=min_runs, order=order)
        chosen[id(run)] = (run, base, matched)
        if (
            len(base) >= min_runs
            and judges_speed(run, matched, order or list(run.alike), base, paced)
            and run.duration_ms > slow_factor * _slow_limit_ms(run, base)
        ):
            continue
        out.append(run)
    if len(out) == len(pool):  # the same runs: each run's baseline among them is the same
        out._selected = ((runs, min_runs, tuple(order)), chosen)
    return out


# --- the comparison --------------------------------------------------------------------------


def signed_duration(ms: float) -> str:
    """``+41m40s``, ``-1.2s``."""
    return ("+" if ms >= 0 else "-") + format_duration(abs(ms))


def percent_text(pct: float | None) -> str:
    return "" if pct is None else f"{pct:+,.0f} %"


def _status(this_us: int, present_in: int, runs: int, change_ms: float, base_ms: float) -> str:
    if this_us and not present_in:
        return "new"
    if not this_us and present_in * 2 > runs:
        return "missing"
    if abs(change_ms) < max(_SAME_MS, _SAME_FRACTION * base_ms):
        return "same"
    return "slower" if change_ms > 0 else "faster"


def _change_pct(change_ms: float, base_ms: float, status: str) -> float | None:
    """The change in % of the baseline, when it says something: not for a phase that took
    the same time, nor against a baseline under a millisecond (a state transition of 0.1 ms
    against 0.3 ms read '0ms vs 0ms (-65 %)')."""
    if status == "same" or base_ms < _SAME_MS:
        return None
    return change_ms / base_ms * 100


def _row(key: str, this: RunProfile, baseline: Sequence[RunProfile], total: float) -> PhaseChange:
    mine = this.phases.phases.get(key)
    theirs = [r.phases.phases.get(key) for r in baseline]
    some = mine or next(p for p in theirs if p is not None)
    this_us = mine.total_us if mine else 0
    base_ms = float(_median([(p.total_us if p else 0) for p in theirs])) / 1000
    change = this_us / 1000 - base_ms
    present = sum(p is not None for p in theirs)
    status = _status(this_us, present, len(baseline), change, base_ms)
    return PhaseChange(
        name=some.name,
        kind=some.kind,
        this_ms=this_us / 1000,
        baseline_ms=base_ms,
        change_ms=change,
        change_pct=_change_pct(change, base_ms, status),
        status=status,
        count=mine.count if mine else 0,
        baseline_count=float(_median([(p.count if p else 0) for p in theirs])),
        share_of_change=change / total if total else None,
        service=some.service,
        after=some.after,
    )


# the statuses of the phase a run that did not complete stopped in (it leads its comparison)
WHERE_IT_STOPPED = frozenset({"stopped", "in progress"})


def where_it_is(this: RunProfile) -> str | None:
    """Where a run that did not complete is: ``in progress`` in flight, ``stopped`` once it
    failed, was cancelled or lost its worker (whose work ended when it died, whatever the
    status still says); None for a run that completed."""
    if this.status == "completed":
        return None
    flying = this.status in IN_FLIGHT and this.verdict != "worker_lost"
    return "in progress" if flying else "stopped"


def _stopped(rows: list[PhaseChange], this: RunProfile, baseline: Sequence[RunProfile]) -> None:
    """A run that did not complete is neither faster nor slower: the phase it stopped in
    (the last of its phases the good runs also have: what came after is its cancel or
    failure) is ``stopped`` (``in progress`` for a run in flight), the phases it never got
    to are ``not reached`` (not ``missing``)."""
    where = where_it_is(this) or "stopped"
    theirs = {k for run in baseline for k in run.phases.phases}
    last = next(
        (
            k
            for k in reversed(this.phases.phases)
            if k in theirs and not k.startswith(f"{OUTSIDE}:")
        ),
        None,
    )
    for row in rows:
        if row.status == "missing":
            row.status = "not reached"
        elif last is not None and phase_key(row.kind, row.name) == last:
            row.status = where


def _headline(top: PhaseChange | None, runs_text: str) -> str:
    if top is None or top.status == "same":
        return ""
    if top.status in ("stopped", "in progress"):
        where = top.name if top.kind == "gap" else f"in {top.name}"
        so_far = f", {format_duration(top.this_ms)} so far" if top.status == "in progress" else ""
        return (
            f"{top.status} {where}{so_far}; {runs_text} spent "
            f"{format_duration(top.baseline_ms)} there"
        )
    if top.status == "not reached":
        return f"{top.name} not reached (took {format_duration(top.baseline_ms)} in {runs_text})"
    what = {"new": "new", "missing": "missing"}.get(top.status)
    if what == "missing":
        return f"{top.name} missing (took {format_duration(top.baseline_ms)} in {runs_text})"
    if what == "new":
        return f"{top.name} new ({format_duration(top.this_ms)}; not in {runs_text})"
    pct = f", {percent_text(top.change_pct)}" if top.change_pct is not None else ""
    return (
        f"{top.name} {signed_duration(top.change_ms)} ({format_duration(top.baseline_ms)} → "
        f"{format_duration(top.this_ms)}{pct}) vs {runs_text}"
    )


def change_phrase(comparison: Comparison) -> str | None:
    """The phase that explains most of a longer run, in a few words for a summary:
    ``training.indicators +41m49s (+3,534 %)``; None when no phase got slower."""
    top = comparison.phases[0] if comparison.phases else None
    if top is None or top.change_ms <= 0 or top.status == "same":
        return None
    if top.change_pct is not None:
        pct = f" ({percent_text(top.change_pct)})"
    else:  # none for a phase the runs did not have, or had for under a millisecond
        pct = " (new)" if top.baseline_ms == 0 else ""
    return f"{top.name} {signed_duration(top.change_ms)}{pct}"


def slow_reference(comparison: Comparison) -> tuple[float | None, str | None]:
    """The baseline ``slow`` is decided against and what it was scaled to: the time expected
    for this run's data when the sizes say it (``for its 12,505 data rows``), else the runs'
    median; none (the type's budget) when the runs are not of its strategy."""
    if not comparison.judges_speed:
        return None, None
    if comparison.expected_ms is not None and comparison.size:
        return comparison.expected_ms, f"for its {comparison.size:,.0f} data rows"
    return comparison.baseline_ms, None


def no_baseline(this_ms: float, operation_type: str | None, wanted: int) -> Comparison:
    """The comparison of a run that has no good run of its type to be compared with."""
    return Comparison(
        runs=[],
        wanted_runs=wanted,
        this_ms=this_ms,
        status="no baseline",
        note=f"no good run of {operation_type or 'this type'} in reach to compare with",
    )


def total_status(c: Comparison) -> str:
    """The total of ``c`` in a word: the one ``compare`` gave it, else (a comparison made
    by hand, of a run that completed) judged from its values (``_judged_total``)."""
    return c.status or _judged_total(c)


def _judged_total(c: Comparison, where: str | None = None) -> str:
    """The total in a word, as far as the comparison can judge it: ``no baseline``; where a
    run that did not complete is (``where``: ``stopped``, ``in progress``), which is no speed;
    ``not comparable`` when the runs do not judge its speed (another strategy: a 30-epoch
    model is not slower than 10-epoch ones); against the time expected for its data when the
    sizes say it (``as expected``, else ``slower`` or ``faster`` than that: a two-year
    backtest is not slower than six-month ones); else against the runs' median (``same``,
    ``slower``, ``faster``)."""
    if not c.runs:
        return "no baseline"
    if where is not None:
        return where
    if not c.judges_speed:
        return "not comparable"
    if c.expected_ms is not None:
        off = c.this_ms - c.expected_ms
        if abs(off) <= _EXPECTED_FRACTION * c.expected_ms:
            return "as expected"
        return "slower" if off > 0 else "faster"
    change, base = c.change_ms, c.baseline_ms
    if not change or not base or abs(change) < _SAME_FRACTION * base:
        return "same"
    return "slower" if change > 0 else "faster"


def _expected_ms(this: RunProfile, runs: Sequence[RunProfile], judged: bool) -> float | None:
    """``expected_ms`` where it means something: not for a run that did not complete (it
    stopped, whatever its size), nor against runs that do not judge its speed (a training's
    rows say nothing of its epochs, which its strategy sets and no span records)."""
    return expected_ms(this, runs) if judged and this.status == "completed" else None


def unjudged_note(
    this: RunProfile, order: Sequence[str], min_runs: int | None = None, against: str = ""
) -> str:
    """Why runs do not judge ``this`` run's speed (``judges_speed``): its strategy is not
    known, or theirs is another; ``min_runs``: the baseline fell back to other runs of the
    type for want of that many of its own; ``against``: the one run it is compared with."""
    name = order[0] if order else "strategy"
    known = this.alike.get(name)
    if known is None:
        return (
            f"its {name} is not known (no span names it): compared with runs of a named "
            f"{name}, which do not decide whether it is slow"
        )
    if against:
        return (
            f"{against} is not of its {name} {known}: compared, but it does not decide "
            f"whether this run is slow, nor what time its data should take"
        )
    return (
        f"fewer than {min_runs} good runs of {name} {known} in reach: compared with other "
        f"runs of the type, which do not decide whether it is slow"
    )


def never_ran(run: Diagnosis) -> bool:
    """No operation came of it: a request (rejected or answered, once over) or one with no
    lifecycle seen yet."""
    return run.status == "unknown" or run.is_request


def not_comparable(this: Diagnosis, other: Diagnosis, types: tuple[str, str]) -> str | None:
    """Why two runs cannot be compared (``opdiag compare A B``), or None: one never ran (a
    request KTRDR refused before an operation existed: no lifecycle, status unknown), or
    they are of different types (``types``: theirs; unknown ones are not told apart). A
    training against a backtest read '+4,553 %' with an expected time from the backtest's
    time per row; against a refused 503, '+2,439 %'."""
    for run in (this, other):
        if never_ran(run):
            what = (
                "a request answered without creating an operation"
                if run.status == "answered"
                else f"a request refused before an operation was created ({run.verdict})"
            )
            return f"{run.key} never ran: {what}; compare needs two runs of operations"
    mine, theirs = types
    if mine and theirs and mine != theirs and UNKNOWN_TYPE not in types:
        return (
            f"{this.key} is a {mine} run and {other.key} a {theirs} run: runs of different "
            f"types have no phases in common to compare"
        )
    return None


def compare(
    this: RunProfile,
    baseline: Sequence[RunProfile],
    *,
    wanted: int,
    matched_on: Mapping[str, str] | None = None,
    max_rows: int = 20,
    against: str | None = None,
    order: Sequence[str] = (),
    paced: Collection[str] = (),
) -> Comparison:
    """``this`` run against ``baseline`` runs (none: a comparison that says so); ``against``
    names them in the headline (default: "the last N good runs"). ``order`` and ``paced``
    decide whether the runs judge its speed (``judges_speed``; none given: they do)."""
    if not baseline:
        return no_baseline(this.duration_ms, this.operation_type, wanted)
    matched = dict(matched_on or {})
    runs = [
        BaselineRun(r.key, r.started_at_ms, r.duration_ms, r.verdict, r.size) for r in baseline
    ]
    out = Comparison(
        runs=runs,
        wanted_runs=wanted,
        this_ms=this.duration_ms,
        matched_on=matched,
        worker_services=list(this.phases.worker_services),
        judges_speed=judges_speed(this, matched, order, baseline, paced),
    )
    where = where_it_is(this)
    median = _median_ms(baseline)
    total = this.duration_ms - median
    out.baseline_ms, out.size = median, this.size
    out.expected_ms = _expected_ms(this, baseline, out.judges_speed)
    if where is None:  # a run that did not complete changed nothing in total: it stopped
        out.change_ms = total
        out.change_pct = total / median * 100 if median > 0 else None
    if not this.phases.reached_worker and any(r.phases.reached_worker for r in baseline):
        # its spans ran on the caller's side only: against runs profiled on the worker's
        # side they would all read as new phases
        this = dataclasses.replace(this, phases=this.phases.before_the_worker())
    keys = list(this.phases.phases)
    for run in baseline:
        keys.extend(k for k in run.phases.phases if k not in keys)
    rows = [_row(k, this, baseline, total) for k in dict.fromkeys(keys)]
    if where is not None:
        _stopped(rows, this, baseline)
    direction = 1.0 if total >= 0 else -1.0
    # where a run that did not complete stopped comes first: it is what its story is about
    rows.sort(
        key=lambda r: (
            r.status not in WHERE_IT_STOPPED,
            r.status == "same",
            -direction * r.change_ms,
            -abs(r.change_ms),
        )
    )
    out.phases, out.phases_omitted = rows[:max_rows], max(0, len(rows) - max_rows)
    seen = {t for r in baseline for t in r.error_types}
    out.new_error_types = [t for t in this.error_types if t not in seen]
    plural = "" if len(baseline) == 1 else "s"
    runs_text = against or f"the last {len(baseline)} good run{plural}"
    out.headline = _headline(rows[0] if rows else None, runs_text)
    if not out.judges_speed:
        out.note = unjudged_note(this, order, against=against or "")
    out.status = _judged_total(out, where)
    return out


def baseline_totals(
    this: RunProfile,
    chosen: Sequence[RunProfile],
    matched: Mapping[str, str],
    settings: ComparisonSettings,
) -> Comparison:
    """What ``compare_with_baseline`` says of ``this`` against the baseline it chose
    (``chosen``, matched on ``matched``) that ``slow_reference`` reads: the runs' median, the
    time expected for this run's data, its size and whether the runs judge its speed; without
    the runs, the phase rows or the texts (a listing's rows do not show them)."""
    if not chosen:
        return no_baseline(this.duration_ms, this.operation_type, settings.baseline_runs)
    judged = judges_speed(this, matched, list(settings.alike), chosen, settings.strategy_paced)
    return Comparison(
        runs=[],
        wanted_runs=settings.baseline_runs,
        this_ms=this.duration_ms,
        baseline_ms=_median_ms(chosen),
        expected_ms=_expected_ms(this, chosen, judged),
        size=this.size,
        judges_speed=judged,
    )


def compare_with_baseline(
    this: RunProfile,
    good: Sequence[RunProfile],
    settings: ComparisonSettings,
    *,
    min_runs: int,
) -> tuple[Comparison, list[RunProfile]]:
    """The comparison of ``this`` with its baseline among ``good`` runs (``good_runs``), and
    the baseline runs themselves."""
    order = list(settings.alike)
    chosen, matched = select_baseline(
        this, good, runs=settings.baseline_runs, min_runs=min_runs, order=order
    )
    comparison = compare(
        this,
        chosen,
        wanted=settings.baseline_runs,
        matched_on=matched,
        max_rows=settings.max_rows,
        order=order,
        paced=settings.strategy_paced,
    )
    if chosen and not comparison.judges_speed:
        comparison.note = unjudged_note(this, order, min_runs)
    return comparison, chosen
