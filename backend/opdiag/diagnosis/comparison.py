"""What changed since the last good runs: the phase-by-phase comparison of a run with its baseline.

A run is reduced once to a ``RunProfile`` (``diagnosis.run_profile``) and its baseline chosen
among the good runs of its type (``diagnosis.baseline``). The comparison lines up phases by
kind and name, gives for each this run, the baseline median (a run without the phase counts 0)
and the change, and orders them so that the ones that explain most of the total change come
first; the total says, in a word, what the runs can judge of it. Pure: profiles in, values out;
the service does the I/O and keeps profiles of finished runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence

from opdiag.analysis.phases import OUTSIDE, phase_key
from opdiag.diagnosis.baseline import (
    expected_ms,
    judges_speed,
    median_ms,
    median_of,
    select_baseline,
)
from opdiag.diagnosis.result import IN_FLIGHT, BaselineRun, Comparison, Diagnosis, PhaseChange
from opdiag.diagnosis.run_profile import RunProfile
from opdiag.operations import UNKNOWN_TYPE
from opdiag.settings import ComparisonSettings
from opdiag.timeutil import format_duration

_SAME_FRACTION = 0.05  # a change under 5 % of the phase's baseline (and under 1 ms) is "same"
_SAME_MS = 1.0
# within 10 % of the time expected for its data, a run took what it should: that time is an
# estimate from a few runs' time per row, so it is held less tightly than a median
_EXPECTED_FRACTION = 0.1


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
    base_ms = float(median_of([(p.total_us if p else 0) for p in theirs])) / 1000
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
        baseline_count=float(median_of([(p.count if p else 0) for p in theirs])),
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
    if this.status == "completed" or this.work_completed:
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
    else:  # none for a phase the runs did not have, or had for under a millisecond (a
        # median of 0 may be a phase a few of them had: not new)
        pct = " (new)" if top.status == "new" else ""
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
    ``slower``, ``faster``: not for much less data, ``_least_for_its_size``)."""
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
    if change > 0:
        return "slower"
    # less time for much less data is no speed: faster only below what its size allows
    low = _least_for_its_size(c)
    took_its_due = low is not None and c.this_ms >= low * (1 - _EXPECTED_FRACTION)
    return "as expected" if took_its_due else "faster"


def _expected_ms(this: RunProfile, runs: Sequence[RunProfile], judged: bool) -> float | None:
    """``expected_ms`` where it means something: not for a run that did not complete (it
    stopped, whatever its size), nor against runs that do not judge its speed (a training's
    rows say nothing of its epochs, which its strategy sets and no span records)."""
    completed = this.status == "completed" or this.work_completed
    return expected_ms(this, runs) if judged and completed else None


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
    median = median_ms(baseline)
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
    as_expected = out.status == "as expected" and out.expected_ms is None
    low = _least_for_its_size(out) if as_expected else None
    if low is not None and out.baseline_ms is not None:
        out.note = (
            f"its {out.size:,.0f} data rows are fewer than the runs' "
            f"({min(float(r.size or 0) for r in out.runs):,.0f} or more): a good run of its "
            f"size takes between {format_duration(low)} (their time per row) and "
            f"{format_duration(out.baseline_ms)} (their median; fixed costs do not shrink)"
        )
    out.note = _with_work_note(this, out.note)
    return out


def _least_for_its_size(c: Comparison) -> float | None:
    """For a run with much less data than every run (a six-month backtest against two-year
    ones): the least a good run of its size takes, the runs' time per unit times its size.
    Fixed costs do not shrink with the data, so the most is their median and nothing closer
    is known (``expected_ms``): within that span it took what it should. None otherwise."""
    size = c.size
    if not size or not c.runs or any(not r.size for r in c.runs):
        return None
    if size * 1.5 > min(float(r.size or 0) for r in c.runs):
        return None
    return float(median_of([r.duration_ms / float(r.size or 1) * size for r in c.runs]))


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
        baseline_ms=median_ms(chosen),
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
    min_own: int | None = None,
) -> tuple[Comparison, list[RunProfile]]:
    """The comparison of ``this`` with its baseline among ``good`` runs (``good_runs``), and
    the baseline runs themselves (``min_own``: ``select_baseline``'s)."""
    order = list(settings.alike)
    chosen, matched = select_baseline(
        this, good, runs=settings.baseline_runs, min_runs=min_runs, order=order,
        min_own=min_own, paced=settings.strategy_paced,
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
        comparison.note = _with_work_note(this, unjudged_note(this, order, min_runs))
    return comparison, chosen


def _with_work_note(this: RunProfile, note: str) -> str:
    """``note``, after what a run whose work completed but whose status did not is: its
    outcome's save failed after the work (``RunProfile.work_completed``)."""
    if not this.work_completed:
        return note
    saved = (
        "its work completed, then saving its outcome failed (completed -> failed): compared "
        "as a completed run, on the work's times"
    )
    return f"{saved}; {note}" if note else saved
