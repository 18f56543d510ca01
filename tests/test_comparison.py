"""diagnosis.comparison: alike values, baseline selection, good runs and the phase comparison,
on hand-made profiles and on the demo and real-KTRDR corpora."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from opdiag.analysis.phases import GAP, OUTSIDE, SPAN, PhaseProfile, PhaseTime, phase_key
from opdiag.diagnosis.baseline import enough_runs, good_runs, select_baseline
from opdiag.diagnosis.comparison import (
    change_phrase,
    compare,
    compare_with_baseline,
    slow_reference,
    total_status,
)
from opdiag.diagnosis.run_profile import RunProfile, alike_values, data_size, error_types
from opdiag.model import Event, Span
from opdiag.service import DiagnosisService
from opdiag.settings import ComparisonSettings, Settings
from opdiag.sources.files import FileSource

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "traces"
REAL = ROOT / "tests" / "data" / "real-ktrdr" / "run1" / "traces"
SLOW = "op_training_20261124_081940_89c7eab4"
DEMO_GOOD_TRAININGS = {
    "op_training_20261124_080100_5f311b66",
    "op_training_20261124_081850_bda22752",
    "op_training_20261124_082320_b74390a7",
}
MIN = 60_000_000


def sp(name: str, **attrs) -> Span:
    return Span("0" * 32, "1" * 16, name, "svc", 0, 1, attributes=dict(attrs))


def run(key: str, minute: int, minutes: float, phases: dict[str, float], **kw) -> RunProfile:
    """A profile: started at ``minute``, ``minutes`` long, phases name -> minutes
    (``gap:x`` / ``outside:x`` keys for the other kinds)."""
    found = {}
    for i, (name, value) in enumerate(phases.items()):
        kind, _, label = name.rpartition(":")
        kind = kind or SPAN
        found[phase_key(kind, label)] = PhaseTime(label, kind, int(value * MIN), 1, i)
    start = minute * MIN
    profile = PhaseProfile(start, start + int(minutes * MIN), ["worker"], found)
    return RunProfile(
        key=key,
        operation_type=kw.pop("operation_type", "training"),
        started_at_ms=start // 1000,
        duration_ms=minutes * 60_000,
        phases=profile,
        **kw,
    )


# --- alike values and error types ---------------------------------------------------------


def test_alike_values_from_attributes_and_json_encoded_cli_args():
    sources = ComparisonSettings().alike
    real_cli = json.dumps(
        {"args": [], "kwargs": {"strategy": "v3_minimal", "symbols": None, "follow": True}}
    )
    spans = [
        sp("cli.train", **{"cli.args": real_cli}),
        sp("operation.register", **{"data.symbol": "EURUSD"}),
    ]
    assert alike_values(spans, sources) == {"strategy": "v3_minimal", "symbol": "EURUSD"}
    demo_cli = json.dumps({"strategy": "neuro", "symbols": ["AAPL", "MSFT"]})
    assert alike_values([sp("cli.train", **{"cli.args": demo_cli})], sources) == {
        "strategy": "neuro",
        "symbol": "AAPL,MSFT",
    }
    # Unparsable or absent values are simply not there.
    assert alike_values([sp("x", **{"cli.args": "{not json"})], sources) == {}
    assert alike_values([sp("x", **{"data.symbol": "None"})], sources) == {}


def test_data_size_adds_a_phase_repeated_under_one_parent_and_nothing_else():
    """A training on three symbols loads each in a training.data_loading of its own under
    the worker's request: its size is their rows together. The same rows on another phase
    (a backtest's feature_compute) or on a load in another trace (a resume) are the same
    data again, not more."""
    def load(rows: int, parent: str = "w", trace: str = "0" * 32) -> Span:
        return Span(trace, "2" * 16, "training.data_loading", "svc", 0, 1,
                    attributes={"data.rows": rows}, parent_id=parent)

    assert data_size([load(3097), load(3097), load(3000)], ["data.rows"]) == 9194
    compute = Span("0" * 32, "3" * 16, "backtest.feature_compute", "svc", 0, 1,
                   attributes={"data.rows": 3097}, parent_id="w")
    assert data_size([load(3097), compute], ["data.rows"]) == 3097
    assert data_size([load(3097), load(3097, trace="9" * 32)], ["data.rows"]) == 3097
    assert data_size([load(3097), load(3097, parent="other")], ["data.rows"]) == 3097


def test_error_types_of_error_spans():
    failed = sp("training.data_loading")
    failed.error = True
    failed.events = [Event("exception", 0, {"exception.type": "DataNotFoundError"})]
    bare = sp("POST")
    bare.error = True
    assert error_types([failed, bare, sp("fine")]) == ["DataNotFoundError", "error in POST"]


# --- the baseline ------------------------------------------------------------------------


def test_baseline_prefers_alike_runs_then_falls_back_to_the_type():
    target = run("t", 100, 10, {}, alike={"strategy": "s1", "symbol": "AAPL"})
    same_both = [run(f"b{i}", i, 5, {}, alike={"strategy": "s1", "symbol": "AAPL"}) for i in (1, 2)]
    same_strategy = [run(f"s{i}", 10 + i, 5, {}, alike={"strategy": "s1"}) for i in (1, 2, 3)]
    other = [run("o1", 50, 5, {}, alike={"strategy": "s2"}),
             run("x1", 60, 5, {}, operation_type="backtesting")]
    pool = same_both + same_strategy + other
    order = ["strategy", "symbol"]
    chosen, matched = select_baseline(target, pool, runs=5, min_runs=2, order=order)
    assert [r.key for r in chosen] == ["b2", "b1"] and matched == {"strategy": "s1",
                                                                  "symbol": "AAPL"}
    chosen, matched = select_baseline(target, pool, runs=5, min_runs=3, order=order)
    assert [r.key for r in chosen] == ["s3", "s2", "s1", "b2", "b1"]
    assert matched == {"strategy": "s1"}
    chosen, matched = select_baseline(target, pool, runs=10, min_runs=9, order=order)
    assert matched == {} and "x1" not in {r.key for r in chosen} and len(chosen) == 6


def test_one_run_of_its_own_strategy_judges_a_training_other_strategies_do_not():
    """``min_own``: fewer runs of its strategy than ``min_runs`` are its baseline when the
    type's runs would not judge it (a paced type's other strategies); they are enough."""
    target = run("t", 100, 10, {}, alike={"strategy": "s1", "symbol": "AAPL"})
    mine = run("m1", 1, 5, {}, alike={"strategy": "s1", "symbol": "AAPL"})
    others = [run(f"o{i}", 10 + i, 5, {}, alike={"strategy": "s2"}) for i in (1, 2)]
    order, paced = ["strategy", "symbol"], ["training"]
    chosen, matched = select_baseline(
        target, [mine, *others], runs=5, min_runs=2, order=order, min_own=1, paced=paced
    )
    assert [r.key for r in chosen] == ["m1"] and matched["strategy"] == "s1"
    assert enough_runs(chosen, matched, min_runs=2, order=order, min_own=1)
    assert not enough_runs(chosen, matched, min_runs=2, order=order)
    # without min_own as before; with runs of the type that judge it (its own), those
    chosen, matched = select_baseline(target, [mine, *others], runs=5, min_runs=2, order=order)
    assert len(chosen) == 3 and matched == {}
    plain = [run(f"p{i}", 20 + i, 5, {}) for i in (1, 2)]
    chosen, matched = select_baseline(
        run("u", 100, 10, {}), [mine, *plain], runs=5, min_runs=2, min_own=1, paced=paced
    )
    assert len(chosen) == 3 and matched == {}
    # two slow runs of its own: the second is not a good run
    slow = run("m2", 2, 20, {}, alike={"strategy": "s1", "symbol": "AAPL"})
    good = good_runs([mine, slow, *others], runs=5, min_runs=2, slow_factor=2.0,
                     order=order, paced=paced, min_own=1)
    assert [r.key for r in good] == ["m1", "o1", "o2"]


def test_baseline_is_the_n_most_recent_earlier_runs_then_later_ones():
    target = run("t", 50, 10, {})
    pool = [run(f"r{m}", m, 5, {}) for m in (10, 20, 30, 40, 60, 70)]
    chosen, _ = select_baseline(target, pool, runs=3, min_runs=2)
    assert [r.key for r in chosen] == ["r40", "r30", "r20"]
    chosen, _ = select_baseline(target, pool, runs=6, min_runs=2)
    assert [r.key for r in chosen] == ["r40", "r30", "r20", "r10", "r60", "r70"]
    assert select_baseline(pool[0], [pool[0]], runs=3, min_runs=2)[0] == []  # never itself


def test_good_runs_drop_the_slow_outlier():
    healthy = [run(f"r{m}", m, minutes, {}) for m, minutes in
               ((1, 10), (2, 11), (3, 30), (4, 60), (5, 25))]
    good = good_runs(healthy, runs=5, min_runs=2, slow_factor=2.0)
    assert [r.key for r in good] == ["r1", "r2", "r3", "r5"]  # 60 > 2 x median(10,11,30,25)


# --- the comparison ----------------------------------------------------------------------


def test_rows_order_status_and_headline():
    base = [
        run("b1", 1, 10, {"load": 2, "indicators": 1, "fuzzy": 1, "gap:after fuzzy": 6},
            error_types=["Timeout"]),
        run("b2", 2, 12, {"load": 2, "indicators": 1.5, "fuzzy": 1, "gap:after fuzzy": 7.5}),
        run("b3", 3, 11, {"load": 2, "indicators": 1, "gap:after fuzzy": 8}),
    ]
    this = run("t", 9, 50, {"load": 2, "indicators": 40, "extra": 1, "gap:after fuzzy": 7},
               error_types=["Timeout", "ValueError"])
    c = compare(this, base, wanted=5, matched_on={"strategy": "s"})
    assert [r.key for r in c.runs] == ["b1", "b2", "b3"]
    assert c.baseline_ms == 11 * 60_000 and c.change_ms == 39 * 60_000
    assert c.change_pct == pytest.approx(39 / 11 * 100)
    rows = {r.name: r for r in c.phases}
    assert c.phases[0].name == "indicators"  # explains most of the change
    assert rows["indicators"].baseline_ms == 60_000 and rows["indicators"].status == "slower"
    assert rows["indicators"].share_of_change == pytest.approx(39 / 39)
    assert rows["extra"].status == "new" and rows["extra"].change_pct is None
    assert rows["fuzzy"].status == "missing" and rows["fuzzy"].this_ms == 0  # 2 of 3 had it
    assert rows["load"].status == "same"
    assert rows["after fuzzy"].kind == GAP
    assert c.phases[-1].status == "same"
    assert c.new_error_types == ["ValueError"]
    assert c.headline == "indicators +39m00s (1m00s → 40m00s, +3,900 %) vs the last 3 good runs"
    assert change_phrase(c) == "indicators +39m00s (+3,900 %)"


def test_a_faster_run_leads_with_what_got_faster_and_names_no_slow_phase():
    base = [run("b", 1, 10, {"load": 5, "outside:after the worker": 5})]
    this = run("t", 2, 6, {"load": 1, "outside:after the worker": 5})
    c = compare(this, base, wanted=5)
    assert c.phases[0].name == "load" and c.phases[0].status == "faster"
    assert c.phases[1].kind == OUTSIDE
    assert change_phrase(c) is None
    assert c.headline.startswith("load -4m00s")


def test_no_baseline_says_so():
    c = compare(run("t", 1, 5, {"load": 1}), [], wanted=5)
    assert c.runs == [] and c.phases == [] and "no good run of training" in c.note


def test_rows_are_capped_and_counted():
    many = {f"p{i}": 1 + i for i in range(30)}
    c = compare(run("t", 2, 600, many), [run("b", 1, 40, {})], wanted=1, max_rows=20)
    assert len(c.phases) == 20 and c.phases_omitted == 10


# --- the corpora -------------------------------------------------------------------------


def service_for(path: Path) -> DiagnosisService:
    settings = Settings(trace_paths=[path])
    return DiagnosisService(FileSource([path]), settings)


def test_demo_slow_training_names_the_phase_that_got_slower_and_by_how_much():
    d = service_for(DEMO).diagnose(SLOW, now_us=1_795_509_960 * 1_000_000)
    c = d.comparison
    assert d.verdict == "slow"
    assert {r.key for r in c.runs} == DEMO_GOOD_TRAININGS  # healthy runs of the same strategy
    assert c.matched_on == {"strategy": "v3_minimal"}
    top = c.phases[0]  # the span-less training loop
    assert (top.name, top.kind, top.status) == ("after training.data_loading", GAP, "slower")
    assert top.this_ms == 900_000 and top.baseline_ms == 178_000
    assert top.change_ms == 722_000 and top.share_of_change > 0.99
    assert "after training.data_loading +12m02s" in c.headline
    assert "after training.data_loading +12m02s (+406 %)" in d.summary
    assert c.baseline_ms == pytest.approx(187_380.051)  # median of the three good runs
    # The good runs loaded less data: slow is judged against their time per data row times
    # this run's 6,240 rows (longer than their median), and the summary says so.
    assert c.size == 6240 and c.expected_ms is not None and c.expected_ms > c.baseline_ms
    assert d.baseline_ms == pytest.approx(c.expected_ms)
    assert "for its 6,240 data rows" in d.summary


def test_demo_failed_training_misses_the_phases_after_the_failure():
    d = service_for(DEMO).diagnose("op_training_20261124_081920_cc1544d5")
    rows = {r.name: r for r in d.comparison.phases}
    assert rows["after training.data_loading"].status == "not reached"  # failed before
    assert any("DataNotFoundError" in t for t in d.comparison.new_error_types)


def test_a_run_that_never_reached_a_worker_shows_no_false_new_phases():
    """The data load whose IB host service refused never reached it: its CLI and backend
    spans are not phases the good runs lack (they have them, on the caller's side); its
    whole length is time before the worker, and the host's phases are missing."""
    d = service_for(DEMO).diagnose(
        "op_data_load_20261124_080330_1ed0b59b", now_us=1_795_509_960 * 1_000_000
    )
    rows = {r.name: r for r in d.comparison.phases}
    assert not [r.name for r in d.comparison.phases if r.status == "new"]
    before = rows["before the worker"]
    assert before.kind == OUTSIDE and before.this_ms == pytest.approx(d.duration_ms)
    assert rows["POST /data/historical"].status == "not reached"  # a run that failed


def test_a_run_without_workers_is_compared_span_by_span_with_runs_without_workers():
    """Where no run has a worker side (a system without configured workers), phases stay
    the span names of the whole operation."""
    this = run("a", 10, 2, {"x": 1, "y": 1})
    this.phases.reached_worker = False
    base = [run(k, i, 1, {"x": 0.5, "y": 0.5}) for i, k in enumerate("bcd")]
    for r in base:
        r.phases.reached_worker = False
    rows = {r.name: r.status for r in compare(this, base, wanted=3).phases}
    assert rows == {"x": "slower", "y": "slower"}


def test_real_ktrdr_training_loop_gap_is_the_phase_that_changed():
    svc = service_for(REAL)
    now = 1_796_400_000 * 1_000_000
    longer = svc.diagnose("op_training_20261204_155512_6652e327", now_us=now).comparison
    assert [r.key for r in longer.runs] == ["op_training_20261204_154305_f6579e1a"]
    top = longer.phases[0]
    assert (top.name, top.kind, top.after) == (
        "after training.data_loading", GAP, "training.data_loading",
    )
    assert top.this_ms > 200_000 and top.baseline_ms > 40_000
    # The earlier run, without an earlier good run, is compared with the later one.
    first = svc.diagnose("op_training_20261204_154305_f6579e1a", now_us=now).comparison
    assert [r.key for r in first.runs] == ["op_training_20261204_155512_6652e327"]
    # A training that failed on missing data never reached the span-less training loop.
    failed = svc.diagnose("op_training_20261204_155455_c5babf81", now_us=now).comparison
    statuses = {r.name: r.status for r in failed.phases}
    assert statuses["after training.data_loading"] == "not reached"
    assert statuses["training.data_loading"] == "stopped"  # where it failed
    assert "ktrdr.errors.exceptions.DataNotFoundError" in failed.new_error_types


def test_a_run_that_did_not_complete_is_neither_faster_nor_slower_where_it_stopped():
    """run1: the training cancelled 51 s into its loop read "faster" than good runs there; the
    one whose worker was killed put its loop "after the worker" (the caller noticing the end)
    and said the loop was "missing"; a training in flight, the same."""
    svc = service_for(REAL)
    now = 1_796_400_000 * 1_000_000
    cancelled = svc.diagnose("op_training_20261204_154638_11134ee7", now_us=now).comparison
    top = cancelled.phases[0]
    assert (top.name, top.status) == ("after training.data_loading", "stopped")
    assert cancelled.headline.startswith("stopped after training.data_loading; the last 2 good")
    lost = svc.diagnose("op_training_20261204_154749_b37ed832", now_us=now).comparison
    rows = {r.name: r for r in lost.phases}
    assert rows["after training.data_loading"].status == "stopped"
    # killed 33 s in: its loop ran until the worker's last answer, not to the orphan detector
    assert 30_000 < rows["after training.data_loading"].this_ms < 35_000
    assert rows["after the worker's last answer"].this_ms > 6 * 60_000
    assert rows["after the worker"].this_ms == 0  # the worker never closed it
    assert lost.phases[0].name == "after training.data_loading"


@pytest.mark.parametrize(
    ("op", "phase", "worked_ms"),
    [
        ("op_training_20261204_160033_fcc59c1d", "after training.data_loading", 20_496),
        ("op_backtesting_20261204_155333_db0629d4", "after backtest.feature_compute", 815),
    ],
)
def test_a_lost_worker_s_open_phase_ends_at_its_last_answer(op: str, phase: str, worked_ms):
    """run1's killed workers: the phase they stopped in ran until their last answer (the
    bottleneck's open tail ends there too), not to KTRDR's orphan detector 6 min later
    ('6m34s after training.data_loading' beside a bottleneck of 20.5 s); the time after the
    last answer is a phase of its own, which the good runs do not have."""
    d = service_for(REAL).diagnose(op, now_us=1_796_400_600 * 1_000_000)
    rows = {r.name: r for r in d.comparison.phases}
    assert d.comparison.phases[0].name == phase
    assert (rows[phase].status, round(rows[phase].this_ms)) == ("stopped", worked_ms)
    after = rows["after the worker's last answer"]
    assert (after.kind, after.status) == (OUTSIDE, "new") and after.this_ms > 6 * 60_000
    assert d.worked_until_ms is not None and d.started_at_ms is not None
    assert d.worked_until_ms - d.started_at_ms < d.duration_ms / 10
    if d.bottleneck.kind == GAP and d.bottleneck.after_span_name == phase.removeprefix("after "):
        assert d.bottleneck.duration_ms == pytest.approx(rows[phase].this_ms)


def test_a_run_in_flight_is_in_progress_in_its_open_phase(tmp_path: Path):
    """The 4-minute training of run1, 1.5 min into its loop: the time since its last worker
    span is the worker's open work, in progress, not "after the worker" nor "missing"."""
    files = sorted(REAL.iterdir(), key=lambda p: p.name.split("_")[1])
    cut = next(i for i, p in enumerate(files) if p.name.split("_")[0] >= "20261204T155645")
    snap = tmp_path / "snap"
    snap.mkdir()
    for path in files[:cut]:
        (snap / path.name).symlink_to(path)
    now = int(datetime(2026, 12, 4, 15, 56, 45, tzinfo=UTC).timestamp() * 1e6)
    this, _, c = service_for(snap).compare(
        "op_training_20261204_155512_6652e327", "op_training_20261204_154305_f6579e1a", now
    )
    assert this.status == "running"
    rows = {r.name: r for r in c.phases}
    assert rows["after training.data_loading"].status == "in progress"
    assert rows["after training.data_loading"].this_ms > 60_000
    assert rows["after the worker"].this_ms == 0
    assert c.headline.startswith("in progress after training.data_loading, 1m"), c.headline
    assert (c.status, c.change_ms, c.expected_ms) == ("in progress", None, None)


def test_baseline_runs_from_the_environment_and_bounds():
    from opdiag.errors import InputError
    from opdiag.settings import load_settings

    assert load_settings(environ={"OPDIAG_BASELINE_RUNS": "3"}).comparison.baseline_runs == 3
    with pytest.raises(InputError, match=r"comparison\.baseline_runs"):
        load_settings(environ={"OPDIAG_BASELINE_RUNS": "0"})


def test_a_bigger_run_is_held_to_the_baseline_scaled_to_its_data():
    """Backtest time grows with the bars it replays (run1: 3,120 rows in 5.2 s, 12,505 in
    19.4 s): a two-year run is not slow next to six-month ones, a stall still is; a smaller
    run keeps the plain median (fixed costs do not shrink with the data)."""
    small = [run(f"b{i}", i, 5.2 / 60, {}) for i in (1, 2, 3)]
    for r in small:
        r.size = 3120.0
    big = run("t", 10, 19.4 / 60, {})
    big.size = 12505.0
    c = compare(big, small, wanted=5)
    assert c.expected_ms == pytest.approx(5200 * 12505 / 3120, rel=1e-3)
    assert slow_reference(c) == (c.expected_ms, "for its 12,505 data rows")
    assert big.duration_ms < 2 * c.expected_ms  # not slow
    stalled = run("s", 10, 60 / 60, {})
    stalled.size = 12505.0
    assert stalled.duration_ms > 2 * compare(stalled, small, wanted=5).expected_ms
    tiny = run("y", 10, 4 / 60, {})
    tiny.size = 500.0
    c = compare(tiny, small, wanted=5)
    assert c.expected_ms is None and slow_reference(c) == (c.baseline_ms, None)
    unknown = run("u", 10, 19.4 / 60, {})
    assert compare(unknown, small, wanted=5).expected_ms is None


def test_runs_of_another_strategy_are_compared_but_do_not_judge_speed():
    """A 30-epoch model next to 10-epoch ones (run1's v3_medium and v3_minimal): shown side
    by side, but slow is left to the type's budget."""
    target = run("t", 100, 4, {}, alike={"strategy": "v3_medium", "symbol": "AAPL"})
    others = [run(f"o{i}", i, 0.75, {}, alike={"strategy": "v3_minimal"}) for i in (1, 2, 3)]
    settings = ComparisonSettings()
    c, chosen = compare_with_baseline(target, others, settings, min_runs=2)
    assert len(chosen) == 3 and c.matched_on == {} and not c.judges_speed
    assert "v3_medium" in c.note and slow_reference(c) == (None, None)
    assert c.note.startswith("fewer than 2 good runs of strategy v3_medium")  # one is not enough
    same = [run(f"s{i}", i, 0.75, {}, alike={"strategy": "v3_medium"}) for i in (1, 2)]
    c, _ = compare_with_baseline(target, others + same, settings, min_runs=2)
    assert c.judges_speed and c.matched_on == {"strategy": "v3_medium"}
    # good runs: a run of another strategy is never dropped as a slow outlier
    good = good_runs([*others, target], runs=5, min_runs=2, slow_factor=2.0,
                     order=["strategy", "symbol"])
    assert "t" in {r.key for r in good}


def test_a_json_attribute_nested_too_deep_is_an_absent_alike_value():
    """A hostile ``cli.args`` nested deeper than the JSON parser goes is unreadable, not a
    crash: the next source of the value answers."""
    deep = '{"kwargs": ' + "[" * 9000 + "]" * 9000 + "}"
    spans = [sp("cli.train", **{"cli.args": deep, "strategy.name": "neuro"})]
    assert alike_values(spans, ComparisonSettings().alike) == {"strategy": "neuro"}


def test_a_smaller_run_is_held_to_the_line_through_runs_of_other_sizes():
    """run1's history: a six-month backtest (3,120 rows, 5.2 s) and a two-year one (12,505
    rows, 20.1 s). Their plain median (12.7 s) would let a six-month run take 25 s; the line
    through them (0.25 s fixed, 1.59 ms a row) expects 5.2 s of it. Below the smallest run
    the line is not extrapolated: a one-month backtest is held to the six-month one's time
    (KTRDR's bar loop slows down with more bars, which pulls the line's fixed part under the
    real start-up costs)."""
    six, two = run("a", 1, 5.2 / 60, {}), run("b", 2, 20.1 / 60, {})
    six.size, two.size = 3120.0, 12505.0
    again = run("t", 10, 20.3 / 60, {})
    again.size = 3120.0
    c = compare(again, [six, two], wanted=5)
    assert c.expected_ms == pytest.approx(5200, rel=0.02)
    assert again.duration_ms > 2 * slow_reference(c)[0]
    month = run("y", 10, 2.85 / 60, {})  # 520 rows in 2.85 s: not slow
    month.size = 520.0
    c = compare(month, [six, two], wanted=5)
    assert c.expected_ms == pytest.approx(5200, rel=0.02)
    assert month.duration_ms < 2 * slow_reference(c)[0]
    close = run("n", 2, 6.7 / 60, {})  # sizes within half of each other: no line
    close.size = 4000.0
    assert compare(again, [six, close], wanted=5).expected_ms is None
    apart = run("p", 2, 8.3 / 60, {})  # 1.6x the rows: the line holds
    apart.size = 5000.0
    assert compare(again, [six, apart], wanted=5).expected_ms == pytest.approx(5200, rel=0.02)
    falling = run("c", 3, 1 / 60, {})  # a bigger run that took less: no line to draw
    falling.size = 20000.0
    assert compare(again, [six, falling], wanted=5).expected_ms is None


def test_a_run_whose_strategy_is_unknown_is_not_judged_by_runs_of_named_ones():
    """Sent with curl, a training names no strategy (only KTRDR's CLI writes it), and a
    training's time is set by its strategy's epochs; a backtest's by its bars."""
    target = run("t", 100, 4, {}, alike={"symbol": "AAPL"})
    named = [run(f"o{i}", i, 0.75, {}, alike={"strategy": "v3_minimal"}) for i in (1, 2, 3)]
    c, _ = compare_with_baseline(target, named, ComparisonSettings(), min_runs=2)
    assert not c.judges_speed and "strategy is not known" in c.note
    backtest = run("b", 100, 4, {}, alike={"symbol": "AAPL"}, operation_type="backtesting")
    backtests = [
        run(f"k{i}", i, 0.75, {}, alike={"strategy": "v3_minimal"}, operation_type="backtesting")
        for i in (1, 2, 3)
    ]
    c, _ = compare_with_baseline(backtest, backtests, ComparisonSettings(), min_runs=2)
    assert c.judges_speed
    paced = ComparisonSettings(strategy_paced=["backtesting"])  # the setting decides
    c, _ = compare_with_baseline(backtest, backtests, paced, min_runs=2)
    assert not c.judges_speed
    unnamed = [run(f"u{i}", i, 0.75, {}) for i in (1, 2, 3)]
    c, _ = compare_with_baseline(target, unnamed, ComparisonSettings(), min_runs=2)
    assert c.judges_speed  # nothing tells them apart: judged as before


class _CountedAlike(dict):
    reads = 0

    def get(self, key, default=None):  # type: ignore[override]
        _CountedAlike.reads += 1
        return super().get(key, default)


def test_runs_of_values_no_other_run_shares_are_grouped_once():
    """Two thousand runs, each of its own symbol: each run's baseline is looked up in a
    group made once, not found by walking every other run (that was quadratic: minutes for
    a listing of 20k such operations)."""
    n = 2_000
    runs = [run(f"r{i}", i, 1, {}, alike={"strategy": "s"}) for i in range(n)]
    for i, r in enumerate(runs):
        r.alike = _CountedAlike({"strategy": "s", "symbol": f"SYM{i}"})
    _CountedAlike.reads = 0
    good = good_runs(runs, runs=5, min_runs=2, slow_factor=2.0, order=["strategy", "symbol"])
    assert len(good) == n
    assert _CountedAlike.reads < 20 * n


def test_where_a_run_stopped_leads_its_comparison_whatever_the_other_changes():
    """A failed run whose phase before the failure shrank most still leads with where it
    stopped (the sort key, not the size of the change, puts it first)."""
    this = run("a", 10, 1.5, {"setup": 0.1, "load": 1.0}, status="failed")
    base = [run(k, i, 4, {"setup": 2.0, "load": 1.2, "gap:after load": 0.8}) for i, k in
            enumerate("bcd")]
    c = compare(this, base, wanted=3)
    assert [r.status for r in c.phases][:2] == ["stopped", "faster"]
    assert c.phases[0].name == "load" and c.headline.startswith("stopped in load")
    statuses = {r.name: r.status for r in c.phases}
    assert statuses["after load"] == "not reached"


def test_a_run_its_worker_closed_keeps_the_time_after_it_as_the_callers():
    """A cancel the worker answered (its own transition to cancelled) closed the run: the
    time after its last span is the caller noticing the end, not the worker's open work."""
    from opdiag.diagnosis.result import Diagnosis
    from opdiag.diagnosis.run_profile import run_profile
    from opdiag.model import build_trace

    tid = "a" * 32
    op = "op_training_20261204_154638_11134ee7"

    def span(i: int, name: str, service: str, start_s: float, **attrs: str) -> Span:
        return Span(tid, f"{i:016x}", name, service, int(start_s * 1e6), 1_000,
                    attributes={"operation.id": op, **attrs})

    worker = "ktrdr-training-worker-1"
    trace = build_trace(tid, [
        span(1, "training.data_loading", worker, 0),
        span(2, "operation.state_transition", worker, 50, **{"operation.to_status": "cancelled"}),
        span(3, "operation.state_transition", "ktrdr-api", 60,
             **{"operation.to_status": "cancelled"}),
    ])

    def profile(status: str):
        d = Diagnosis(operation_id=op, trace_ids=[tid], verdict="cancelled", summary="",
                      status=status, started_at_ms=0, duration_ms=60_001.0)
        return run_profile(d, [trace], ComparisonSettings(), []).phases.phases

    closed = profile("cancelled")
    assert "outside:after the worker" in closed
    assert "gap:after operation.state_transition" not in closed


NOT_COMPLETED = [
    "op_backtesting_20261204_154627_d7e27c97",  # data missing
    "op_training_20261204_154638_11134ee7",  # cancelled
    "op_training_20261204_154749_b37ed832",  # its worker killed
    "op_backtesting_20261204_155333_db0629d4",  # its worker killed
    "op_training_20261204_155455_c5babf81",  # data missing
    "op_training_20261204_155505_4e5e6afc",  # invalid input
    "op_backtesting_20261204_160009_05b7bec2",  # cancelled
    "op_training_20261204_160033_fcc59c1d",  # its worker killed
]


def test_a_run_that_did_not_complete_has_a_total_that_is_no_speed():
    """run1's audit: the killed backtest read 'change +6.1 min (+2899 %)' and total slower,
    the cancelled backtest slower +7 %, the invalid input faster -100 %, and each 'Expected
    for its 6,240 data rows: 2.8 min'. A run that stopped is where it stopped: no change, no
    expected time, a total that is ``stopped``."""
    svc = service_for(REAL)
    for op in NOT_COMPLETED:
        c = svc.diagnose(op, now_us=1_796_400_600 * 1_000_000).comparison
        assert (c.status, total_status(c)) == ("stopped", "stopped"), op
        assert c.change_ms is None and c.change_pct is None, op
        assert c.expected_ms is None, op
        assert c.baseline_ms and c.runs, op


def test_the_total_follows_what_the_comparison_can_judge():
    """run1's healthy runs: the 30-epoch v3_medium training against one 10-epoch v3_minimal
    run is not slower (+442 %) but not comparable, with no time expected from the other
    strategy's rows; the two-year backtest took 20.1 s where 20.9 s were expected for its
    12,505 rows: as expected, not slower (+285 %) than the six-month run's 5.2 s."""
    svc = service_for(REAL)
    now = 1_796_400_600 * 1_000_000
    medium = svc.diagnose("op_training_20261204_155512_6652e327", now_us=now).comparison
    assert (medium.status, medium.judges_speed, medium.expected_ms) == (
        "not comparable", False, None,
    )
    assert medium.change_pct == pytest.approx(442, abs=1)  # shown, not judged
    two_years = svc.diagnose("op_backtesting_20261204_155230_0250c475", now_us=now).comparison
    assert two_years.status == "as expected" and two_years.judges_speed
    assert two_years.expected_ms == pytest.approx(20_900, abs=100)
    # its one run is of its strategy (v3_minimal): it judges, though too few to match on
    assert "fewer than" not in two_years.note


def test_total_status_of_each_kind_of_comparison():
    this = run("t", 10, 2, {"x": 2})
    same = [run(k, i, 1.99, {"x": 1.99}) for i, k in enumerate("abc")]
    assert compare(this, same, wanted=3).status == "same"
    assert compare(this, [run("a", 1, 1, {"x": 1})], wanted=1).status == "slower"
    assert compare(this, [run("a", 1, 4, {"x": 4})], wanted=1).status == "faster"
    assert compare(this, [], wanted=3).status == "no baseline"
    bigger = run("b", 10, 2, {"x": 2})
    bigger.size = 2000.0
    small = [run(k, i, 1, {"x": 1}, size=1000.0) for i, k in enumerate("abc")]
    c = compare(bigger, small, wanted=3)
    assert (c.expected_ms, c.status) == (pytest.approx(120_000), "as expected")
    bigger.duration_ms = 3 * 60_000.0  # 3 min for 2 min's worth of rows
    assert compare(bigger, small, wanted=3).status == "slower"
    flying = run("f", 10, 2, {"x": 2}, status="running", size=2000.0)
    c = compare(flying, small, wanted=3)
    assert (c.status, c.change_ms, c.expected_ms) == ("in progress", None, None)
    flying.verdict = "worker_lost"  # its work ended when its worker died
    assert compare(flying, small, wanted=3).status == "stopped"
    other = run("o", 10, 2, {"x": 2}, alike={"strategy": "v3_long"})
    base = [run(k, i, 1, {"x": 1}, alike={"strategy": "v3_minimal"}) for i, k in enumerate("ab")]
    c = compare(other, base, wanted=2, order=["strategy"])
    assert (c.status, c.judges_speed) == ("not comparable", False) and "v3_long" in c.note
    hand_made = msgspec.structs.replace(c, status="", judges_speed=True)  # by its values
    assert total_status(hand_made) == "slower"


def test_runs_that_all_share_its_strategy_judge_it_however_few():
    """Too few runs of its strategy to match on (one, or ``opdiag compare``'s one run): when
    every run compared is of its strategy, they judge its speed; one of another does not."""
    target = run("t", 100, 4, {}, alike={"strategy": "v3_minimal"})
    mine = [run("m", 1, 0.75, {}, alike={"strategy": "v3_minimal"})]
    c, chosen = compare_with_baseline(target, mine, ComparisonSettings(), min_runs=2)
    assert chosen == mine and c.matched_on == {} and c.judges_speed and not c.note
    theirs = [*mine, run("o", 2, 0.75, {}, alike={"strategy": "v3_long"})]
    c, _ = compare_with_baseline(target, theirs, ComparisonSettings(), min_runs=3)
    assert not c.judges_speed and c.note.startswith("fewer than 3 good runs")


def test_no_percentage_for_a_phase_that_took_the_same_or_under_a_millisecond():
    """run1: 'operation.state_transition 0ms vs 0ms (-65 %)' with status same. A percentage
    of a sub-millisecond baseline, or of a change too small to count, says nothing."""
    from opdiag.render.markdown import comparison_lines

    ms = 1 / 60_000  # a millisecond in the minutes ``run`` takes
    this = run("t", 10, 1, {"tick": 0.1 * ms, "spike": 50 * ms, "load": 102 * ms,
                            "train": 0.9})
    base = [run(k, i, 1, {"tick": 0.3 * ms, "spike": 0.5 * ms, "load": 100 * ms,
                          "train": 0.5}) for i, k in enumerate("abc")]
    c = compare(this, base, wanted=3)
    rows = {r.name: r for r in c.phases}
    assert (rows["tick"].status, rows["tick"].change_pct) == ("same", None)
    assert (rows["load"].status, rows["load"].change_pct) == ("same", None)
    assert (rows["spike"].status, rows["spike"].change_pct) == ("slower", None)
    assert rows["train"].change_pct == pytest.approx(80)
    table = [line for line in comparison_lines(c) if line.startswith("| ")]
    assert [line for line in table if "%" in line] == [
        "| train | 54.0s | 30.0s | +24.0s (+80 %) | slower |"
    ]
    from opdiag.web import comparison_chart

    bars = {r.label: r.values for r in comparison_chart.layout(c).rows}
    assert bars["tick"] == "0ms vs 0ms" and bars["train"] == "54.0s vs 30.0s (+80 %)"
    spiked = compare(run("g", 10, 1, {"spike": 50 * ms}), base[:1], wanted=1)
    assert change_phrase(spiked) == "spike +50ms"  # neither a percentage nor "(new)"


def test_change_phrase_says_new_only_for_a_phase_none_of_the_runs_had():
    """A phase one of three good runs also had has a median of 0 (it is 'slower', not
    'new'): its summary phrase must not call it new, the runs did have it."""
    ms = 1 / 60_000
    base = [
        run("a", 1, 1, {"train": 0.5, "retry": 20 * ms}),
        run("b", 2, 1, {"train": 0.5}),
        run("c", 3, 1, {"train": 0.5}),
    ]
    minority = compare(run("t", 10, 2, {"train": 0.5, "retry": 60_000 * ms}), base, wanted=3)
    top = minority.phases[0]
    assert (top.name, top.status, top.baseline_ms) == ("retry", "slower", 0.0)
    assert change_phrase(minority) == "retry +1m00s"
    unseen = compare(run("u", 10, 2, {"train": 0.5, "fresh": 60_000 * ms}), base, wanted=3)
    assert unseen.phases[0].status == "new"
    assert change_phrase(unseen) == "fresh +1m00s (new)"


def test_a_run_with_much_less_data_is_judged_against_the_span_its_size_allows():
    """A six-month backtest (3,120 rows, 5.2 s) against the two-year run (12,505 rows,
    20.1 s) read 'faster, -74 %'. A good run of its size takes between the runs' time per row
    times its rows (5.0 s) and their median (fixed costs do not shrink): as expected, and the
    note says the span. Below the span it is faster; the slow reference is not touched."""
    two_years = [run("b", 1, 20.1 / 60, {"x": 20.1 / 60}, size=12_505.0)]
    six_months = run("s", 10, 5.2 / 60, {"x": 5.2 / 60}, size=3_120.0)
    c = compare(six_months, two_years, wanted=1)
    assert (c.status, c.expected_ms) == ("as expected", None)
    assert "between 5.0s (their time per row) and 20.1s (their median" in c.note
    assert slow_reference(c)[0] == pytest.approx(20_100)  # slow is still judged on the median
    # the same judgement for a comparison judged by its values (made by hand, no status)
    assert total_status(msgspec.structs.replace(c, status="")) == "as expected"
    quick = run("q", 10, 2.0 / 60, {"x": 2.0 / 60}, size=3_120.0)  # under 5.0 s less 10 %
    assert compare(quick, two_years, wanted=1).status == "faster"
    alike = run("a", 10, 5.2 / 60, {"x": 5.2 / 60}, size=10_000.0)  # not much less data
    assert compare(alike, two_years, wanted=1).status == "faster"
    svc = service_for(REAL)
    real = svc.diagnose("op_backtesting_20261204_154358_5d955ea3",
                        now_us=1_796_400_600 * 1_000_000).comparison
    assert real.status == "as expected" and "3,120 data rows" in real.note
