"""run1's trainings, backtests and workers as another recording of the same system may hold
them: a strategy trained again more slowly, a cancel at another moment, a worker lost at
another phase. Each test changes run1 the way KTRDR's code says such a run looks
(``real_variants``) and says what a correct diagnosis is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import real_variants as rv
import yaml
from conftest import REAL_KTRDR
from opdiag.cli.main import main
from opdiag.devtools.score_cases import diagnose_case

RUN = REAL_KTRDR / "run1"
TRACES = RUN / "traces"
CASES: list[dict[str, Any]] = yaml.safe_load((RUN / "cases.yaml").read_text(encoding="utf-8"))
FINAL = {c["id"]: c for c in CASES if c.get("upto") is None}

pytestmark = pytest.mark.slow

MINIMAL = "op_training_20261204_154305_f6579e1a"  # v3_minimal, 10 epochs on EURUSD: 44.8 s
AGAIN = "op_training_20261204_160500_f6579e19"
LATER = "2026-12-04T16:30:00Z"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("JAEGER_URL", "OPDIAG_JAEGER_URL", "OPDIAG_TRACES", "OPDIAG_CONFIG"):
        monkeypatch.delenv(var, raising=False)


def _trained_again(tmp: Path, loop_extra_s: float) -> Path:
    """run1 with v3_minimal trained once more at 16:05, its span-less loop (after
    training.data_loading) ``loop_extra_s`` longer."""
    base = rv.load(TRACES)
    first = diagnose_case(RUN, FINAL[MINIMAL], tmp / "first")
    shift = rv.ns("2026-12-04T16:05:00Z") - rv.ns("2026-12-04T15:43:05Z")
    copy = rv.copy_operation(base, set(first["trace_ids"]), {MINIMAL: AGAIN}, shift, salt=9)
    if loop_extra_s:
        traces = {s["traceId"] for _, _, s in rv.spans(copy)}
        copy = rv.longer_after(copy, traces, "training.data_loading", int(loop_extra_s * 1e9))
    root = tmp / f"again-{loop_extra_s:g}"
    rv.write(base + copy, root / "traces")
    return root


def test_a_training_slower_than_the_one_earlier_run_of_its_strategy_is_slow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same strategy on the same data, its loop 70 s longer (1.9 min against 44.8 s):
    run1's only other completed training is another strategy (30 epochs), which does not
    judge it, and one earlier run fell short of the two runs a baseline asks. The same
    strategy's epochs and data take the same time: one run of it is enough to call it slow,
    and the summary names the loop that grew. As fast as before, it is healthy."""
    root = _trained_again(tmp_path, 70)
    d = diagnose_case(root, {"id": AGAIN, "now": LATER}, tmp_path / "slow")
    c = d["comparison"]
    assert [r["key"] for r in c["runs"]] == [MINIMAL] and c["judges_speed"], c
    assert c["matched_on"].get("strategy") == "v3_minimal", c
    assert d["verdict"] == "slow", d["summary"]
    assert "after training.data_loading" in d["summary"] and "44.8 s" in d["summary"]
    b = d["bottleneck"]
    assert (b["kind"], b["after_span_name"]) == ("gap", "training.data_loading"), b
    # the solution names where the time went once: the gap's text names its worker already
    step = d["solution"]["steps"][0]
    assert step.count(b["service"]) == 1 and "holds 98 %" in step, step
    # the earlier run is not slow against the later one, and the listing says the same
    first = diagnose_case(root, {"id": MINIMAL, "now": LATER}, tmp_path / "first-again")
    assert first["verdict"] == "healthy", first["summary"]
    assert main(["operations", "--traces", str(root / "traces"), "--now", LATER,
                 "--format", "json"]) == 0
    rows = {r["operation_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[AGAIN]["verdict"] == "slow" and rows[MINIMAL]["verdict"] == "healthy", rows

    usual = _trained_again(tmp_path, 0)
    d = diagnose_case(usual, {"id": AGAIN, "now": LATER}, tmp_path / "usual")
    assert d["verdict"] == "healthy", d["summary"]


def test_one_run_of_its_strategy_is_not_enough_when_settings_ask_for_two(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``diagnosis.min_strategy_runs: 2`` asks as many runs of its strategy as of others:
    the one earlier run is shown, it does not judge."""
    root = _trained_again(tmp_path, 70)
    settings = tmp_path / "opdiag.yaml"
    settings.write_text("diagnosis:\n  min_strategy_runs: 2\n", encoding="utf-8")
    monkeypatch.setenv("OPDIAG_CONFIG", str(settings))
    d = diagnose_case(root, {"id": AGAIN, "now": LATER}, tmp_path / "two")
    assert d["verdict"] == "healthy" and not d["comparison"]["judges_speed"], d["summary"]


CANCELLED = "op_training_20261204_154638_11134ee7"  # v3_long, cancelled 51 s in, in its loop


def test_a_training_cancelled_while_it_loaded_its_data_was_in_that_phase(tmp_path: Path) -> None:
    """``ktrdr cancel`` sent while training.data_loading was open (its 0.23 s moved there):
    KTRDR marks the operation cancelled at once and checks its token only between phases,
    so the phase span still ends, after the cancel. It was cancelled in that phase, not
    after it; cancelled in the loop (run1) it is still after."""
    base = rv.load(TRACES)
    trace = next(  # ktrdr cancel's own trace
        s["traceId"] for _, _, s in rv.spans(base)
        if s["name"] == "cli.cancel" and CANCELLED in str(rv.attr(s, "cli.args"))
    )
    first = next(
        s for _, _, s in rv.spans(base)
        if s["traceId"] == trace and rv.attr(s, "operation.to_status") == "cancelled"
    )
    loading = next(
        s for _, _, s in rv.spans(base)
        if s["name"] == "training.data_loading" and rv.attr(s, "data.symbol") == "EURUSD"
        and int(s["startTimeUnixNano"]) > rv.ns("2026-12-04T15:46:38Z")
    )
    inside = (int(loading["startTimeUnixNano"]) + int(loading["endTimeUnixNano"])) // 2
    moved = rv.trace_moved(base, trace, inside - int(first["startTimeUnixNano"]))
    root = rv.write(moved, tmp_path / "early" / "traces").parent
    d = diagnose_case(root, FINAL[CANCELLED], tmp_path / "early-case")
    assert d["verdict"] == "cancelled", d["summary"]
    assert "in training.data_loading" in d["summary"], d["summary"]
    d = diagnose_case(RUN, FINAL[CANCELLED], tmp_path / "run1")
    assert "after training.data_loading" in d["summary"], d["summary"]


@pytest.mark.parametrize(
    ("ident", "phases", "message"),
    [
        (MINIMAL, "training.", "Invalid parameters for RSIIndicator"),
        (
            "op_backtesting_20261204_154358_5d955ea3",
            "backtest.",
            "[MF-InvalidParameters] Invalid parameters for TriangularMF",
        ),
    ],
)
def test_a_strategy_with_parameters_the_worker_refuses_is_invalid_input(
    ident: str, phases: str, message: str, tmp_path: Path
) -> None:
    """A strategy file the backend accepts (it checks the file and the name) with an RSI
    period or a triangular membership function the worker cannot build: TrainingPipelineV3
    and BacktestingEngine build their indicator and fuzzy engines before any phase span, and
    the worker's fail_operation(str(e)) is all the traces say. Before: "failed: Invalid
    parameters for RSIIndicator"."""
    first = diagnose_case(RUN, FINAL[ident], tmp_path / "first")
    traces = set(first["trace_ids"])
    base = rv.without(
        rv.load(TRACES), lambda _svc, s: s["traceId"] in traces and s["name"].startswith(phases)
    )
    root = rv.write(rv.failed_instead(base, ident, message), tmp_path / "bad" / "traces").parent
    d = diagnose_case(root, FINAL[ident], tmp_path / "case")
    assert d["verdict"] == "invalid_input", d["summary"]
    assert message in d["summary"] and "worker" in d["summary"], d["summary"]
    assert d["root_cause"]["span_name"] == "operation.state_transition", d["root_cause"]


@pytest.mark.parametrize(
    "ident", ["00c1cc50b6463135decf4ee498c45941", "aa55bbc3fbca0e6aeab4d702dea68d03"]
)
def test_a_503_with_one_worker_busy_and_the_other_dead_names_both(
    ident: str, tmp_path: Path
) -> None:
    """Two training workers: the one on :5005 runs v3_long, a second one on :5006 answered
    the backend's health checks until it was killed at 15:46:20. KTRDR's registry counts
    neither as available (busy, temporarily unavailable) and answers 503 'No training
    workers available'. The live one is busy, so workers_busy; but restarting the dead one
    is the fix, and the summary now names it beside the busy one."""
    base = rv.load(TRACES)
    changed = rv.another_worker(
        base, 5005, 5006, "ktrdr-training-worker-0e0e0e0e",
        from_ns=rv.ns("2026-12-04T15:42:40Z"),
        dies_ns=rv.ns("2026-12-04T15:46:20Z"),
        until_ns=rv.ns("2026-12-04T15:52:00Z"),
    )
    root = rv.write(changed, tmp_path / "two" / "traces").parent
    d = diagnose_case(root, FINAL[ident], tmp_path / "case")
    assert d["verdict"] == "workers_busy", d["summary"]
    summary = d["summary"]
    assert "ktrdr-training-worker-d97729bc runs" in summary, summary
    assert "ktrdr-training-worker-0e0e0e0e at 127.0.0.1:5006 is not answering" in summary
    restart = [s for s in d["solution"]["steps"] if s.startswith("Restart the worker")]
    assert len(restart) == 1, d["solution"]["steps"]
    # run1, one worker: as before
    d = diagnose_case(RUN, FINAL[ident], tmp_path / "run1")
    assert "not answering" not in d["summary"], d["summary"]
    assert not [s for s in d["solution"]["steps"] if s.startswith("Restart the worker")]


def test_a_followed_training_killed_in_its_loop_is_lost_before_any_health_check_fails(
    tmp_path: Path,
) -> None:
    """``ktrdr train --follow``: the CLI polls GET /api/v1/operations/{id} inside its root
    span, and the backend reads the operation from the worker on each poll (the proxy's
    GETs to :5005, in the operation's own trace). The worker SIGKILLed 20 s into its loop:
    those reads are refused (ConnectError) before the backend's next health check is. The
    worker is lost, and what was refused is the backend's read of the operation, not a
    dispatch (before: "did not answer the dispatch")."""
    worker = "ktrdr-training-worker-d97729bc"
    first = diagnose_case(RUN, FINAL[MINIMAL], tmp_path / "first")
    traces = set(first["trace_ids"])
    kill = rv.ns("2026-12-04T15:43:25Z")
    until = rv.ns("2026-12-04T15:46:30Z")
    base = rv.killed_before_export(rv.load(TRACES), worker, kill, 5005, until)
    base = rv.without(
        base,
        lambda svc, s: s["traceId"] in traces
        and ((svc == worker and int(s["endTimeUnixNano"]) > kill) or s["name"] == "cli.train"),
    )

    def read_of_worker(svc: str, s: dict[str, Any]) -> bool:
        url = str(rv.attr(s, "http.url") or "")
        return (
            s["traceId"] in traces and svc == "ktrdr-api" and s.get("kind") == rv.CLIENT
            and ":5005/" in url and int(s["startTimeUnixNano"]) > kill
        )

    def refused(s: dict[str, Any]) -> None:
        s["attributes"] = [a for a in s["attributes"] if a["key"] != "http.status_code"]
        end = int(s["startTimeUnixNano"]) + 2_000_000
        rv.raising("httpx.ConnectError", "All connection attempts failed", end_ns=end)(s)

    changed = rv.edited(base, read_of_worker, refused)
    moment = rv.ns("2026-12-04T15:43:28Z")  # the next health check of :5005 is at 15:43:29
    snapshot = [(n, d) for n, d in changed if rv.file_clock(n) <= moment]
    assert not rv.failed_probes(snapshot, 5005, kill)
    root = rv.write(snapshot, tmp_path / "killed" / "traces").parent
    d = diagnose_case(root, {"id": MINIMAL, "now": "2026-12-04T15:43:28Z"}, tmp_path / "case")
    assert d["verdict"] == "worker_lost", d["summary"]
    assert "5005" in d["summary"] and "read of the operation" in d["summary"], d["summary"]
    assert "dispatch" not in d["summary"], d["summary"]


@pytest.mark.parametrize(
    ("ident", "after_ms", "worker", "port", "silent"),
    [
        # killed before its operations.create wrote the row: every read of it answers 404
        ("op_training_20261204_154749_b37ed832", 20, "ktrdr-training-worker-d97729bc", 5005,
         "15:47:57 UTC"),
        # after the row: the orphan detector fails it 6 min 15 s later
        ("op_training_20261204_154749_b37ed832", 60, "ktrdr-training-worker-d97729bc", 5005,
         "15:47:57 UTC"),
        ("op_backtesting_20261204_155333_db0629d4", 20, "ktrdr-backtest-worker-d4309621", 5003,
         "15:53:37 UTC"),
        ("op_backtesting_20261204_155333_db0629d4", 60, "ktrdr-backtest-worker-d4309621", 5003,
         "15:53:37 UTC"),
    ],
)
@pytest.mark.parametrize("now", ["2026-12-04T15:54:00Z", "2026-12-04T16:10:00Z"])
def test_a_worker_killed_right_after_the_dispatch_is_lost_and_named(
    ident: str, after_ms: int, worker: str, port: int, silent: str, now: str, tmp_path: Path
) -> None:
    """The worker SIGKILLed 20 or 60 ms after the backend's dispatch (answered 200 in a few
    ms), before its first export: no span of it names the operation, only the backend's
    reads of it do, each with its refused read from the worker (the proxy KTRDR registers
    once the dispatch is answered), and the orphan detector's record if the worker had
    written the operation. Before: 'no trace holds' the id (killed before the write: its
    reads answered 404; a 404 read without the worker's read below reads 'invalid input: no
    operation … exists'), 'the worker that took it left no span' once the orphan detector
    failed it, naming neither the worker nor its port, or in flight 'refused the backend's
    read', without when it went silent. The worker the backend read it from is the one
    lost, since its first refused check."""
    changed = rv.killed_after_dispatch(
        rv.load(TRACES), ident, after_ms * 1_000_000, rv.ns("2026-12-04T17:00:00Z")
    )
    d = diagnose_case(
        rv.write(changed, tmp_path / "killed" / "traces").parent,
        {"id": ident, "now": now},
        tmp_path / "case",
    )
    assert d["verdict"] == "worker_lost", d["summary"]
    assert worker in d["summary"] and f"127.0.0.1:{port}" in d["summary"], d["summary"]
    assert f"stopped answering at {silent}" in d["summary"], d["summary"]


_KILLED_AFTER_DISPATCH = [
    ("op_training_20261204_154749_b37ed832", 20),
    ("op_training_20261204_154749_b37ed832", 60),
    ("op_backtesting_20261204_155333_db0629d4", 20),
    ("op_backtesting_20261204_155333_db0629d4", 60),
]


@pytest.mark.parametrize(("ident", "after_ms"), _KILLED_AFTER_DISPATCH)
@pytest.mark.parametrize("now", ["2026-12-04T15:54:00Z", "2026-12-04T16:10:00Z"])
def test_a_worker_killed_right_after_the_dispatch_has_its_row_in_the_listing(
    ident: str, after_ms: int, now: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The operation diagnose calls worker_lost is a row of ``operations`` too. Before, the
    backend's reads of it (all that names it: each passed on to the worker, refused) were
    polling noise unless the orphan detector's record named it: no row in flight (15:54),
    none ever when the worker died before writing it (every read 404)."""
    changed = rv.killed_after_dispatch(
        rv.load(TRACES), ident, after_ms * 1_000_000, rv.ns("2026-12-04T17:00:00Z")
    )
    root = rv.write(changed, tmp_path / "killed" / "traces")
    assert main(["operations", "--traces", str(root), "--now", now, "--format", "json"]) == 0
    rows = {r["operation_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert ident in rows, sorted(rows)
    assert rows[ident]["verdict"] == "worker_lost", rows[ident]


@pytest.mark.parametrize("ident", [i for i, ms in _KILLED_AFTER_DISPATCH if ms == 20])
@pytest.mark.parametrize("now", ["2026-12-04T15:54:00Z", "2026-12-04T16:10:00Z"])
def test_an_operation_its_worker_died_before_saving_is_not_said_running(
    ident: str, now: str, tmp_path: Path
) -> None:
    """Killed 20 ms after the dispatch, before ``operations.create``: every read of the
    operation answered 404, KTRDR holds no row of it, and its orphan detector (it lists
    RUNNING rows only) never fails it. Before: 'operation status running' and 'KTRDR keeps
    the operation RUNNING until its orphan detector fails it'. Now its status is unknown
    and the solution says KTRDR has no record of it and nothing will end it."""
    changed = rv.killed_after_dispatch(
        rv.load(TRACES), ident, 20_000_000, rv.ns("2026-12-04T17:00:00Z")
    )
    root = rv.write(changed, tmp_path / "killed" / "traces").parent
    d = diagnose_case(root, {"id": ident, "now": now}, tmp_path / "case")
    assert d["verdict"] == "worker_lost", d["summary"]
    assert d["status"] != "running", d["status"]
    steps = " ".join(d["solution"]["steps"])
    assert "RUNNING until" not in steps, steps
    assert "holds no record of the operation" in steps and "404" in steps, steps


@pytest.mark.parametrize("ident", [i for i, ms in _KILLED_AFTER_DISPATCH if ms == 20])
def test_an_operation_its_worker_died_before_saving_is_told_as_never_saved(
    ident: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed 20 ms after the dispatch, before ``operations.create``: every read answered
    404. Before: the summary read 'the operation was last seen starting', the commands
    still pasted ``ktrdr status <id>`` (which answers not found, as the step above it said),
    and it lasted until the last 404 read, growing with each poll (5m41s at 15:54, 19m49s
    at 16:10 for a 20 ms life). Now the summary says KTRDR has no record of it, no command
    asks KTRDR for it, and it ends at the first read that found it missing, the same at
    every moment, in the listing too."""
    changed = rv.killed_after_dispatch(
        rv.load(TRACES), ident, 20_000_000, rv.ns("2026-12-04T17:00:00Z")
    )
    root = rv.write(changed, tmp_path / "killed" / "traces")
    lengths = set()
    for now in ("2026-12-04T15:54:00Z", "2026-12-04T16:10:00Z"):
        d = diagnose_case(root.parent, {"id": ident, "now": now}, tmp_path / now[11:13])
        assert d["verdict"] == "worker_lost", d["summary"]
        assert "last seen starting" not in d["summary"], d["summary"]
        assert "no record of it" in d["summary"] and "404" in d["summary"], d["summary"]
        assert not any("ktrdr status" in c for c in d["solution"]["commands"]), d["solution"]
        assert d["duration_ms"] < 60_000, d["duration_ms"]
        lengths.add(d["duration_ms"])
        assert main(["operations", "--traces", str(root), "--now", now, "--format", "json"]) == 0
        row = {r["operation_id"]: r for r in json.loads(capsys.readouterr().out)}[ident]
        assert (row["duration_ms"], row["summary"]) == (d["duration_ms"], d["summary"]), row
    assert len(lengths) == 1, lengths


def test_the_page_of_an_operation_never_saved_does_not_promise_it_will_finish(
    tmp_path: Path,
) -> None:
    """Its page said "Duration 33.2 s (not finished)": nothing will ever finish an operation
    KTRDR holds no record of (status unknown); a lost one KTRDR still holds stays "not
    finished" while in flight."""
    from opdiag.api.app import create_app
    from opdiag.settings import load_settings

    ident = "op_training_20261204_154749_b37ed832"
    changed = rv.killed_after_dispatch(
        rv.load(TRACES), ident, 20_000_000, rv.ns("2026-12-04T17:00:00Z")
    )
    root = rv.write(changed, tmp_path / "killed" / "traces")
    client = create_app(load_settings(environ={"OPDIAG_TRACES": str(root)})).test_client()
    page = client.get(f"/operations/{ident}?now=2026-12-04T16:10:00Z").get_data(as_text=True)
    assert "(status unknown)" in page and "(not finished)" not in page
    client = create_app(load_settings(environ={"OPDIAG_TRACES": str(TRACES)})).test_client()
    page = client.get(f"/operations/{ident}?now=2026-12-04T15:50:00Z").get_data(as_text=True)
    assert "(not finished)" in page


@pytest.mark.parametrize(
    ("ident", "made", "failed"),
    [
        ("op_training_20261204_154749_b37ed832", "2026-12-04T15:47:49Z", "2026-12-04T15:54:04Z"),
        ("op_backtesting_20261204_155333_db0629d4", "2026-12-04T15:53:33Z", "2026-12-04T15:59:48Z"),
    ],
)
def test_an_operation_known_through_reads_lasts_from_its_id_to_its_failure(
    ident: str, made: str, failed: str, tmp_path: Path
) -> None:
    """Killed 60 ms after the dispatch, after the row was written: the orphan detector fails
    it 6 min 15 s later; only the backend's reads and that record name it. Before, it began
    at its first read (15:48:21 for the training) and ended at the last read, 13 min after
    the failure: 'Total Duration 19m16s'. It begins no later than its id was made and ends
    at its failure, and names no bottleneck."""
    changed = rv.killed_after_dispatch(
        rv.load(TRACES), ident, 60_000_000, rv.ns("2026-12-04T17:00:00Z")
    )
    root = rv.write(changed, tmp_path / "killed" / "traces").parent
    d = diagnose_case(root, {"id": ident, "now": "2026-12-04T16:10:00Z"}, tmp_path / "case")
    assert (d["verdict"], d["status"]) == ("worker_lost", "failed"), d["summary"]
    assert d["started_at_ms"] == rv.ns(made) // 1_000_000, d["started_at_ms"]
    assert abs(d["ended_at_ms"] - rv.ns(failed) // 1_000_000) < 1_000, d["ended_at_ms"]
    # no work of it holds any time: before, the orphan detector's one-span record was the
    # bottleneck ("operation.state_transition, 0.0 ms, 100 %")
    assert d["bottleneck"] is None, d["bottleneck"]


@pytest.mark.parametrize(("loop_extra_s", "verdict"), [(70, "slow"), (0, "healthy")])
def test_two_runs_of_one_strategy_at_the_same_time_are_not_each_others_baseline(
    loop_extra_s: float, verdict: str, tmp_path: Path
) -> None:
    """v3_minimal trained twice at once (16:05:00 on :5005, 16:05:10 on :5006), each loop
    70 s longer than run1's 44.8 s run: whatever slowed one (what they shared) slowed the
    other. Before, each was the other's baseline beside the 44.8 s run (median 1m19s) and
    both read 'healthy: completed in 1.9 min'. A run of the same strategy that ran at the
    same time and took about as long is no baseline: each is slow against the earlier run.
    As fast as before, they are healthy."""
    base = rv.load(TRACES)
    first = diagnose_case(RUN, FINAL[MINIMAL], tmp_path / "first")
    runs = {
        "op_training_20261204_160500_f6579e19": ("2026-12-04T16:05:00Z", 5005, 9),
        "op_training_20261204_160510_f6579e18": ("2026-12-04T16:05:10Z", 5006, 10),
    }
    recording = list(base)
    for ident, (start, port, salt) in runs.items():
        shift = rv.ns(start) - rv.ns("2026-12-04T15:43:05Z")
        copy = rv.copy_operation(base, set(first["trace_ids"]), {MINIMAL: ident}, shift, salt)
        if loop_extra_s:
            traces = {s["traceId"] for _, _, s in rv.spans(copy)}
            copy = rv.longer_after(
                copy, traces, "training.data_loading", int(loop_extra_s * 1e9)
            )
        if port == 5006:  # the other training worker took it
            copy = rv.rename_services(
                rv.map_strings(copy, lambda text: text.replace(":5005", ":5006")),
                {"ktrdr-training-worker-d97729bc": "ktrdr-training-worker-b969a633"},
            )
        recording += copy
    root = rv.write(recording, tmp_path / "both" / "traces").parent
    for ident in runs:
        d = diagnose_case(root, {"id": ident, "now": LATER}, tmp_path / ident)
        assert d["verdict"] == verdict, d["summary"]
        baseline = [r["key"] for r in d["comparison"]["runs"]]
        assert not set(baseline) & set(runs), baseline
        assert MINIMAL in baseline, baseline
