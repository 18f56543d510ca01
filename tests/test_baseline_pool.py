"""Choosing a baseline from an indexed pool gives the runs the plain definition gives (filter
every run, newest earlier runs first, then the oldest later ones; no run of the target's
strategy that ran at the same time and took about as long), without the quadratic cost a
long listing paid for it."""

from __future__ import annotations

import random

import pytest
from opdiag.analysis.phases import PhaseProfile
from opdiag.diagnosis.baseline import RunPool, good_runs, select_baseline
from opdiag.diagnosis.run_profile import RunProfile


def _reference(target, good, *, runs, min_runs, order):
    pool = [r for r in good if r.key != target.key and r.operation_type == target.operation_type
            and not _concurrent_peer(r, target, order[0])]
    before = sorted((r for r in pool if r.started_at_ms <= target.started_at_ms),
                    key=lambda r: (r.started_at_ms, r.key), reverse=True)
    after = sorted((r for r in pool if r.started_at_ms > target.started_at_ms),
                   key=lambda r: (r.started_at_ms, r.key))
    pool = before + after
    present = [name for name in order if name in target.alike]
    chosen, matched = [], {}
    for level in [tuple(present[:i]) for i in range(len(present), -1, -1)]:
        alike = [r for r in pool if all(r.alike.get(k) == target.alike[k] for k in level)]
        chosen, matched = alike[:runs], {k: target.alike[k] for k in level}
        if len(alike) >= min_runs:
            break
    return chosen, matched


def _concurrent_peer(run, target, key):
    """The definition's exception: a run of the target's strategy that ran at the same time
    and took more than half its time."""
    return (
        target.alike.get(key) is not None and run.alike.get(key) == target.alike[key]
        and run.started_at_ms < target.started_at_ms + target.duration_ms
        and target.started_at_ms < run.started_at_ms + run.duration_ms
        and 2 * run.duration_ms > target.duration_ms
    )


def _runs(rng: random.Random, n: int) -> list[RunProfile]:
    phases = PhaseProfile(0, 0, [])
    out = []
    for i in range(n):
        alike = {k: rng.choice("ab") for k in ("strategy", "symbol") if rng.random() < 0.7}
        out.append(RunProfile(
            key=f"op{i}", operation_type=rng.choice(["training", "backtesting", None]),
            started_at_ms=rng.randrange(20), duration_ms=float(rng.randrange(1, 50)),
            phases=phases, alike=alike,
        ))
    return out


@pytest.mark.parametrize("seed", range(20))
def test_pool_selection_equals_the_definition(seed):
    rng = random.Random(seed)
    good = _runs(rng, rng.randrange(0, 40))
    pool = RunPool(good)
    order = ["strategy", "symbol"]
    for target in good + _runs(rng, 3):
        for runs, min_runs in ((5, 2), (1, 1), (3, 5)):
            want = _reference(target, good, runs=runs, min_runs=min_runs, order=order)
            assert select_baseline(target, pool, runs=runs, min_runs=min_runs, order=order) == want
            assert select_baseline(target, good, runs=runs, min_runs=min_runs, order=order) == want


def test_good_runs_is_an_indexed_pool():
    good = good_runs(_runs(random.Random(1), 30), runs=5, min_runs=2, slow_factor=2.0)
    assert isinstance(good, RunPool)
