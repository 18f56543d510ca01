"""KTRDR's orphan detector failing an operation that its worker had already completed, built
from run1 (``real_variants``) as KTRDR's code at the recorded commit says it looks.

``ktrdr backtest`` without ``--follow`` (the CLI's default, cli/commands/backtest.py) and one
``ktrdr status`` while it runs: the backend learns an operation's status only when someone
reads it (backtesting_service.py), so that read leaves it RUNNING in the backend's cache. The
worker completes it and goes idle; the registry clears its ``current_operation_id``
(worker_registry.py), and 60-75 s later the orphan detector (api/services/orphan_detector.py)
calls ``fail_operation(id, "Operation was RUNNING but no worker claimed it")``: a one-span
trace of the backend, running -> failed, after the worker's running -> completed."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import real_variants as rv
from conftest import REAL_KTRDR

TRACES = REAL_KTRDR / "run1" / "traces"
# run1 case 2: a backtest of 5.2 s on the backtest worker 09ec5021 (completed 15:44:03)
BACKTEST = "op_backtesting_20261204_154358_5d955ea3"
WORKER = "ktrdr-backtest-worker-09ec5021"
NOW = "2026-12-04T16:10:00Z"

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_source_env")]



def _diagnose(recording: rv.Recording, ident: str, scratch: Path) -> dict[str, Any]:
    return rv.diagnosed(recording, ident, NOW, scratch)


def _orphan_closed(recording: rv.Recording, operation_id: str, at: str) -> rv.Recording:
    """The orphan detector's one-span trace failing ``operation_id`` at ``at``: a copy of the
    one run1 recorded (case 9), in a trace of its own."""
    service, found = next(
        (svc, s) for _, svc, s in rv.spans(recording) if rv.is_orphan_close(svc, s)
    )
    span = copy.deepcopy(found)
    span["traceId"], span["spanId"] = "ab" * 16, "cd" * 8
    for a in span["attributes"]:
        if a["key"] == "operation.id":
            a["value"] = {"stringValue": operation_id}
    length = int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])
    start = rv.ns(at)
    span["startTimeUnixNano"], span["endTimeUnixNano"] = str(start), str(start + length)
    return rv.added(recording, service, [span])


def _fire_and_forget(recording: rv.Recording, operation_id: str) -> rv.Recording:
    """The CLI without ``--follow``: its first status read kept, the polls after it gone
    (with what answered them), its command span ended right after that read."""
    trace = next(
        s["traceId"]
        for _, _, s in rv.spans(recording)
        if rv.attr(s, "operation.id") == operation_id
    )
    polls = sorted(
        (
            s
            for _, svc, s in rv.spans(recording)
            if s["traceId"] == trace and svc == "ktrdr-cli" and s["name"] == "GET"
        ),
        key=lambda s: int(s["startTimeUnixNano"]),
    )
    gone = {p["spanId"] for p in polls[1:]}
    grew = True
    while grew:
        grew = False
        for _, _, s in rv.spans(recording):
            if s["traceId"] == trace and s.get("parentSpanId") in gone and s["spanId"] not in gone:
                gone.add(s["spanId"])
                grew = True
    out = rv.without(recording, lambda _svc, s: s["traceId"] == trace and s["spanId"] in gone)
    read_end = int(polls[0]["endTimeUnixNano"])

    def shorter(span: dict[str, Any]) -> None:
        span["endTimeUnixNano"] = str(read_end + 5_000_000)

    return rv.edited(
        out, lambda _svc, s: s["traceId"] == trace and s["name"].startswith("cli."), shorter
    )


@pytest.mark.parametrize("followed", [False, True])
def test_a_backtest_failed_by_the_orphan_detector_after_it_completed_is_healthy(
    followed: bool, tmp_path: Path
) -> None:
    """The worker completed it in seconds; 72 s later the orphan detector failed it. Before:
    'failed: Operation was RUNNING but no worker claimed it', 76 s, with the advice to fix
    the reported error and retry. Right: healthy, completed in seconds on its worker, with a
    warning that KTRDR marked it failed later because nothing read its result, and that
    ``ktrdr status`` says failed."""
    base = rv.load(TRACES)
    if not followed:
        base = _fire_and_forget(base, BACKTEST)
    changed = _orphan_closed(base, BACKTEST, "2026-12-04T15:45:15Z")
    d = _diagnose(changed, BACKTEST, tmp_path)
    assert (d["verdict"], d["status"]) == ("healthy", "completed"), d["summary"]
    assert d["severity"] == "warning"
    assert d["duration_ms"] < 10_000  # its work, not the minute until the late failure
    assert d["summary"].startswith("healthy: completed in "), d["summary"]
    assert f"on {WORKER}" in d["summary"], d["summary"]
    assert "orphan detector marked it failed" in d["summary"], d["summary"]
    assert "`ktrdr status` says failed" in d["summary"], d["summary"]
    assert "1.2 min after" in d["summary"], d["summary"]
    assert d["findings"][0]["rule_id"] == "orphan-failure-after-completion"
    fired = {f["rule_id"] for f in d["findings"]}
    assert not fired & {"operation-failed", "worker-orphaned", "orphan-failure-overtaken"}, fired
    rc = d["root_cause"]  # the late failure is the span to look at
    assert (rc["service"], rc["span_name"]) == ("ktrdr-api", "operation.state_transition")
    assert rc["evidence"]["operation.to_status"] == "failed"
    steps = " ".join(d["solution"]["steps"])
    assert "only the status is wrong" in steps and "ktrdr status" in steps, steps


def test_the_workers_own_failure_then_the_orphan_close_stays_failed(tmp_path: Path) -> None:
    """The worker failed the backtest itself (running -> failed); the detector's later
    failure changes nothing: no completion came before it."""
    failed = rv.failed_instead(rv.load(TRACES), BACKTEST, "Backtest engine crashed")
    changed = _orphan_closed(failed, BACKTEST, "2026-12-04T15:45:15Z")
    d = _diagnose(changed, BACKTEST, tmp_path)
    assert d["verdict"] == "failed" and d["status"] == "failed", d["summary"]
    assert "Backtest engine crashed" in d["summary"] or "crashed" in str(d["findings"])
    assert "orphan-failure-after-completion" not in {f["rule_id"] for f in d["findings"]}


def test_an_orphan_close_of_a_backtest_that_never_completed_is_not_healthy(
    tmp_path: Path,
) -> None:
    """The worker's completion never arrived (no running -> completed): the detector's
    failure is the operation's end, not a late one."""
    never = rv.without(
        rv.load(TRACES),
        lambda _svc, s: rv.attr(s, "operation.id") == BACKTEST
        and rv.attr(s, "operation.to_status") == "completed",
    )
    changed = _orphan_closed(never, BACKTEST, "2026-12-04T15:45:15Z")
    d = _diagnose(changed, BACKTEST, tmp_path)
    assert d["verdict"] != "healthy" and d["status"] == "failed", d["summary"]
    assert "orphan-failure-after-completion" not in {f["rule_id"] for f in d["findings"]}


