"""Scenarios the real KTRDR produces that run1 lacks, built from run1 (``real_variants``) as
KTRDR's code at the recorded commit says they look, with the diagnosis a correct reading
gives (each test names the code it follows)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import real_variants as rv
from conftest import REAL_KTRDR

TRACES = REAL_KTRDR / "run1" / "traces"
# v3_medium on AAPL, 30 epochs, 4 min on the training worker at :5006 (b969a633); the same
# worker was SIGKILLed at 16:00:59 for a later training (run1 case 20)
MEDIUM = "op_training_20261204_155512_6652e327"

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_source_env")]



_diagnose = rv.diagnosed


@pytest.mark.parametrize("now", ["2026-12-04T15:57:30Z", "2026-12-04T16:10:00Z"])
def test_a_training_worker_stopped_with_sigterm_cancelled_its_training(
    now: str, tmp_path: Path
) -> None:
    """SIGTERM to the training worker a minute into the loop: KTRDR's graceful shutdown
    marks the training CANCELLED through PATCH /operations/{id}/status (no transition span),
    and the backend reports it cancelled. Before: 'running: after training.data_loading' at
    15:57:30, and at 16:10 worker_lost, blaming the SIGKILL of the same worker 5 minutes
    after the training had ended."""
    at = rv.ns("2026-12-04T15:56:16Z")
    changed = rv.shut_down_gracefully(rv.load(TRACES), MEDIUM, at)
    d = _diagnose(changed, MEDIUM, now, tmp_path)
    assert d["verdict"] == "cancelled", d["summary"]
    assert d["status"] == "cancelled"
    assert "SIGTERM" in d["summary"] and "ktrdr-training-worker-b969a633" in d["summary"]
    assert d["root_cause"]["span_name"] == "PATCH /api/v1/operations/{operation_id}/status"
    assert any("ktrdr resume" in c for c in d["solution"]["commands"])


# v3_minimal on EURUSD, 10 epochs: 43 s of its 44.8 s in the span-less training loop
MINIMAL = "op_training_20261204_154305_f6579e1a"
OOM = "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 7.79 GiB"


def test_a_training_out_of_gpu_memory_in_its_loop_says_so(tmp_path: Path) -> None:
    """torch's OutOfMemoryError in the training loop, 43 s in: the loop has no span, so
    only the failed transition says it. Before: 'failed: CUDA out of memory …' with the
    advice to look for an error span below (there is none) and nothing on the batch size."""
    changed = rv.failed_instead(rv.load(TRACES), MINIMAL, OOM)
    d = _diagnose(changed, MINIMAL, "2026-12-04T16:10:00Z", tmp_path)
    assert d["verdict"] == "failed", d["summary"]
    assert "ran out of memory in the training loop" in d["summary"]
    assert "after training.data_loading" in d["summary"] and "ktrdr-training-worker" in d["summary"]
    assert any("batch size" in s for s in d["solution"]["steps"]), d["solution"]


def test_a_training_failing_in_its_loop_says_where_the_error_was_raised(tmp_path: Path) -> None:
    """A ValueError of the loop ('No features computed'), outside any span: the message is
    the summary, and the solution says it was raised after training.data_loading in code
    without a span, not to look for an error span below (there is none)."""
    message = "No features computed - check data and configuration"
    changed = rv.failed_instead(rv.load(TRACES), MINIMAL, message)
    d = _diagnose(changed, MINIMAL, "2026-12-04T16:10:00Z", tmp_path)
    assert d["verdict"] == "failed" and message in d["summary"], d["summary"]
    steps = " ".join(d["solution"]["steps"])
    assert "code without a span" in steps and "after training.data_loading" in steps, steps


def test_a_cancel_by_request_is_a_final_status_before_the_engine_looks(tmp_path: Path) -> None:
    """The cheap check that decides whether reused traces need a fresh lookup reads the
    cancel the worker's shutdown PATCHed (``last_status`` with the pack's status requests):
    the training is finished, as the engine later says. Before, it read 'running' (the last
    transition) and every reuse of the finished operation cost another lookup."""
    from opdiag.diagnosis.rules import load_rules
    from opdiag.moment import may_be_finished
    from opdiag.operations import find_operation, group_operations, last_status
    from opdiag.settings import Settings
    from opdiag.sources.files import FileSource
    from opdiag.timeutil import ALL_END_US

    changed = rv.shut_down_gracefully(rv.load(TRACES), MEDIUM, rv.ns("2026-12-04T15:56:16Z"))
    settings = Settings()
    source = FileSource([str(rv.write(changed, tmp_path / "traces"))], 10**9)
    groups = group_operations(
        source.recent_traces(0, ALL_END_US, 10_000), settings.diagnosis.noise_span_patterns
    )
    group = find_operation(groups, MEDIUM)
    assert group is not None
    requested = load_rules().requested_status
    assert last_status(group) == "running"  # no transition says it ended
    assert last_status(group, requested) == "cancelled"
    assert may_be_finished(group, requested) and not may_be_finished(group)
    untouched = find_operation(groups, MINIMAL)  # a request of another operation is not its
    assert untouched is not None and last_status(untouched, requested) == "completed"


# `ktrdr data load AAPL -t 1h` against the real IB host service; the IB Gateway was down, so
# the load never got past POST /data/validate (run1 case 4). With the Gateway up, 30 segments.
DATA_LOAD = "op_data_load_20261204_154455_734c9af6"
NO_DATA = "No data returned for AAPL 1h"


@pytest.mark.parametrize("failed", [{6}, {6, 7, 21}])
def test_a_data_load_with_some_ib_requests_failed_is_healthy_with_its_gap(
    failed: set[int], tmp_path: Path
) -> None:
    """Some of the 30 IB requests failed: KTRDR's segment manager logs each and goes on
    without retrying it, the acquisition service saves the rest and completes the load
    (``ktrdr/data/acquisition/segment_manager.py``, ``acquisition_service.py``), so the ops
    API and the CLI say completed. The load did its job with a gap: healthy, with the
    warning in the summary (how many of how many, IB's message) and the failed request as
    the span to look at. Before: 'failed: KTRDR reported it completed, but Exception in
    ib.fetch_historical … was not recovered', as if nothing had been loaded."""
    changed = rv.loaded_in_segments(
        rv.load(TRACES), DATA_LOAD, segments=30, failed=dict.fromkeys(failed, NO_DATA)
    )
    d = _diagnose(changed, DATA_LOAD, "2026-12-04T16:10:00Z", tmp_path)
    assert (d["verdict"], d["status"]) == ("healthy", "completed"), d["summary"]
    assert f"but {len(failed)} of 30 IB requests failed" in d["summary"], d["summary"]
    assert f'("{NO_DATA}")' in d["summary"], d["summary"]
    winner = d["findings"][0]
    assert (winner["rule_id"], winner["severity"]) == ("ib-requests-partly-failed", "warning")
    assert d["severity"] == "warning"
    rc = d["root_cause"]
    assert (rc["service"], rc["span_name"]) == ("ktrdr-ib-host-service", "ib.fetch_historical")
    assert rc["exception_message"] == NO_DATA
    assert f"uiFind={rc['span_id']}" in d["links"]["jaeger"]
    # the orphan detector failed it a minute in (it ran 1.8 min): said, not the verdict
    assert "orphan-failure-overtaken" in {f["rule_id"] for f in d["findings"]}
    load = next(c for c in d["solution"]["commands"] if c.startswith("ktrdr data load"))
    assert load.startswith("ktrdr data load AAPL --timeframe 1h --mode tail --start 20"), load
    assert rc["evidence"]["data.start_date"] in load and rc["evidence"]["data.end_date"] in load


def test_a_data_load_with_a_gap_stands_out_among_the_healthy_operations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A load completed with missing bars is healthy, but not like the others: every way in
    that shows the verdict shows its warning beside it (the rows' severity, the terminal
    table, the Markdown status line, the page), and a healthy run shows none. Before, its
    row was as green as a clean training's; only the summary's words told them apart."""
    import json

    from opdiag.api.app import create_app
    from opdiag.cli.main import main
    from opdiag.settings import load_settings

    changed = rv.loaded_in_segments(
        rv.load(TRACES), DATA_LOAD, segments=30, failed={6: NO_DATA, 7: NO_DATA}
    )
    traces = rv.write(changed, tmp_path / "traces")
    at = ["--traces", str(traces), "--now", "2026-12-04T16:10:00Z"]
    assert main(["operations", *at, "--format", "json"]) == 0
    rows = {r["operation_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert (rows[DATA_LOAD]["verdict"], rows[DATA_LOAD]["severity"]) == ("healthy", "warning")
    assert (rows[MINIMAL]["verdict"], rows[MINIMAL]["severity"]) == ("healthy", "info")
    lost = {r["severity"] for r in rows.values() if r["verdict"] == "worker_lost"}
    assert lost == {"critical"}  # as the pack rates a lost worker

    assert main(["operations", *at, "--format", "table"]) == 0
    lines = {line.split()[1]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "healthy (warning)" in lines[DATA_LOAD]
    assert " healthy " in lines[MINIMAL] and "(warning)" not in lines[MINIMAL]

    assert main(["diagnose", DATA_LOAD, *at, "--format", "markdown"]) == 0
    text = capsys.readouterr().out
    assert "(verdict healthy, severity warning, operation status completed" in text

    client = create_app(load_settings(environ={"OPDIAG_TRACES": str(traces)})).test_client()
    page = client.get(f"/operations/{DATA_LOAD}").get_data(as_text=True)
    assert '<span class="sev-warning" id="severity">with a warning</span>' in page
    clean = client.get(f"/operations/{MINIMAL}").get_data(as_text=True)
    assert 'data-verdict="healthy"' in clean and 'id="severity"' not in clean


def test_a_download_in_segments_is_calls_not_attempts(tmp_path: Path) -> None:
    """The load's 30 requests to the host service are its work done in parts: the bottleneck
    counts them together, and calls them calls. Before: '30 attempts', as if the backend had
    retried one request 29 times; retries stay attempts (every one failed but the last)."""
    from opdiag.diagnosis.result import Bottleneck

    changed = rv.loaded_in_segments(rv.load(TRACES), DATA_LOAD, segments=30, failed={6: NO_DATA})
    d = _diagnose(changed, DATA_LOAD, "2026-12-04T16:10:00Z", tmp_path)
    b = Bottleneck(**d["bottleneck"])
    assert (b.target, b.attempts) == ("POST http://localhost:5001/data/historical", 30)
    assert b.failed_attempts == 0  # the host service answers a failed fetch 200
    assert b.calls_text == "30 calls"
    retried = Bottleneck("t", "s", "svc", "POST", 1.0, 1.0, 1.0, attempts=4, failed_attempts=4)
    assert retried.calls_text == "4 attempts"
    assert Bottleneck("t", "s", "svc", "POST", 1.0, 1.0, 1.0, attempts=3,
                      failed_attempts=2).calls_text == "3 attempts"  # the last made it good
    assert Bottleneck("t", "s", "svc", "POST", 1.0, 1.0, 1.0, attempts=30,
                      failed_attempts=2).calls_text == "30 calls, 2 failed"


def test_a_download_in_segments_folds_in_the_flow_around_what_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The 30 segment calls one after another are all on the critical path: the Markdown
    flow folds the like ones into starred lines and shows the calls whose fetch failed, with
    the bottleneck's. Before, the critical path kept every row: 109 lines, 90 of them the
    same three spans again."""
    from opdiag.cli.main import main

    changed = rv.loaded_in_segments(
        rv.load(TRACES), DATA_LOAD, segments=30, failed={6: NO_DATA, 7: NO_DATA}
    )
    traces = rv.write(changed, tmp_path / "traces")
    code = main(["diagnose", DATA_LOAD, "--traces", str(traces), "--now",
                 "2026-12-04T16:10:00Z", "--format", "markdown"])
    text = capsys.readouterr().out
    assert code == 0
    flow = text.split("**Execution Flow**")[1].split("**Diagnosis**")[0]
    rows = [line for line in flow.splitlines() if line[:1].isdigit()]
    assert len(rows) < 40, flow
    folded = [r for r in rows if "POST (ktrdr-api) ×" in r]
    assert len(folded) == 2 and all("★" in r and "(folded)" in r for r in folded), folded
    shown = [r for r in rows if "ib.fetch_historical" in r]
    assert len(shown) == 3  # the bottleneck's call and the two that failed
    assert sum("[error]" in r or "ROOT CAUSE" in r for r in shown) == 2, shown


def test_a_data_load_whose_ib_requests_all_failed_is_failed(tmp_path: Path) -> None:
    """Every request failed: KTRDR still completes the load, with rows_downloaded 0 and
    nothing saved (``acquisition_service.py`` saves only when some segment brought bars);
    nothing was loaded, and that is a failure, whatever the status says. The summary says
    all of them failed, not one (before: 'KTRDR reported it completed, but Exception in
    ib.fetch_historical … was not recovered', as if one request had)."""
    changed = rv.loaded_in_segments(
        rv.load(TRACES), DATA_LOAD, segments=30, failed=dict.fromkeys(range(30), NO_DATA)
    )
    d = _diagnose(changed, DATA_LOAD, "2026-12-04T16:10:00Z", tmp_path)
    assert (d["verdict"], d["status"]) == ("failed", "completed"), d["summary"]
    assert d["summary"] == (
        f'failed: KTRDR reported it completed, but every IB request failed (30 of 30: "{NO_DATA}"):'
        " no bars were loaded"
    )
    assert d["findings"][0]["rule_id"] == "ib-requests-all-failed"
    assert d["root_cause"]["span_name"] == "ib.fetch_historical"
    assert "ktrdr data load AAPL --timeframe 1h" in d["solution"]["commands"]


def test_a_data_load_whose_ib_requests_all_answered_is_healthy(tmp_path: Path) -> None:
    changed = rv.loaded_in_segments(rv.load(TRACES), DATA_LOAD, segments=30, failed={})
    d = _diagnose(changed, DATA_LOAD, "2026-12-04T16:10:00Z", tmp_path)
    assert (d["verdict"], d["summary"]) == ("healthy", "healthy: completed in 1.8 min")
    assert d["root_cause"] is None


def test_a_data_load_still_downloading_after_a_failed_ib_request_is_running(
    tmp_path: Path,
) -> None:
    """Judged while it downloads (segment 30 answered 8 s ago; the orphan detector failed it
    at 71 s and it went on): a failed request does not stop KTRDR's load, so it is running,
    with how many failed so far. Before: 'failed: Exception in ib.fetch_historical …'."""
    changed = rv.loaded_in_segments(
        rv.load(TRACES), DATA_LOAD, segments=30, failed={4: NO_DATA}, complete=False
    )
    d = _diagnose(changed, DATA_LOAD, "2026-12-04T15:46:50Z", tmp_path)
    assert (d["verdict"], d["status"]) == ("healthy", "running"), d["summary"]
    assert d["summary"].startswith("running: after ib.fetch_historical"), d["summary"]
    assert f'IB requests failed so far: 1 (the last: "{NO_DATA}")' in d["summary"]
    assert d["root_cause"]["span_name"] == "ib.fetch_historical"


# v3_minimal backtest on EURUSD, 5.2 s on the worker at :5003 (run1 case 2)
BACKTEST = "op_backtesting_20261204_154358_5d955ea3"
PG_REFUSED = (
    "Multiple exceptions: [Errno 111] Connect call failed ('::1', 5432, 0, 0), "
    "[Errno 111] Connect call failed ('127.0.0.1', 5432)"
)


def _save_refused(recording: rv.Recording, ident: str) -> tuple[rv.Recording, str]:
    """``ident``'s worker moved it to completed, then failed it 4 ms later when PostgreSQL
    refused the write of that outcome; and the worker's service."""
    import copy

    svc, done = next(
        (svc, span) for _, svc, span in rv.spans(recording)
        if rv.attr(span, "operation.id") == ident
        and rv.attr(span, "operation.to_status") == "completed" and "worker" in svc
    )
    failed = copy.deepcopy(done)
    failed["spanId"] = "77" + done["spanId"][2:]
    at = int(done["endTimeUnixNano"]) + 4_000_000
    failed["startTimeUnixNano"], failed["endTimeUnixNano"] = str(at), str(at + 60_000)
    moved = ("operation.from_status", "operation.to_status")
    failed["attributes"] = [a for a in failed["attributes"] if a["key"] not in moved] + [
        {"key": "operation.from_status", "value": {"stringValue": "completed"}},
        {"key": "operation.to_status", "value": {"stringValue": "failed"}},
        {"key": "operation.error", "value": {"stringValue": PG_REFUSED}},
    ]
    return rv.added(recording, svc, [failed]), svc


def test_postgres_stopped_as_a_worker_saved_its_result_is_named(tmp_path: Path) -> None:
    """PostgreSQL stopped as the backtest finished: complete_operation emits the completed
    transition, then its write to the database raises, and the worker fails the operation
    with the error's text (``operations_service.py``): completed -> failed 4 ms later, port
    5432 in operation.error, no span in error. Before: 'a service refused the connection',
    with the reader left to know what listens on 5432."""
    changed, svc = _save_refused(rv.load(TRACES), BACKTEST)
    d = _diagnose(changed, BACKTEST, "2026-12-04T16:10:00Z", tmp_path)
    assert (d["verdict"], d["status"]) == ("service_unreachable", "failed"), d["summary"]
    assert d["summary"].startswith(
        "service unreachable: the database (PostgreSQL) refused the connection when "
        f"{svc} saved the finished operation"
    ), d["summary"]
    assert d["findings"][0]["rule_id"] == "database-down-at-completion"
    assert "pg_isready -h localhost -p 5432" in d["solution"]["commands"]


# `ktrdr backtest v3_minimal … --follow` (run1 case 12): the backtest worker at :5003
# (5f6c5bbe) moved it to completed at 15:52:49.73 and exported that in its batch of 15:52:54;
# the CLI's last read was answered at 15:52:49.96 and cli.backtest ended OK right after.
FOLLOWED = "op_backtesting_20261204_155230_0250c475"
FOLLOWED_WORKER = "ktrdr-backtest-worker-5f6c5bbe"
FOLLOWED_CLI_TRACE = "e6a0170ca82b62ac22327837f98401d5"
BUSY_503 = "d542d365f48bef80f486115f0dd94cd2"  # run1 case 13: curl backtest at 15:52:54, 503


def _killed_after_completing(recording: rv.Recording) -> rv.Recording:
    """The worker SIGKILLed at 15:52:50.5, 0.8 s after it finished: its batch holding the
    completed transition is never exported, and its port refuses the backend's checks until
    the next process there answers (15:53:13)."""
    return rv.killed_before_export(
        recording,
        FOLLOWED_WORKER,
        rv.ns("2026-12-04T15:52:50Z") + 500_000_000,
        5003,
        rv.ns("2026-12-04T15:53:13Z"),
    )


@pytest.mark.parametrize("now", ["2026-12-04T15:53:10Z", "2026-12-04T16:10:00Z"])
def test_a_worker_killed_right_after_completing_leaves_a_completed_operation(
    now: str, tmp_path: Path
) -> None:
    """The worker's running -> completed transition is lost with its last batch, and the
    backend, which learns the status by reading it from the worker
    (operations_service._refresh_from_remote_proxy), writes none. The CLI following the
    backtest stops polling when it reads completed, failed or cancelled and ends OK only on
    completed or cancelled (cli/operation_runner.py); nothing cancelled it. Before:
    worker_lost, status running, blaming the worker's death on the operation (and at 16:10
    the next process on the same port's failures too)."""
    changed = _killed_after_completing(rv.load(TRACES))
    assert not any(
        rv.attr(s, "operation.to_status") == "completed"
        for _, svc, s in rv.spans(changed)
        if rv.attr(s, "operation.id") == FOLLOWED
    )
    d = _diagnose(changed, FOLLOWED, now, tmp_path)
    assert d["verdict"] == "healthy", d["summary"]
    assert d["status"] == "completed"
    assert 19_000 < d["duration_ms"] < 21_000, d["duration_ms"]
    assert d["root_cause"] is None
    finding = next(f for f in d["findings"] if f["rule_id"] == "completion-seen-by-follower")
    assert "cli.backtest on ktrdr-cli" in finding["summary"], finding["summary"]
    assert FOLLOWED_WORKER in finding["summary"], finding["summary"]
    assert not any(f["rule_id"].startswith("worker-lost") for f in d["findings"]), d["findings"]


@pytest.mark.parametrize("now", ["2026-12-04T15:53:00Z", "2026-12-04T16:10:00Z"])
def test_a_503_after_the_worker_died_having_completed_does_not_say_it_runs(
    now: str, tmp_path: Path
) -> None:
    """run1 case 13 (curl backtest at 15:52:54, 503: the registry still had the worker
    busy) after that worker was killed 0.8 s after completing case 12: its running ->
    completed transition died with its last batch, but the CLI that followed case 12 read
    it completed (cli.backtest OK). Before: 'ktrdr-backtest-worker-5f6c5bbe runs
    op_backtesting_20261204_155230_0250c475 (since 15:52:30 UTC)', a finished run said to
    run; now it finished, as in run1."""
    d = _diagnose(_killed_after_completing(rv.load(TRACES)), BUSY_503, now, tmp_path)
    assert d["verdict"] == "workers_busy", d["summary"]
    assert f"runs {FOLLOWED}" not in d["summary"], d["summary"]
    assert f"{FOLLOWED_WORKER} finished {FOLLOWED}" in d["summary"], d["summary"]


def test_a_followed_operation_whose_command_did_not_end_ok_is_not_completed(
    tmp_path: Path,
) -> None:
    """The same kill, but cli.backtest ended UNSET, as it does when KTRDR's CLI reads failed
    and raises SystemExit(1): its end proves no completion, and the worker that died with
    the operation's outcome unexported is still the story."""

    def unset(span: dict[str, Any]) -> None:
        span["status"] = {}

    changed = rv.edited(
        _killed_after_completing(rv.load(TRACES)),
        lambda _svc, s: s["traceId"] == FOLLOWED_CLI_TRACE and s["name"] == "cli.backtest",
        unset,
    )
    d = _diagnose(changed, FOLLOWED, "2026-12-04T15:53:10Z", tmp_path)
    assert d["status"] != "completed" and d["verdict"] != "healthy", d["summary"]
    assert d["verdict"] == "worker_lost", d["summary"]
    assert not any(f["rule_id"] == "completion-seen-by-follower" for f in d["findings"])


def test_a_training_whose_worker_died_before_exporting_anything_is_found(tmp_path: Path) -> None:
    """The training worker at :5005 SIGKILLed 2 s after it took run1's training 154749,
    inside its first export interval: no span of it carries the operation id, only the
    backend's answers to reads of it (GET /api/v1/operations/{id}) name it, until KTRDR's
    orphan detector fails it 6 min later. It read not_found ("no trace holds") and was in
    no row; judged at 15:50 it is the worker lost at :5005."""
    worker = "ktrdr-training-worker-d97729bc"
    ident = "op_training_20261204_154749_b37ed832"
    changed = rv.died_before_export(rv.load(TRACES), worker, rv.ns("2026-12-04T15:47:49Z"))
    changed = rv.killed_before_export(
        changed, worker, rv.ns("2026-12-04T15:47:51Z"), 5005, rv.ns("2026-12-04T17:00:00Z")
    )
    upto = rv.ns("2026-12-04T15:50:00Z")
    snapshot = [(name, doc) for name, doc in changed if rv.file_clock(name) <= upto]
    d = _diagnose(snapshot, ident, "2026-12-04T15:50:00Z", tmp_path)
    assert d["verdict"] == "worker_lost", d["summary"]
    assert "127.0.0.1:5005" in d["summary"] and worker in d["summary"]


@pytest.mark.parametrize(
    "ident", [BACKTEST, "op_training_20261204_155512_6652e327"]  # run1 cases 2 and 18
)
def test_a_run_whose_save_failed_after_its_work_completed_is_compared_as_completed(
    ident: str, tmp_path: Path
) -> None:
    """The work completed and only saving its outcome failed (PostgreSQL refused it):
    before, the comparison read 'This run: stopped after 5.2s (did not complete)', its
    last phase 'stopped' and the headline 'stopped after backtest.feature_compute'. Its
    phases are the work's, compared as a completed run's, and the note says the save
    failed after the work."""
    changed, _ = _save_refused(rv.load(TRACES), ident)
    d = _diagnose(changed, ident, "2026-12-04T16:10:00Z", tmp_path)
    assert (d["verdict"], d["status"]) == ("service_unreachable", "failed"), d["summary"]
    c = d["comparison"]
    assert c is not None and c["status"] not in ("stopped", "in progress"), c
    assert not [p for p in c["phases"] if p["status"] in ("stopped", "not reached")], c
    assert not c["headline"].startswith("stopped"), c["headline"]
    assert c["note"].startswith("its work completed, then saving its outcome failed"), c
