"""The listing's baseline: the median of every other healthy run, looked up, not re-sorted
per operation (a 200k-operation listing used to sort 200k lists of 200k durations)."""

from __future__ import annotations

import random
import statistics

import pytest
from opdiag.service import Baseline


def _expected(durations, key):
    values = [ms for k, ms in durations if k != key]
    return (statistics.median(values) if values else 0.0), len(values)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 7, 10, 31])
def test_median_without_each_run_equals_the_median_of_the_others(n):
    rng = random.Random(n)
    durations = [(f"op{i}", float(rng.randrange(6))) for i in range(n)]
    baseline = Baseline(durations)
    for key in [k for k, _ in durations] + ["not-a-run"]:
        assert baseline.median_without(key) == _expected(durations, key)


def test_a_key_seen_twice_is_left_out_entirely():
    durations = [("a", 1.0), ("a", 9.0), ("b", 2.0), ("c", 4.0)]
    assert Baseline(durations).median_without("a") == (3.0, 2)
