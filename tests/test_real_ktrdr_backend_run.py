"""Operations KTRDR's backend runs itself, built from run1 (``real_variants``) as KTRDR's code
at the recorded commit says they look: the dummy task and data loads
(service_orchestrator.start_managed_operation, created with ``is_backend_local=false``, so the
orphan detector, api/services/orphan_detector.py, 60 s, every 15 s, fails one still running
after a minute although no worker was ever meant to claim it), and a research cycle, whose
coordinator runs in the backend and dispatches its design to a Claude agent worker."""

from __future__ import annotations

from pathlib import Path

import pytest
import real_variants as rv
from conftest import REAL_KTRDR

TRACES = REAL_KTRDR / "run1" / "traces"
# run1 case 3: `ktrdr data load EURUSD -t 1h`, started 15:44:31.6 (its host call refused)
LOAD = "op_data_load_20261204_154431_10ad325f"
DUMMY = "op_dummy_20261204_154431_10ad325f"
STARTED_NS = rv.ns("2026-12-04T15:44:31Z") + 615_000_000

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_source_env")]


@pytest.mark.parametrize("now", ["2026-12-04T15:46:30Z", "2026-12-04T16:10:00Z"])
def test_a_dummy_task_failed_by_the_orphan_detector_is_not_a_worker_failure(
    now: str, tmp_path: Path
) -> None:
    """curl POST /api/v1/dummy/start; nothing reads it again; 71 s in the orphan detector
    fails it (the 200 s task goes on in its thread, its completion never recorded). It read
    "failed: Operation was RUNNING but no worker claimed it" with "The worker marked the
    operation failed" and a traceback to look for: there is no worker and no error."""
    recording = rv.dummy_task(rv.load(TRACES), LOAD, DUMMY)
    recording = rv.orphan_closed(recording, DUMMY, STARTED_NS + 71_000_000_000)
    d = rv.diagnosed(recording, DUMMY, now, tmp_path)
    assert d["verdict"] == "failed" and d["status"] == "failed", d["summary"]
    summary = d["summary"]
    assert "orphan detector" in summary and "15:45:42" in summary, summary
    assert "dummy" in summary and "is_backend_local=false" in summary, summary
    assert "none of its spans failed" in summary, summary
    steps = " ".join(d["solution"]["steps"])
    assert "worker marked" not in steps and "traceback" not in steps, steps
    assert d["root_cause"]["span_name"] == "operation.state_transition", d["root_cause"]


RESEARCH = "op_agent_research_20261204_155930_5e1a2b3c"


def test_a_research_without_a_design_agent_worker_names_the_agent_worker(tmp_path: Path) -> None:
    """`ktrdr research GOAL --follow` on local processes without the Claude agent workers:
    the coordinator's workers.select finds no agent_design worker and KTRDR fails the
    research. It read "4 workers are registered but none is a agent_design worker. Start a
    worker of that type (WORKER_TYPE)": the verdict was right, the way out vague."""
    recording = rv.research_without_design_workers(
        rv.load(TRACES), RESEARCH, rv.ns("2026-12-04T15:59:30Z"), "a momentum strategy", 4
    )
    d = rv.diagnosed(recording, RESEARCH, "2026-12-04T16:10:00Z", tmp_path)
    assert d["verdict"] == "no_capable_workers" and d["status"] == "failed", d["summary"]
    assert "agent_design" in d["summary"] and "Claude agent workers" in d["summary"]
    assert d["root_cause"]["span_name"] == "workers.select", d["root_cause"]
    steps = " ".join(d["solution"]["steps"])
    assert "design_agent_worker" in steps and "--strategy" in steps, steps


BACKTEST = "op_backtesting_20261204_154358_5d955ea3"  # run1 case 2: v3_minimal, 2024-01-01..06-30


