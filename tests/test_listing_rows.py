"""The rows-only listing of ``opdiag operations`` (issue 10: many small operations) and the
shortcuts it and the engine take: every one must give what the full path gives.

The listing's rows (``each_operation(rows=True)``, no comparison phase rows, two links, no
cache) equal the rows of the full listing and of the operations diagnosed one by one, on the
demo corpus and the recorded real KTRDR run; the lazily made parts (the change phrase, the
template values of ``reassess_slow``, a reused baseline choice, rows without the pydantic
model, the row's links, copies made by ``msgspec.structs.replace``) equal the eager ones.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import REAL_KTRDR
from msgspec.structs import replace as struct_replace
from opdiag.diagnosis import engine, slow
from opdiag.diagnosis.baseline import RunPool, good_runs, select_baseline
from opdiag.diagnosis.conclusion import _marked
from opdiag.diagnosis.result import Diagnosis, copied
from opdiag.diagnosis.run_profile import RunProfile
from opdiag.render.links import build_links, row_links
from opdiag.render.rows import operation_row, operation_row_dict
from opdiag.service import DiagnosisService
from opdiag.settings import Settings, default_demo_traces
from opdiag.sources.factory import make_source

S = 1_000_000
ALL = (0, 2**62)
REAL = REAL_KTRDR / "run1" / "traces"
# (corpus, clocks): one just after the last start (some still running), one much later
CORPORA = [
    pytest.param(default_demo_traces(), (1_795_508_900, 1_893_456_000), id="demo"),
    pytest.param(REAL, (1_796_400_100, 1_893_456_000), id="real-ktrdr"),
]


def _service(path: Path) -> DiagnosisService:
    settings = Settings.model_validate({"trace_paths": [str(path)]})
    return DiagnosisService(make_source(settings), settings)


def _rows(diagnoses: Any) -> list[dict[str, Any]]:
    return [operation_row(d).model_dump() for d in diagnoses]


@pytest.mark.parametrize(("path", "clocks"), CORPORA)
def test_rows_listing_equals_full_listing_and_single_diagnoses(
    path: Path, clocks: tuple[int, ...]
) -> None:
    if not path.exists():
        pytest.skip(f"{path} not present")
    for clock in clocks:
        now = clock * S
        light = _service(path)
        fast = [operation_row_dict(d) for d in light.each_operation(*ALL, now, rows=True)]
        assert len(light._final) == 0  # nothing half-made is cached
        full = _rows(_service(path).operations(*ALL, now_us=now))
        assert fast == full
        assert {r["verdict"] for r in full} - {"healthy"}  # not a trivial corpus
        one_by_one = _service(path)
        singles = _rows(one_by_one.diagnose(r["operation_id"], now_us=now) for r in full)
        assert singles == full


def test_rows_listing_after_cached_diagnoses_equals_the_full_one() -> None:
    """After single diagnoses (cached, full), both listings show the same rows. (Cached
    operations are not in the listing's baseline population, so these rows may differ from
    a cold listing's: that is the full path's behaviour, kept as it is.)"""
    path, now = default_demo_traces(), 1_893_456_000 * S
    keys = [r["operation_id"] for r in _rows(_service(path).operations(*ALL, now_us=now))]
    listed = []
    for rows in (True, False):
        service = _service(path)
        for key in keys[::3]:
            service.diagnose(key, now_us=now)
        listed.append(_rows(service.each_operation(*ALL, now, rows=rows)))
    assert listed[0] == listed[1]


def test_slow_against_a_baseline_names_the_change_in_rows_too() -> None:
    """The demo's slow training names the phase that changed: the rows-only listing makes
    the comparison for it, and for no healthy run."""
    now = 1_893_456_000 * S
    rows = [
        operation_row_dict(d)
        for d in _service(default_demo_traces()).each_operation(*ALL, now, rows=True)
    ]
    slow = [r for r in rows if r["verdict"] == "slow"]
    assert slow and all("vs baseline" in r["summary"] and "+" in r["summary"] for r in slow)


def _demo_diagnoses() -> list[Diagnosis]:
    return _service(default_demo_traces()).operations(*ALL, now_us=1_893_456_000 * S)


def test_operation_row_dict_equals_the_model_dump() -> None:
    for d in _demo_diagnoses():
        assert operation_row_dict(d) == operation_row(d).model_dump()
        assert list(operation_row_dict(d)) == list(operation_row(d).model_dump())


def test_operation_row_dict_lets_the_model_decide_an_odd_value() -> None:
    class Text(str):
        pass

    d = _demo_diagnoses()[0]
    odd = copied(d, summary=Text(d.summary))
    assert operation_row_dict(odd) == operation_row(odd).model_dump()
    assert operation_row_dict(odd)["summary"].__class__ is str


def test_row_links_are_build_links_own() -> None:
    settings = Settings()
    for d in _demo_diagnoses():
        full, row = build_links(d, settings.links), row_links(d, settings.links)
        assert (row.jaeger, row.diagnosis_page) == (full.jaeger, full.diagnosis_page)


def test_reassess_slow_asks_for_the_change_only_when_a_slow_rule_holds() -> None:
    service = _service(default_demo_traces())
    rules, settings = service.rules, service.settings.diagnosis
    asked: list[str] = []

    def change() -> str:
        asked.append("asked")
        return "training.indicators +41m49s (+3,534 %)"

    slow_ids = {r.id for r in rules.slow_rules}
    held = set()
    for d in _demo_diagnoses():
        if not d.finished or not d.duration_ms:
            continue
        for baseline in (d.duration_ms / 10, d.duration_ms * 10):  # slow, not slow
            asked.clear()
            eager = slow.reassess_slow(d, baseline, rules, settings, change())
            lazy = slow.reassess_slow(d, baseline, rules, settings, change)
            assert lazy == eager
            holds = any(f.rule_id in slow_ids for f in lazy.fired)
            assert len(asked) == (2 if holds else 1)  # asked only for a slow finding's text
            held.add(holds)
    assert held == {True, False}


def _profile(key: str, start_ms: int, ms: float, **alike: str) -> RunProfile:
    from opdiag.analysis.phases import PhaseProfile

    return RunProfile(key, "training", start_ms, ms, PhaseProfile(0, 0, []), alike=dict(alike))


def test_a_baseline_chosen_by_good_runs_is_the_one_chosen_again() -> None:
    runs = [
        _profile(f"op{i}", i * 1000, 100.0 + i, strategy="a" if i % 2 else "b")
        for i in range(12)
    ]
    args: dict[str, Any] = {"runs": 5, "min_runs": 3, "order": ["strategy"]}
    good = good_runs(runs, slow_factor=2.0, **args)
    assert len(good) == len(runs)  # none left out: the choices are kept
    for run in runs:
        assert select_baseline(run, good, **args) == select_baseline(run, RunPool(runs), **args)
    # another outcome when a run is left out: then nothing is reused
    outlier = [*runs, _profile("slowest", 20_000, 10_000.0, strategy="a")]
    fewer = good_runs(outlier, slow_factor=2.0, **args)
    assert len(fewer) == len(runs)
    assert fewer.selected(runs[0], 5, 3, ["strategy"]) is None


def test_copies_equal_the_struct_replace_and_leave_the_original() -> None:
    for d in _demo_diagnoses():
        assert copied(d) == struct_replace(d)
        assert copied(d) is not d
        assert copied(d, verdict="slow", fired=[]) == struct_replace(d, verdict="slow", fired=[])
        for step in d.execution_flow[:3]:
            before = (step.root_cause, step.bottleneck)
            for marks in ((True, False), (False, True)):
                assert _marked(step, *marks) == struct_replace(
                    step, root_cause=marks[0], bottleneck=marks[1]
                )
                assert (step.root_cause, step.bottleneck) == before  # a copy is marked


def test_operation_rules_holding_equals_each_rule_decided() -> None:
    from itertools import product

    from opdiag.diagnosis.span_rules import facts_hold

    rules = _service(default_demo_traces()).rules
    assert rules.operation_fact_keys  # the default pack tests no measured time
    for status, finished, errors, lost, stuck in product(
        ("completed", "failed", "running", "unknown"), (True, False), (0, 1, 3), (True, False),
        (True, False),
    ):
        facts = {
            "status": status, "finished": finished, "error_spans": errors,
            "worker_lost": lost, "worker_replaced": False, "stuck": stuck, "running": not stuck,
            "found": True, "request_traces": errors, "duration_s": 1.5,
        }
        for _ in range(2):  # decided, then remembered
            assert engine._operation_rules_holding(rules, facts) == tuple(
                r for r in rules.operation_rules if facts_hold(r, facts)
            )
    # 1 and True are equal keys: their types keep them apart
    one = {"error_spans": 1, "finished": True, "status": "completed"}
    true = {"error_spans": True, "finished": True, "status": "completed"}
    for facts in (one, true, one):
        assert engine._operation_rules_holding(rules, facts) == tuple(
            r for r in rules.operation_rules if facts_hold(r, facts)
        )


def test_reassess_changes_says_when_reassess_slow_changes_more_than_the_baseline() -> None:
    service = _service(default_demo_traces())
    rules, settings = service.rules, service.settings.diagnosis
    seen = set()
    for d in _demo_diagnoses():
        ms = d.duration_ms or 1.0
        for b in (None, 0.0, ms / 10, ms, ms * 10, 1e12):
            changes = slow.reassess_changes(d, b, rules, settings)
            seen.add(changes)
            if not changes:
                assert slow.reassess_slow(d, b, rules, settings) == copied(d, baseline_ms=b)
    assert seen == {True, False}


@pytest.mark.parametrize("sized", [True, False])
def test_baseline_totals_are_those_of_the_full_comparison(sized: bool) -> None:
    from opdiag.diagnosis.comparison import baseline_totals, compare_with_baseline, slow_reference
    from opdiag.settings import ComparisonSettings

    settings = ComparisonSettings()
    strongest = next(iter(settings.alike))
    pool = [
        replace(
            _profile(f"op{i}", i * 1000, 100.0 + 7 * i, **{strongest: "a" if i % 3 else "b"}),
            size=(1000.0 + 50 * i) if sized else None,
        )
        for i in range(12)
    ]
    targets = [
        *pool,
        replace(_profile("big", 5_500, 900.0, **{strongest: "a"}), size=9000.0 if sized else None),
        replace(_profile("other", 6_500, 300.0, **{strongest: "zzz"}), size=2000.0),
        _profile("plain", 7_500, 250.0),
    ]
    good = good_runs(pool, runs=settings.baseline_runs, min_runs=3, slow_factor=2.0,
                     order=list(settings.alike))
    for this in targets:
        full, chosen = compare_with_baseline(this, good, settings, min_runs=3)
        _, matched = select_baseline(this, good, runs=settings.baseline_runs, min_runs=3,
                                     order=list(settings.alike))
        totals = baseline_totals(this, chosen, matched, settings)
        assert (totals.baseline_ms, totals.expected_ms, totals.size, totals.judges_speed) == (
            full.baseline_ms, full.expected_ms, full.size, full.judges_speed
        )
        assert slow_reference(totals) == slow_reference(full)
    assert baseline_totals(pool[0], [], {}, settings) == compare_with_baseline(
        pool[0], [], settings, min_runs=3
    )[0]
