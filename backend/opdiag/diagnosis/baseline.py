"""The baseline of a run: which good runs it is compared with and judged against.

The baseline of a run is the N most recent *good* runs of its type — healthy, finished, and
not slow against their own baseline — preferring runs that share its strategy and symbol,
then its strategy, then any run of the type, whichever first gives at least ``min_runs``.
Earlier runs come first ("since the last good run"); later ones fill up when there are too
few. A run of the same strategy that ran at the same time and took about as long (not half
the time or less) is no baseline of it: what slowed one (the host, the database, the IB
Gateway they shared) slowed the other, and two runs slowed alike would each read as the
other's normal; one that took much less still says the target was slow. Here too: the
runs' median, the time expected for a run's data, and whether runs may judge a run's speed
at all. Pure: profiles (``diagnosis.run_profile``) in, runs and values out.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

from opdiag.diagnosis.result import Diagnosis
from opdiag.diagnosis.run_profile import RunProfile
from opdiag.diagnosis.rushed import rushed


def is_healthy_run(diagnosis: Diagnosis) -> bool:
    """A candidate for others' baselines: finished, completed, healthy before any baseline
    (slow against the budget is not healthy; slow against the other runs is decided by
    ``good_runs``)."""
    return (
        diagnosis.finished
        and diagnosis.status == "completed"
        and diagnosis.verdict == "healthy"
        and diagnosis.duration_ms is not None
        and not diagnosis.resumed  # the rest of a run from its checkpoint
    )


def may_be_slow(diagnosis: Diagnosis) -> bool:
    """Slow is decided for finished runs the engine called healthy or slow (by budget)."""
    return (
        diagnosis.finished
        and not diagnosis.is_request
        and diagnosis.verdict in ("healthy", "slow")
    )


def may_be_overdue(diagnosis: Diagnosis) -> bool:
    """Overdue is decided for runs in flight the engine called running although quiet past
    the stuck threshold (their worker answers: ``Diagnosis.quiet_ms``)."""
    return (
        not diagnosis.finished
        and not diagnosis.is_request
        and diagnosis.verdict == "healthy"
        and diagnosis.quiet_ms is not None
    )


def judged_by_runs(diagnosis: Diagnosis) -> bool:
    """Whether its good runs may change the verdict: slow for a finished run, overdue for
    one in flight (``may_be_slow``, ``may_be_overdue``). The service and the listing ask
    alike."""
    return may_be_slow(diagnosis) or may_be_overdue(diagnosis)


def compared_with_runs(diagnosis: Diagnosis) -> bool:
    """Whether the run is compared with its good runs at all: every finished operation (a
    failed one is compared too), and one in flight that may be overdue."""
    return (diagnosis.finished and not diagnosis.is_request) or may_be_overdue(diagnosis)


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
        self,
        target: RunProfile,
        runs: int,
        min_runs: int,
        order: Sequence[str],
        *,
        own: int = 0,
        paced: Collection[str] = (),
    ) -> tuple[list[RunProfile], dict[str, str]] | None:
        """The baseline ``good_runs`` already chose for ``target`` in a pool of the same runs
        (none was left out), with the same arguments; None when it did not."""
        known: tuple[tuple[Any, ...], dict[int, Any]] | None = getattr(self, "_selected", None)
        if known is None or known[0] != (runs, min_runs, tuple(order), own, tuple(paced)):
            return None
        hit = known[1].get(id(target))
        if hit is None or hit[0] is not target:
            return None
        return hit[1], hit[2]


def _pool_order(
    target: RunProfile, pool: RunPool, level: tuple[str, ...] = (), peer_key: str | None = None
) -> Iterator[RunProfile]:
    """The target's same-type runs (itself and its ``concurrent_peer`` runs left out, alike
    on ``peer_key``) as a baseline is taken from them: the earlier ones newest first, then
    the later ones oldest first; lazily. ``level``: only the runs that share the target's
    values of those alike keys."""
    if level:
        values = tuple(target.alike[k] for k in level)
        starts, runs = pool.alike_to(target.operation_type, level, values)
    else:
        starts, runs = pool.by_type(target.operation_type)
    split = bisect_right(starts, target.started_at_ms)
    for i in range(split - 1, -1, -1):
        if runs[i].key != target.key and not concurrent_peer(runs[i], target, peer_key):
            yield runs[i]
    for i in range(split, len(runs)):
        if runs[i].key != target.key and not concurrent_peer(runs[i], target, peer_key):
            yield runs[i]


def concurrent_peer(run: RunProfile, target: RunProfile, key: str | None) -> bool:
    """``run`` did the target's work (the same ``key`` value: its strategy) at the same time
    and took about as long: more than half the target's time (run1: two trainings of one
    strategy slowed alike by what they shared)."""
    if key is None:
        return False
    mine = target.alike.get(key)
    return (
        mine is not None
        and run.alike.get(key) == mine
        and run.started_at_ms < target.started_at_ms + target.duration_ms
        and target.started_at_ms < run.started_at_ms + run.duration_ms
        and 2 * run.duration_ms > target.duration_ms
    )


def has_other_good_run(good: Sequence[RunProfile], key: str, op_type: str) -> bool:
    """Is there a good run of ``op_type`` other than ``key`` itself? Without one a run is
    neither compared nor judged slow against anything."""
    return any(r.key != key and r.operation_type == op_type for r in good)


def select_baseline(
    target: RunProfile,
    good: Iterable[RunProfile],
    *,
    runs: int,
    min_runs: int,
    order: Sequence[str] = (),
    min_own: int | None = None,
    paced: Collection[str] = (),
) -> tuple[list[RunProfile], dict[str, str]]:
    """The baseline runs of ``target`` among ``good`` runs and the alike values they share.
    ``min_own`` (fewer than ``min_runs``): that many runs of its own strategy (the first
    alike key) are taken when no baseline of ``min_runs`` runs would judge its speed
    (``judges_speed``: other strategies' runs, of a ``paced`` type): one earlier run of the
    same training says what it takes, ten-epoch runs of another strategy do not."""
    pool = good if isinstance(good, RunPool) else RunPool(good)
    own = min_runs if min_own is None else min(min_own, min_runs)
    known = pool.selected(target, runs, min_runs, order, own=own, paced=paced)
    if known is not None:
        return known
    need = max(runs, min_runs)
    chosen: list[RunProfile] = []
    matched: dict[str, str] = {}
    order = order or list(target.alike)
    peer_key = order[0] if order else None
    fallback: tuple[list[RunProfile], dict[str, str]] | None = None
    for level in _levels(target, order):
        alike = list(islice(_pool_order(target, pool, level, peer_key), need))
        chosen, matched = alike[:runs], {k: target.alike[k] for k in level}
        if len(alike) >= min_runs:
            break
        if fallback is None and level and level[0] == order[0] and len(alike) >= own:
            fallback = chosen, matched
    if fallback is not None and not (
        len(chosen) >= min_runs and judges_speed(target, matched, order, chosen, paced)
    ):
        return fallback
    return chosen, matched


def enough_runs(
    chosen: Sequence[RunProfile],
    matched: Mapping[str, str],
    *,
    min_runs: int,
    order: Sequence[str],
    min_own: int | None = None,
) -> bool:
    """Whether a baseline (``select_baseline``'s) has runs enough to judge ``slow``: at
    least ``min_runs``, or ``min_own`` matched on the run's own strategy (``order[0]``)."""
    if len(chosen) >= min_runs:
        return True
    own = min_runs if min_own is None else min_own
    return bool(order) and order[0] in matched and len(chosen) >= own


def median_ms(runs: Sequence[RunProfile]) -> float:
    """The runs' median duration: what a run of the baseline takes."""
    return float(median_of([r.duration_ms for r in runs]))


def median_of(values: list[float]) -> float:
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
    median = median_ms(runs)
    scaled = float(median_of([r.duration_ms / r.size * size for r in runs if r.size]))
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
    return scaled if scaled is not None else median_ms(runs)


def good_runs(
    healthy: Sequence[RunProfile],
    *,
    runs: int,
    min_runs: int,
    slow_factor: float,
    order: Sequence[str] = (),
    paced: Collection[str] = (),
    min_own: int | None = None,
) -> RunPool:
    """Healthy runs that are not slow against their own baseline (taken among the healthy
    runs): one slow outlier must not raise the bar for the next run. Nor those too fast for
    their work (``diagnosis.rushed``: a training KTRDR completed after a NaN loss), taken
    out first: one such run must not make the good ones next to it read as slow."""
    pool = RunPool(healthy)
    out = RunPool()
    suspect: set[int] = set()
    chosen: dict[int, tuple[RunProfile, list[RunProfile], dict[str, str]]] = {}
    own = min_runs if min_own is None else min(min_own, min_runs)
    for run in healthy:
        base, matched = select_baseline(
            run, pool, runs=runs, min_runs=min_runs, order=order, min_own=own, paced=paced
        )
        chosen[id(run)] = (run, base, matched)
        keys = order or list(run.alike)
        judged = enough_runs(
            base, matched, min_runs=min_runs, order=keys, min_own=own
        ) and judges_speed(run, matched, keys, base, paced)
        if judged and rushed(run, base) is not None:
            suspect.add(id(run))
        if judged and run.duration_ms > slow_factor * _slow_limit_ms(run, base):
            continue
        out.append(run)
    if suspect:
        return good_runs(
            [r for r in healthy if id(r) not in suspect],
            runs=runs, min_runs=min_runs, slow_factor=slow_factor, order=order,
            paced=paced, min_own=min_own,
        )
    if len(out) == len(pool):  # the same runs: each run's baseline among them is the same
        out._selected = ((runs, min_runs, tuple(order), own, tuple(paced)), chosen)
    return out

