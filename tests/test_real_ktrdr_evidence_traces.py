"""run1's evidence traces asked about by their own trace id: an operator clicks a trace an
operation's diagnosis shows as evidence (a refused health check, a refused ``ib.connect``, the
backend's read of an operation) and diagnoses it. Each is the backend's or the host service's
background work, not a request, and its diagnosis says so and leads back to the operation."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REAL_KTRDR
from opdiag.devtools.score_cases import diagnose_case

RUN = REAL_KTRDR / "run1"
CASES: list[dict[str, Any]] = yaml.safe_load((RUN / "cases.yaml").read_text(encoding="utf-8"))
FINAL = {c["id"]: c for c in CASES if c.get("upto") is None}
NOW = "2026-12-04T16:10:00Z"

pytestmark = pytest.mark.slow

TRAINING = "op_training_20261204_160033_fcc59c1d"  # its worker on :5006 killed at 16:01:01
DATA_LOAD = "op_data_load_20261204_154455_734c9af6"  # IB Gateway refused the host service


def _evidence(d: dict[str, Any], tmp: Path, url_end: str) -> dict[str, Any]:
    """The diagnosis of the first evidence trace of ``d`` whose failed call's URL ends so."""
    for i, trace_id in enumerate(d["evidence_trace_ids"]):
        e = diagnose_case(RUN, {"id": trace_id, "now": NOW}, tmp / f"e{i}")
        url = str(((e.get("root_cause") or {}).get("evidence") or {}).get("http.url") or "")
        if url.endswith(url_end):
            return e
    raise AssertionError(f"no evidence trace calls …{url_end}: {d['evidence_trace_ids']}")


def test_a_refused_health_check_asked_about_names_its_worker_and_the_run_it_was_on(
    tmp_path: Path,
) -> None:
    """A refused GET :5006/health of the training operation's evidence: before, "did not
    answer the dispatch", status rejected, "run the operation again", no worker or
    operation named. It is the backend's health check of the worker that was running the
    training: say so and point at that operation."""
    d = diagnose_case(RUN, FINAL[TRAINING], tmp_path / "op")
    e = _evidence(d, tmp_path, ":5006/health")
    assert e["status"] == "background", e["status"]
    assert e["verdict"] == "worker_lost", e["summary"]
    summary = e["summary"]
    assert "health check of ktrdr-training-worker-b969a633 at 127.0.0.1:5006" in summary, summary
    assert TRAINING in summary and "refused" in summary, summary
    assert "dispatch" not in summary, summary
    steps = " ".join(e["solution"]["steps"])
    assert "run the operation again" not in steps and TRAINING in steps, steps


def test_the_backends_refused_read_of_an_operation_names_the_operation(tmp_path: Path) -> None:
    """The backend's proxied read of the training from its dead worker (a refused GET
    :5006/api/v1/operations/<id>): before, "refused the backend's read of the operation"
    with the id only inside the URL."""
    d = diagnose_case(RUN, FINAL[TRAINING], tmp_path / "op")
    e = _evidence(d, tmp_path, f":5006/api/v1/operations/{TRAINING}")
    assert e["verdict"] == "worker_lost", e["summary"]
    assert f"read of the operation {TRAINING}" in e["summary"], e["summary"]


def test_a_refused_ib_connect_asked_about_is_its_own_root_cause_and_counted(
    tmp_path: Path,
) -> None:
    """The data load's root cause, a one-span ib.connect trace, diagnosed by its trace id:
    before, the span asked about was left out (8 failed, "the last at 15:46:33") and the root
    cause and link moved to another trace "outside the operation's traces", status rejected.
    It counts itself, is its own root cause, and is background work."""
    d = diagnose_case(RUN, FINAL[DATA_LOAD], tmp_path / "op")
    rc = d["root_cause"]
    e = diagnose_case(RUN, {"id": rc["trace_id"], "now": NOW}, tmp_path / "ib")
    assert e["status"] == "background", e["status"]
    assert e["verdict"] == "service_unreachable", e["summary"]
    own = e["root_cause"]
    assert (own["trace_id"], own["span_id"]) == (rc["trace_id"], rc["span_id"]), own
    assert not own.get("neighbour"), own
    assert "the last at 15:46:55 UTC" in e["summary"], e["summary"]


@pytest.mark.parametrize(
    ("request_id", "judged", "failed"),
    [
        ("1880c513804fedc10d7c942896c05f57", "15:51:37", 4),  # one 503
        ("34a15514715bc381388f7b067c3def15", "15:51:52", 6),  # the CLI's four tries, to 15:51:52
    ],
)
def test_a_request_that_found_the_dead_worker_points_at_its_failed_check(
    tmp_path: Path, request_id: str, judged: str, failed: int
) -> None:
    """The 503s after the backtest worker on :5003 was killed (its last answered check
    15:50:50, every one from 15:51:00 refused). Before: root cause and Jaeger link on
    workers.select, whose available_workers "0" reads as busy; the failed checks counted
    15 s past the request (6 for the first request, 7 for the retry of the same outage, 4
    and 6 by their time). Now the finding is the newest failed check before the request,
    and the summary counts the checks by the request and says when the worker last answered."""
    d = diagnose_case(RUN, FINAL[request_id], tmp_path / "req")
    summary = d["summary"]
    assert d["verdict"] == "worker_lost", summary
    assert f"{failed} failed checks of its address by {judged} UTC" in summary, summary
    assert "last answer at 15:50:50 UTC" in summary, summary
    rc = d["root_cause"]
    assert rc["span_name"] == "GET" and rc["neighbour"], rc
    assert str(rc["evidence"].get("http.url", "")).endswith(":5003/health"), rc
    assert rc["time_ms"] <= rv_ms(judged), rc
    assert rc["trace_id"] == d["evidence_trace_ids"][0], d["evidence_trace_ids"]


def rv_ms(clock: str) -> float:
    """run1's day at ``clock`` (UTC), in epoch ms."""
    return datetime.fromisoformat(f"2026-12-04T{clock}+00:00").timestamp() * 1000


def test_the_refused_dispatch_says_when(tmp_path: Path) -> None:
    """The backend's dispatch to the killed :5003 (the CLI tried four times, the last at
    15:51:03): its summary said "did not answer the dispatch" with no time, beside the 503s
    that followed it, which say when the worker last answered."""
    d = diagnose_case(RUN, FINAL["ba9b00b84b794c4b36caeec9527bc209"], tmp_path / "d")
    assert d["verdict"] == "worker_lost", d["summary"]
    assert "did not answer the dispatch at 15:51:03 UTC" in d["summary"], d["summary"]
