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
