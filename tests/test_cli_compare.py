"""``opdiag compare A B`` on the demo and real-KTRDR corpora, and the comparison section of
``opdiag diagnose``: formats, exit codes, escaping."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from opdiag.cli.main import main
from opdiag.diagnosis.result import BaselineRun, Comparison, Diagnosis, PhaseChange
from opdiag.render.markdown import comparison_lines, render_markdown

REPO = Path(__file__).resolve().parents[1]
DEMO = str(REPO / "demo" / "traces")
REAL = str(REPO / "tests" / "data" / "real-ktrdr" / "run1" / "traces")
SLOW = "op_training_20261124_081940_89c7eab4"
GOOD = "op_training_20261124_082320_b74390a7"
REAL_LONG = "op_training_20261204_155512_6652e327"
REAL_SHORT = "op_training_20261204_154305_f6579e1a"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("JAEGER_URL", "OPDIAG_JAEGER_URL", "OPDIAG_TRACES", "OPDIAG_CONFIG"):
        monkeypatch.delenv(var, raising=False)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_compare_markdown_on_the_demo_names_the_slower_phase(capsys):
    code, out, err = run(capsys, "compare", SLOW, GOOD, "--traces", DEMO)
    assert code == 0, err
    assert out.startswith(f"🔍 **Comparison of {SLOW} with {GOOD}**")
    assert f"- Against: {GOOD}: **healthy**, 3m07s" in out
    assert ("| after training.data_loading (no span) | 15m00s | 2m58s | +12m02s (+406 %) "
            "| slower |") in out
    assert ("Most of the change: after training.data_loading +12m02s (2m58s → 15m00s, +406 %) "
            f"vs {GOOD}") in out


def test_compare_json_on_the_real_corpus(capsys):
    code, out, err = run(capsys, "compare", REAL_LONG, REAL_SHORT, "--traces", REAL,
                         "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["operation"]["key"] == REAL_LONG and data["against"]["key"] == REAL_SHORT
    page = data["against"]["diagnosis_page"]
    assert page.split("?")[0].endswith(f"/operations/{REAL_SHORT}") and "?from=" in page
    c = data["comparison"]
    assert [r["key"] for r in c["runs"]] == [REAL_SHORT]
    top = c["phases"][0]
    assert (top["name"], top["kind"], top["status"]) == (
        "after training.data_loading", "gap", "slower",
    )
    assert c["change_ms"] == pytest.approx(c["this_ms"] - c["baseline_ms"])


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["compare", SLOW, "op_nope", "--traces", DEMO], 3, "op_nope"),
        (["compare", SLOW, SLOW, "--traces", DEMO], 2, "two different operations"),
        (["compare", SLOW, GOOD], 2, "no trace source"),
        (["compare", SLOW, GOOD, "--jaeger-url", "http://127.0.0.1:9"], 4, "opdiag: "),
        (["compare", SLOW], 2, "the following arguments are required: B"),
        (["compare", SLOW, GOOD, "--traces", DEMO, "--format", "yaml"], 2, "invalid choice"),
    ],
)
def test_compare_failures_exit_with_their_status(capsys, argv, status, message):
    code, _, err = run(capsys, *argv)
    assert code == status
    assert message in err and "Traceback" not in err


REAL_BACKTEST = "op_backtesting_20261204_155230_0250c475"
REFUSED = "00c1cc50b6463135decf4ee498c45941"  # a training request refused with a 503


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (REAL_LONG, REAL_BACKTEST, f"{REAL_LONG} is a training run and {REAL_BACKTEST} a "
                                   "backtesting run: runs of different types"),
        (REAL_SHORT, REFUSED, f"{REFUSED} never ran: a request refused before an operation "
                              "was created (workers_busy)"),
        (REFUSED, REAL_SHORT, f"{REFUSED} never ran"),
    ],
)
def test_compare_refuses_runs_that_are_not_comparable(capsys, a, b, message):
    """run1's audit: a training against a backtest read '+4,553 %' with an expected time
    from the backtest's time per row, and against a request refused with a 503 ('Baseline:
    1 run') '+2,439 %'. Bad input, with the reason; JSON on stdout for a script."""
    code, out, err = run(capsys, "compare", a, b, "--traces", REAL, "--now",
                         "2026-12-04T16:10:00Z")
    assert code == 2 and not out
    assert message in err and "Traceback" not in err
    code, out, _ = run(capsys, "compare", a, b, "--traces", REAL, "--now",
                       "2026-12-04T16:10:00Z", "--format", "json")
    answer = json.loads(out)
    assert code == 2 and answer["kind"] == "bad_input" and message in answer["error"]