def test_a_backtest_of_dates_outside_the_cached_bars_names_the_dates(tmp_path: Path) -> None:
    """`ktrdr backtest v3_minimal --start 2015-01-01 --end 2015-06-30 --follow` on a cache
    whose EURUSD 1h bars start in 2023: 0 rows kept, then "No data for EURUSD 1h". It read
    "data missing: No data for EURUSD 1h" and "load the missing bars" without the dates,
    as if EURUSD 1h were not cached at all."""
    recording = rv.backtest_outside_the_data(
        rv.load(TRACES), BACKTEST, "2015-01-01", "2015-06-30", ("2024-01-01", "2024-06-30")
    )
    d = rv.diagnosed(recording, BACKTEST, "2026-12-04T16:10:00Z", tmp_path)
    assert d["verdict"] == "data_missing" and d["status"] == "failed", d["summary"]
    assert "2015-01-01" in d["summary"] and "2015-06-30" in d["summary"], d["summary"]
    assert "0 rows" in d["summary"] and "EURUSD 1h" in d["summary"], d["summary"]
    assert d["root_cause"]["span_name"] == "backtest.data_loading", d["root_cause"]
    assert "ktrdr data range EURUSD --timeframe 1h" in d["solution"]["commands"]


CHILD = "op_training_20261204_155455_c5babf81"  # run1 case 15: ZZZZ not cached, data_missing
FAILED_RESEARCH = "op_agent_research_20261204_155410_7c3d9e21"


def test_a_research_whose_training_child_failed_names_the_child(tmp_path: Path) -> None:
    """`ktrdr research GOAL --follow` whose coordinator started case 15's training: the child
    failed ("No data found in cache for ZZZZ 1h") and KTRDR failed the research with
    "Training failed: …". The research read exactly like its child ("data missing:
    …DataNotFoundError for ZZZZ 1h"), without naming the operation that failed, and its steps
    ended at loading the data, never saying to run the research again."""
    recording = rv.research_child_failed(
        rv.load(TRACES), CHILD, FAILED_RESEARCH, "a momentum strategy", "momentum_rsi_v1"
    )
    d = rv.diagnosed(recording, FAILED_RESEARCH, "2026-12-04T16:10:00Z", tmp_path / "r")
    assert d["operation_type"] == "agent_research", d["operation_type"]
    assert d["verdict"] == "data_missing" and d["status"] == "failed", d["summary"]
    assert CHILD in d["summary"] and "ZZZZ 1h" in d["summary"], d["summary"]
    assert "ktrdr-training-worker-" in d["summary"], d["summary"]
    assert d["root_cause"]["span_name"] == "training.data_loading", d["root_cause"]
    steps = d["solution"]["steps"]
    assert CHILD in steps[0] and "start the agent research again" in steps[0], steps
    assert "ktrdr data range ZZZZ --timeframe 1h" in d["solution"]["commands"]
    # the child's own diagnosis is unchanged: it is its own story
    child = rv.diagnosed(recording, CHILD, "2026-12-04T16:10:00Z", tmp_path / "c")
    assert child["verdict"] == "data_missing" and "child" not in child["summary"], child
    assert not any("again" in s for s in child["solution"]["steps"]), child["solution"]


