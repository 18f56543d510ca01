"""The per-operation shortcuts of a long listing (issue 10: many one-span operations) give
what the plain code gives: clock texts by arithmetic, run profiles whose phases are made
when read, LRU puts made once at the end, templates without placeholders, one-span paths of
the grouping and the alike values, the baseline choice when every run is alike, the median.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import REAL_KTRDR
from opdiag.diagnosis.baseline import RunPool, select_baseline
from opdiag.diagnosis.baseline import is_healthy_run as _is_healthy_run
from opdiag.diagnosis.baseline import median_of as _median
from opdiag.diagnosis.neighbours import clock_text
from opdiag.diagnosis.run_profile import RunProfile, alike_values, run_profile
from opdiag.diagnosis.templates import fill, fill_command, parse_template
from opdiag.lru import LRUCache
from opdiag.model import Span
from opdiag.operations import _raw_pairs, group_operations
from opdiag.service import DiagnosisService
from opdiag.settings import Settings, default_demo_traces
from opdiag.sources.factory import make_source
from opdiag.timeutil import US_PER_S, format_rfc3339

S = US_PER_S
ALL = (0, 2**62)
NOW = 1_893_456_000 * S


def _times() -> list[int]:
    rng = random.Random(7)
    edges = [0, 1, S - 1, S, 86_400 * S - 1, 2**33 * S - 1, 2**33 * S, 253_402_300_799 * S]
    out = [*edges, -1, -86_400 * S - 1]
    for _ in range(20_000):
        second = rng.randrange(2**33)
        out += [second * S, second * S + rng.randrange(S), max(0, second * S - 1)]
    return out


def test_clock_texts_equal_strftime() -> None:
    for us in _times():
        stamp = datetime.fromtimestamp(us / S, tz=UTC)
        assert format_rfc3339(us) == stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert clock_text(us) == datetime.fromtimestamp(us / 1e6, tz=UTC).strftime("%H:%M:%S UTC")


def test_median_equals_statistics_median() -> None:
    rng = random.Random(3)
    for n in range(1, 12):
        values = [rng.choice([1.0, 2.5, rng.random() * 1e6]) for _ in range(n)]
        assert _median(list(values)) == statistics.median(values)
        whole = [rng.randrange(0, 10**9) for _ in range(n)]  # phase totals and counts
        assert _median(list(whole)) == statistics.median(whole)
        assert type(_median(list(whole))) is type(statistics.median(whole))
    with pytest.raises(statistics.StatisticsError):
        _median([])


def test_lru_put_all_keeps_what_puts_one_by_one_keep() -> None:
    for capacity in (0, 1, 3, 10):
        one, later = LRUCache[int](capacity), LRUCache[int](capacity)
        for cache in (one, later):
            cache.put("old", -1)
        queued = later.later()
        for i in range(7):
            one.put(f"k{i}", i)
            queued.append((f"k{i}", i))
        later.put_all(queued)
        assert list(one._data.items()) == list(later._data.items())


def test_templates_without_placeholders_and_commands_fill_as_before() -> None:
    evidence = {"operation.id": "op_1", "empty": "", "flag": True, "n": 1.5}
    static = parse_template("Nothing to do {{literally}}")
    assert static.static == "Nothing to do {literally}"
    assert fill(static, evidence) == fill_command(static, evidence) == static.static
    command = parse_template("curl -s http://x/{operation.id} {attr:flag} {attr:n}")
    assert command.static is None
    assert fill_command(command, evidence) == fill(command, evidence)
    assert fill(command, evidence) == "curl -s http://x/op_1 true 1.5"
    missing = parse_template("run {operation.id} --symbol {attr:symbol}")
    assert fill(missing, evidence) == "run op_1 --symbol n/a"
    assert fill_command(missing, evidence) is None
    defaulted = parse_template("run {attr:symbol|SYMBOL}{attr:flag?; flag $}")
    assert fill_command(defaulted, evidence) == fill(defaulted, evidence) == "run SYMBOL; flag true"


def _span(i: int, **attrs: object) -> Span:
    return Span("0" * 32, f"{i:016x}", "x", "svc", i, 1, attributes=dict(attrs))


def test_one_span_shortcuts_equal_the_general_paths() -> None:
    sources = {"strategy": ("strategy", "cli.args>kwargs.strategy"), "symbol": ("symbol",)}
    cases = [
        {},
        {"strategy": "a", "symbol": "AAPL"},
        {"cli.args": '{"kwargs": {"strategy": "b"}}', "symbol": " "},
        {"operation.id": "op_1", "operation.type": "training"},
        {"operation.id": 1, "operation.type": None},
    ]
    for attrs in cases:
        one = [_span(0, **attrs)]
        # the general path: the same span twice reads the same first carrier
        assert alike_values(one, sources) == alike_values(one * 2, sources)
        assert list(_raw_pairs(one)) == list(_raw_pairs(one * 2))[:1]


def test_baseline_when_every_run_is_alike_equals_the_general_choice() -> None:
    from opdiag.analysis.phases import PhaseProfile

    # one after the other, in scrambled order: runs of one strategy at the same time are
    # not each other's baseline (baseline.concurrent_peer), so none overlaps another here
    runs = [
        RunProfile(
            f"op{i}", "training", (i * 7919) % 50 * 1000, 100.0 + i, PhaseProfile(0, 0, [])
        )
        for i in range(40)
    ]
    pool = RunPool(runs)
    for target in runs:
        for need in (1, 3, 5, 60):
            fast, matched = select_baseline(target, pool, runs=need, min_runs=need)
            # the general path: a level that every run meets (its own strategy, shared)
            tagged = RunProfile(
                target.key,
                "training",
                target.started_at_ms,
                target.duration_ms,
                target.phases,
                alike={"strategy": "s"},
            )
            same = RunPool(
                RunProfile(
                    r.key,
                    "training",
                    r.started_at_ms,
                    r.duration_ms,
                    r.phases,
                    alike={"strategy": "s"},
                )
                for r in runs
            )
            slow, _ = select_baseline(tagged, same, runs=need, min_runs=need, order=["strategy"])
            assert matched == {}
            assert [r.key for r in fast] == [r.key for r in slow]


def _service(path: Path) -> DiagnosisService:
    settings = Settings.model_validate({"trace_paths": [str(path)]})
    return DiagnosisService(make_source(settings), settings)


@pytest.mark.parametrize(
    "path", [default_demo_traces(), REAL_KTRDR / "run1" / "traces"], ids=["demo", "real"]
)
def test_lazy_profiles_equal_eager_ones(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} not present")
    service = _service(path)
    traces = service.source.recent_traces(*ALL, 1_000_000)
    patterns = service.settings.diagnosis.noise_span_patterns
    groups = {g.key: g for g in group_operations(traces, patterns)}
    checked = 0
    for d in service.operations(*ALL, now_us=NOW):
        group = groups[d.key]
        args = (
            d,
            group.traces,
            service.settings.comparison,
            service.settings.diagnosis.noise_span_patterns,
        )
        eager, lazy = run_profile(*args), run_profile(*args, lazy=True)
        # every field equal, the phases made when read
        assert [getattr(lazy, f.name) for f in fields(RunProfile)] == [
            getattr(eager, f.name) for f in fields(RunProfile)
        ]
        checked += _is_healthy_run(d)
    assert checked