def test_the_quick_status_of_a_completion_failed_later_is_completed(tmp_path: Path) -> None:
    """``last_status``, which keeps runs that cannot be a baseline from the engine, read the
    orphan detector's 'failed': the completed backtest was no good run for the ones after
    it. It reads the outcome the engine reads; the worker's own failure stays failed."""
    from opdiag.operations import find_operation, group_operations, last_status
    from opdiag.sources.files import FileSource

    changed = _orphan_closed(rv.load(TRACES), BACKTEST, "2026-12-04T15:45:15Z")
    traces = rv.write(changed, tmp_path / "traces")
    groups = group_operations(FileSource([traces]).recent_traces(0, 2**62, limit=100_000))
    group = find_operation(groups, BACKTEST)
    assert group is not None and last_status(group) == "completed"
    failed = rv.failed_instead(rv.load(TRACES), BACKTEST, "boom")
    worse = _orphan_closed(failed, BACKTEST, "2026-12-04T15:45:15Z")
    traces = rv.write(worse, tmp_path / "worse")
    groups = group_operations(FileSource([traces]).recent_traces(0, 2**62, limit=100_000))
    group = find_operation(groups, BACKTEST)
    assert group is not None and last_status(group) == "failed"


def test_a_late_failure_is_no_phase_of_the_run_it_failed(tmp_path: Path) -> None:
    """The comparison with earlier runs stops where the run ended: the orphan detector's
    failure 72 s after the completion made 'after the worker' a phase of 1m11s (+31,011 %)
    beside a total of 4.4 s."""
    changed = _orphan_closed(_fire_and_forget(rv.load(TRACES), BACKTEST), BACKTEST,
                             "2026-12-04T15:45:15Z")
    d = _diagnose(changed, BACKTEST, tmp_path)
    phases = d["comparison"]["phases"]
    assert phases, d["comparison"]
    longest = max(p["this_ms"] or 0 for p in phases)
    assert longest <= d["duration_ms"], [(p["name"], p["this_ms"]) for p in phases]