@pytest.mark.parametrize(
    ("message", "verdict", "says"),
    [
        (
            "[Errno 2] No such file or directory: 'models/v3_minimal/1h_v1/model.pt'",
            "data_missing",
            "weights file is not on ktrdr-backtest-worker-",
        ),
        (
            "PytorchStreamReader failed reading zip archive: failed finding central directory",
            "failed",
            "could not load the model's weights",
        ),
        (
            "Error(s) in loading state_dict for Sequential: size mismatch for 0.weight: copying "
            "a param with shape torch.Size([64, 12]) from checkpoint, the shape in current "
            "model is torch.Size([64, 14]).",
            "failed",
            "does not fit the model its config builds",
        ),
    ],
)
def test_a_backtest_whose_model_weights_cannot_be_loaded_says_so(
    message: str, verdict: str, says: str, tmp_path: Path
) -> None:
    """Case 2's backtest with its model directory there but model.pt missing, corrupt, or
    from another architecture: ModelBundle.load fails before any phase span. It read
    "failed: <PyTorch's words>" and "Fix the reported error and retry", as if nothing
    were known; the model is what to replace."""
    recording = rv.backtest_model_unloadable(rv.load(TRACES), BACKTEST, message)
    d = rv.diagnosed(recording, BACKTEST, "2026-12-04T16:10:00Z", tmp_path)
    assert d["verdict"] == verdict and d["status"] == "failed", d["summary"]
    assert says in d["summary"] and message in d["summary"], d["summary"]
    assert d["root_cause"]["span_name"] == "operation.state_transition", d["root_cause"]
    assert "ktrdr list models" in d["solution"]["commands"], d["solution"]
    assert "train" in " ".join(d["solution"]["steps"]), d["solution"]["steps"]


LONG = "op_training_20261204_155512_6652e327"  # run1 case 18: 4 min, completed 15:59:14
LOST_RESEARCH = "op_agent_research_20261204_155427_4d2c8e10"


def _research_lost() -> rv.Recording:
    """Case 18's training started by a research's coordinator, the backend SIGKILLed at
    15:57:00 during it and back at 15:57:07."""
    return rv.research_lost_with_backend(
        rv.load(TRACES), LONG, LOST_RESEARCH, "a momentum strategy", "momentum_rsi_v1",
        rv.ns("2026-12-04T15:57:00Z"), rv.ns("2026-12-04T15:57:07Z"),
    )


@pytest.mark.parametrize("now", ["2026-12-04T15:57:30Z", "2026-12-04T16:10:00Z"])
def test_a_research_lost_with_a_restarted_backend_is_failed_by_the_restart(
    now: str, tmp_path: Path
) -> None:
    """`ktrdr research GOAL --follow` whose coordinator ran case 18's training, the backend
    killed under it and back 7 s later: the new process's startup reconciliation failed the
    research (a backend-local operation) without a span, and the CLI read failed and
    stopped. Before: 'service unreachable: backend API unreachable (httpx.ConnectError at …)',
    running until now (15 min at 16:10), as if the backend were still down and the research
    went on; its training, on its worker, is its own story: completed."""
    recording = rv.without(_research_lost(), lambda _svc, s: int(s["endTimeUnixNano"]) > rv.ns(now))
    d = rv.diagnosed(recording, LOST_RESEARCH, now, tmp_path / "r")
    assert (d["verdict"], d["status"]) == ("service_unreachable", "failed"), d["summary"]
    summary = d["summary"]
    assert "the backend stopped while it ran this research" in summary, summary
    assert "answering again at 15:57:07" in summary and "failed it at its start" in summary
    assert d["duration_ms"] < 170_000, d["duration_ms"]  # trigger 15:54:27 to its last read
    steps = " ".join(d["solution"]["steps"])
    assert "start the research again" in steps, steps
    child = rv.diagnosed(recording, LONG, now, tmp_path / "c")
    assert child["verdict"] == "healthy", child["summary"]
    assert child["status"] == ("running" if now < "2026-12-04T15:59:14Z" else "completed")


def test_a_research_whose_backend_is_down_says_it_stopped_with_it(tmp_path: Path) -> None:
    """The same research at 15:57:05, the backend still down (three reads refused): the
    CLI's command span is not exported yet, only its reads. Before: 'running: after
    agent.phase.design for 1.9 min' (the refused reads, under a command span not there yet,
    were not taken as the research's)."""
    now = "2026-12-04T15:57:05Z"
    recording = rv.without(_research_lost(), lambda _svc, s: int(s["endTimeUnixNano"]) > rv.ns(now))
    d = rv.diagnosed(recording, LOST_RESEARCH, now, tmp_path)
    assert (d["verdict"], d["status"]) == ("service_unreachable", "running"), d["summary"]
    assert "the backend stopped while it ran this research" in d["summary"], d["summary"]
    assert "again" not in d["summary"], d["summary"]


