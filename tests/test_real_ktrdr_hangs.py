"""Operations whose worker stays alive while their work hangs, built from run1
(``real_variants``) as KTRDR's code at the recorded commit says they look: a backtest's
simulation and a training's loop emit no span (backtesting/engine.py, training), so a hang
leaves the last phase span ended, no terminal transition, and the worker answering the
backend's health checks every 10 s (and, for a followed operation, the CLI's polls, which the
backend answers by reading the worker)."""

from __future__ import annotations

from pathlib import Path

import pytest
import real_variants as rv
from conftest import REAL_KTRDR

TRACES = REAL_KTRDR / "run1" / "traces"
# run1 case 19: `curl` backtest on :5004 (2ce2abc4) from 16:00:09, its feature_compute ended
# 16:00:14; `ktrdr cancel` at 16:00:22 (its own trace), left out here: the run never ends
CURLED = "op_backtesting_20261204_160009_05b7bec2"
CANCEL_TRACE = "235679e60db1f93088a6002cdc4a1d57"
# run1 case 12: `ktrdr backtest … --follow`, 2 years on :5003 (5f6c5bbe) from 15:52:30
FOLLOWED = "op_backtesting_20261204_155230_0250c475"

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_source_env")]


def _hung_curled() -> rv.Recording:
    return rv.without(rv.load(TRACES), lambda _svc, s: s["traceId"] == CANCEL_TRACE)


def test_a_backtest_hung_past_its_earlier_runs_is_stuck_while_its_worker_answers(
    tmp_path: Path,
) -> None:
    """Quiet 5.8 min after feature_compute while the earlier backtests took 5-20 s: it read
    "healthy: running … for 5.8 min" until the backtest budget (10 min) ran out."""
    d = rv.diagnosed(_hung_curled(), CURLED, "2026-12-04T16:06:00Z", tmp_path)
    assert d["verdict"] == "stuck" and d["status"] == "running", d["summary"]
    summary = d["summary"]
    assert "after backtest.feature_compute" in summary and "2ce2abc4" in summary, summary
    assert "quiet for 5.8 min" in summary and "baseline" in summary, summary
    assert "worker still answering the backend" in summary, summary


def test_a_backtest_quiet_under_the_stuck_threshold_is_still_running(tmp_path: Path) -> None:
    """4.9 min quiet: under stuck_after_s (5 min), whatever its earlier runs took."""
    d = rv.diagnosed(_hung_curled(), CURLED, "2026-12-04T16:05:10Z", tmp_path)
    assert d["verdict"] == "healthy" and d["status"] == "running", d["summary"]


def _alive_on_5003(recording: rv.Recording) -> rv.Recording:
    """run1 without what it did to :5003 after case 12 (its worker killed at 15:52:50, a
    new one started there and killed too, the requests that met them): a worker that hangs
    in its run answers on, which the health checks must not deny."""
    after = rv.ns("2026-12-04T15:52:50Z")
    gone = {
        s["traceId"]
        for _, svc, s in rv.spans(recording)
        if svc == "ktrdr-backtest-worker-d4309621"
        or (
            int(s["startTimeUnixNano"]) >= after
            and ":5003" in str(rv.attr(s, "http.url") or rv.attr(s, "url.full") or "")
        )
    }
    return rv.without(recording, lambda _svc, s: s["traceId"] in gone)


def test_a_followed_backtest_hung_past_its_budget_is_stuck(tmp_path: Path) -> None:
    """Followed with --follow: the CLI's polls, answered through the backend by the live
    worker, kept it "running" for ever (12.4 min quiet at 16:05, its budget 10 min); the
    polls are no work of it. (run1 killed that worker at 15:52:50: left out here, its
    health checks would deny the live worker the polls show.)"""
    recording = rv.hung_while_followed(
        _alive_on_5003(rv.load(TRACES)), FOLLOWED, "backtest.feature_compute",
        rv.ns("2026-12-04T16:05:00Z"), every_ns=10_000_000_000,
    )
    assert not rv.failed_probes(recording, 5003, rv.ns("2026-12-04T15:52:50Z"))
    d = rv.diagnosed(recording, FOLLOWED, "2026-12-04T16:05:00Z", tmp_path)
    assert d["verdict"] == "stuck" and d["status"] == "running", d["summary"]
    assert "after backtest.feature_compute" in d["summary"], d["summary"]
    assert "quiet for 12.4 min" in d["summary"], d["summary"]
    early = rv.diagnosed(recording, FOLLOWED, "2026-12-04T15:55:00Z", tmp_path / "early")
    assert early["verdict"] == "healthy" and early["status"] == "running", early["summary"]