def test_compare_gives_an_expected_time_only_where_the_runs_judge_it(capsys):
    """run1: the 30-epoch v3_medium training 'Expected for its 6,240 data rows: 1m30s' from
    the 10-epoch v3_minimal run's time per row (its epochs are in no span); two backtests
    of one strategy, the bigger one is held to the smaller one's time per row. The other way
    round a smaller run has no expected time: its fixed costs take runs of several sizes; it
    took what a run of its size takes, between the bigger run's time per row and its time
    (it read 'faster' for having less data)."""
    _, out, _ = run(capsys, "compare", REAL_LONG, REAL_SHORT, "--traces", REAL)
    assert "Expected for its" not in out and "total: not comparable" in out
    assert f"{REAL_SHORT} is not of its strategy v3_medium" in out
    _, out, _ = run(capsys, "compare", REAL_SHORT, REAL_LONG, "--traces", REAL)
    assert "Expected for its" not in out and "total: not comparable" in out
    six_months = "op_backtesting_20261204_154358_5d955ea3"
    _, out, _ = run(capsys, "compare", REAL_BACKTEST, six_months, "--traces", REAL)
    assert "- Expected for its 12,505 data rows (the runs' time per row): 20.9s" in out
    assert "total: as expected" in out
    _, out, _ = run(capsys, "compare", six_months, REAL_BACKTEST, "--traces", REAL)
    assert "Expected for its" not in out and "total: as expected" in out
    assert "takes between 5.0s (their time per row) and 20.1s (their median" in out


def test_diagnose_markdown_has_the_comparison_section(capsys):
    code, out, _ = run(capsys, "diagnose", SLOW, "--traces", DEMO)
    assert code == 0
    section = out.split("**What changed since the last good runs**:")[1].split("**Root Cause**")[0]
    assert "- Baseline: 3 runs (5 wanted), same strategy v3_minimal:" in section
    for run_id in ("op_training_20261124_082320_b74390a7", "op_training_20261124_081850_bda22752",
                   "op_training_20261124_080100_5f311b66"):
        assert run_id in section
    assert ("| after training.data_loading (no span) | 15m00s | 2m58s | +12m02s (+406 %) "
            "| slower |") in section


def test_diagnose_json_has_the_comparison(capsys):
    code, out, _ = run(capsys, "diagnose", SLOW, "--traces", DEMO, "--format", "json")
    assert code == 0
    c = json.loads(out)["comparison"]
    assert (c["phases"][0]["name"], c["phases"][0]["kind"]) == ("after training.data_loading",
                                                                "gap")
    assert c["matched_on"] == {"strategy": "v3_minimal"} and len(c["runs"]) == 3


def test_untrusted_phase_names_cannot_break_the_table():
    hostile = "evil | <script>alert(1)</script> [x](http://e)"
    c = Comparison(
        runs=[BaselineRun("op_a", 0, 10.0)], wanted_runs=5, this_ms=20.0, baseline_ms=10.0,
        change_ms=10.0, change_pct=100.0,
        phases=[PhaseChange(hostile, "span", 20.0, 10.0, 10.0, 100.0, "slower")],
        new_error_types=["Bad`Type"], headline=hostile,
    )
    lines = comparison_lines(c)
    row = next(line for line in lines if line.startswith("| evil"))
    assert row.count(" | ") == 4  # the name's pipe is escaped: still five cells
    text = "\n".join(lines)
    assert not re.search(r"(?<!\\)[<\[]", text)  # every < and [ escaped: no HTML, no link
    d = Diagnosis(operation_id="op_x", trace_ids=[], verdict="healthy", summary="s",
                  comparison=c)
    assert "**What changed since the last good runs**" in render_markdown(d)


def test_compare_json_answers_json_when_an_id_is_not_found(capsys):
    """As ``diagnose --format json`` does: a script reading stdout gets JSON either way."""
    code = main(["compare", "op_nope", GOOD, "--traces", DEMO, "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 3 and "op_nope" in err
    answer = json.loads(out)
    assert answer["kind"] == "not_found" and "op_nope" in answer["error"]