CANCELLED_RESEARCH = "op_agent_research_20261204_155427_3c7a9b21"


@pytest.mark.parametrize(
    ("now", "child_said"),
    [
        ("2026-12-04T15:56:30Z", "has no end recorded: it was running on ktrdr-training-worker-"),
        ("2026-12-04T16:10:00Z", "ran on ktrdr-training-worker-b969a633 until 15:59:14 UTC"),
    ],
)
def test_a_research_cancelled_while_its_training_runs_says_the_training_went_on(
    now: str, child_said: str, tmp_path: Path
) -> None:
    """`ktrdr research GOAL --follow`, Ctrl+C at 15:56:00 while its coordinator's training
    (case 18's) runs: KTRDR cancels the research, not the training its worker created, which
    completes at 15:59:14. Before: 'cancelled … 4.8 min in' at 16:10 (the research lasted
    as long as its child's training, which outlived it) and nothing said the training went
    on holding its worker."""
    recording = rv.research_cancelled(
        rv.load(TRACES), LONG, CANCELLED_RESEARCH, "a momentum strategy", "momentum_rsi_v1",
        rv.ns("2026-12-04T15:56:00Z"),
    )
    recording = rv.without(recording, lambda _svc, s: int(s["endTimeUnixNano"]) > rv.ns(now))
    d = rv.diagnosed(recording, CANCELLED_RESEARCH, now, tmp_path)
    assert (d["verdict"], d["status"]) == ("cancelled", "cancelled"), d["summary"]
    # when the Ctrl+C came (15:54:27 to the CLI's DELETE at 15:56:00, {cancel_in}), not the
    # research's length, which runs on to its coordinator's end
    assert "1.5 min in" in d["summary"], d["summary"]
    assert d["duration_ms"] < 100_000, d["duration_ms"]  # 15:54:27 to its coordinator's end
    assert f"its child {LONG}" in d["summary"] and child_said in d["summary"], d["summary"]
    steps = " ".join(d["solution"]["steps"])
    assert f"did not stop its child {LONG}" in steps or f"ktrdr cancel {LONG}" in steps, steps


SILENT_DESIGN = "op_agent_research_20261204_160500_6a1b2c3d"


def test_a_research_whose_claude_call_failed_points_at_the_agent_workers_log(
    tmp_path: Path,
) -> None:
    """`ktrdr research GOAL --follow` whose design agent's Claude call failed (an API key
    refused, credit spent): KTRDR's runtime swallows the SDK's error and the design worker
    fails its child with "Design agent did not call save_strategy_config MCP tool", the
    research with "Design failed: …". Before: 'failed: Design failed: …' with "The worker
    marked the operation failed" and "the log of ktrdr-api has the traceback": there is
    none there; the agent worker's log, which exports no spans, has the cause."""
    recording = rv.research_design_failed(
        rv.load(TRACES), SILENT_DESIGN, rv.ns("2026-12-04T16:05:00Z"), "a momentum strategy",
        3.0, "Design agent did not call save_strategy_config MCP tool. No strategy was produced.",
    )
    d = rv.diagnosed(recording, SILENT_DESIGN, "2026-12-04T16:10:00Z", tmp_path)
    assert (d["verdict"], d["status"]) == ("failed", "failed"), d["summary"]
    assert "Claude agent saved nothing at 16:05:05 UTC" in d["summary"], d["summary"]
    assert "agent worker's log" in d["summary"], d["summary"]
    steps = " ".join(d["solution"]["steps"])
    assert "ktrdr-api has the traceback" not in steps, steps
    assert "Agent SDK error" in steps and "KTRDR_AGENT_MAX_TURNS" in steps, steps
    assert d["root_cause"]["span_name"] == "operation.state_transition", d["root_cause"]
