"""The real recordings with what another run would plausibly hold: the CLI retrying a call
that then succeeds (run1 shows it retrying a 500 and a 503, and ``--follow`` polling every
few hundred ms), and a worker address that answers again as a new process.

A completed operation whose first dispatch was refused, or one of whose polls timed out, is
healthy: the failed attempt is an advisory finding, not the verdict. A request refused
because its worker was dead names the process that went silent, not the one that took its
address afterwards."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import REAL_KTRDR
from real_variants import Recording, attr, load, spans, without, write
from test_real_ktrdr import diagnose

RUN = REAL_KTRDR / "run1"
HEALTHY = "op_backtesting_20261204_154358_5d955ea3"  # CLI --follow, completed in 5.2 s
HEALTHY_TRACE = "3cd998ed64c69b770f9f1c95f470a865"
REFUSED_503 = "34a15514715bc381388f7b067c3def15"  # the CLI's POSTs answered 503, retried
NOW = "2026-12-04T16:10:00Z"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("JAEGER_URL", "OPDIAG_JAEGER_URL", "OPDIAG_TRACES", "OPDIAG_CONFIG"):
        monkeypatch.delenv(var, raising=False)


def _run(tmp_path: Path, recording: Recording, ident: str) -> dict[str, Any]:
    run = tmp_path / "run"
    write(recording, run / "traces")
    return diagnose(run, {"id": ident, "now": NOW}, tmp_path)


def _subtree(recording: Recording, trace_id: str, top: str) -> list[tuple[str, dict[str, Any]]]:
    """(service, span) of ``top`` and every span below it in ``trace_id``."""
    inside = {top}
    found = [(svc, s) for _, svc, s in spans(recording) if s["traceId"] == trace_id]
    grew = True
    while grew:
        grew = False
        for _, s in found:
            if s.get("parentSpanId") in inside and s["spanId"] not in inside:
                inside.add(s["spanId"])
                grew = True
    return [(svc, s) for svc, s in found if s["spanId"] in inside]


def _cli_root(recording: Recording, trace_id: str) -> dict[str, Any]:
    return next(
        s
        for _, _, s in spans(recording)
        if s["traceId"] == trace_id and s["name"] == "cli.backtest"
    )


def _with_failed_first_dispatch(recording: Recording) -> Recording:
    """The healthy backtest's CLI first got a 503 (the first POST of the recorded
    ``REFUSED_503`` request, moved into its trace 5 ms after the command started, 40 ms
    before its own POST); its retry is the recorded successful POST."""
    root = _cli_root(recording, HEALTHY_TRACE)
    first_post = min(
        (
            s
            for _, svc, s in spans(recording)
            if s["traceId"] == REFUSED_503 and svc == "ktrdr-cli" and s["name"] == "POST"
        ),
        key=lambda s: int(s["startTimeUnixNano"]),
    )
    shift = int(root["startTimeUnixNano"]) + 5_000_000 - int(first_post["startTimeUnixNano"])
    by_service: dict[str, list[dict[str, Any]]] = {}
    for service, span in _subtree(recording, REFUSED_503, first_post["spanId"]):
        moved = copy.deepcopy(span)
        moved["traceId"] = HEALTHY_TRACE
        if moved["spanId"] == first_post["spanId"]:
            moved["parentSpanId"] = root["spanId"]
        for key in ("startTimeUnixNano", "endTimeUnixNano"):
            moved[key] = str(int(moved[key]) + shift)
        by_service.setdefault(service, []).append(moved)
    stamp = recording[0][0].split("_", 1)[0]
    extra = [
        (
            f"{stamp}_{99000 + i}_grpc_{service}.json",
            {
                "resourceSpans": [
                    {
                        "resource": {
                            "attributes": [
                                {"key": "service.name", "value": {"stringValue": service}}
                            ]
                        },
                        "scopeSpans": [{"scope": {"name": "retry"}, "spans": moved}],
                    }
                ]
            },
        )
        for i, (service, moved) in enumerate(sorted(by_service.items()))
    ]
    return [*recording, *extra]


def _with_one_poll_timed_out(recording: Recording) -> Recording:
    """One of the healthy backtest's ``--follow`` polls timed out (httpx.ReadTimeout, no
    status, as run1's failed client spans look; the backend never answered it)."""
    polls = sorted(
        (
            s
            for _, svc, s in spans(recording)
            if s["traceId"] == HEALTHY_TRACE and svc == "ktrdr-cli" and s["name"] == "GET"
        ),
        key=lambda s: int(s["startTimeUnixNano"]),
    )
    poll = polls[1]
    below = {s["spanId"] for _, s in _subtree(recording, HEALTHY_TRACE, poll["spanId"])}
    below.discard(poll["spanId"])
    out = without(recording, lambda _svc, s: s["traceId"] == HEALTHY_TRACE and s["spanId"] in below)
    for _, _, span in spans(out):
        if span["traceId"] == HEALTHY_TRACE and span["spanId"] == poll["spanId"]:
            span["status"] = {"code": 2}
            span["attributes"] = [a for a in span["attributes"] if a["key"] != "http.status_code"]
            span["events"] = [
                {
                    "timeUnixNano": span["endTimeUnixNano"],
                    "name": "exception",
                    "attributes": [
                        {"key": "exception.type", "value": {"stringValue": "httpx.ReadTimeout"}},
                        {"key": "exception.message", "value": {"stringValue": ""}},
                    ],
                }
            ]
    return out


def _advisory(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in d["findings"] if f["summary"].startswith("recovered: ")]


def test_a_503_then_a_successful_retry_is_healthy(tmp_path: Path) -> None:
    recording = _with_failed_first_dispatch(load(RUN / "traces"))
    d = _run(tmp_path, recording, HEALTHY)
    assert (d["verdict"], d["status"]) == ("healthy", "completed"), d["summary"]
    (finding,) = _advisory(d)
    assert finding["verdict"] is None and finding["severity"] == "warning"
    assert finding["evidence"]["recovered_from"] == "workers_busy"
    marked = [s for s in d["execution_flow"] if s.get("recovered")]
    assert {s["span_name"] for s in marked} >= {"POST", "workers.select"}


def test_a_poll_that_timed_out_does_not_fail_a_completed_operation(tmp_path: Path) -> None:
    d = _run(tmp_path, _with_one_poll_timed_out(load(RUN / "traces")), HEALTHY)
    assert (d["verdict"], d["status"]) == ("healthy", "completed"), d["summary"]
    (finding,) = _advisory(d)
    assert finding["span_name"] == "GET" and "ReadTimeout" in finding["summary"]
    assert json.dumps(d).count('"recovered": true') == 1


@pytest.mark.parametrize(
    "ident", ["1880c513804fedc10d7c942896c05f57", "34a15514715bc381388f7b067c3def15"]
)
def test_a_dead_worker_is_named_by_the_process_that_went_silent(
    tmp_path: Path, ident: str
) -> None:
    """:5003's process 09ec5021 last answered at 15:50:50; the requests at 15:51 found it
    dead; 5f6c5bbe took the address at 15:52:04. The silent one is 09ec5021."""
    d = _run(tmp_path, load(RUN / "traces"), ident)
    assert d["verdict"] == "worker_lost"
    assert "09ec5021" in d["summary"] and "5f6c5bbe" not in d["summary"], d["summary"]


TRAINING = "op_training_20261204_154305_f6579e1a"  # run1 case 1: --follow, completed in 45 s


def _with_follower_gone(recording: Recording) -> Recording:
    """The backend stopped answering 10 s into the training: the CLI's poll then could not
    connect and the CLI gave up (its command in error, no poll after it, nothing the backend
    did for those polls). The worker finished the training regardless."""
    holding = {s["traceId"] for _, _, s in spans(recording) if attr(s, "operation.id") == TRAINING}
    (trace_id,) = {
        s["traceId"] for _, _, s in spans(recording)
        if s["name"] == "cli.train" and s["traceId"] in holding
    }
    root = next(
        s for _, _, s in spans(recording) if s["traceId"] == trace_id and s["name"] == "cli.train"
    )
    polls = sorted(
        (
            s
            for _, svc, s in spans(recording)
            if s["traceId"] == trace_id and svc == "ktrdr-cli" and s["name"] == "GET"
        ),
        key=lambda s: int(s["startTimeUnixNano"]),
    )
    cut = int(root["startTimeUnixNano"]) + 10 * 10**9
    failing = next(p for p in polls if int(p["startTimeUnixNano"]) >= cut)
    later = [p for p in polls if int(p["startTimeUnixNano"]) > int(failing["startTimeUnixNano"])]
    gone: set[str] = set()
    for poll in [failing, *later]:
        gone |= {s["spanId"] for _, s in _subtree(recording, trace_id, poll["spanId"])}
    gone.discard(failing["spanId"])
    out = without(recording, lambda _svc, s: s["traceId"] == trace_id and s["spanId"] in gone)
    error = {
        "timeUnixNano": failing["endTimeUnixNano"],
        "name": "exception",
        "attributes": [
            {"key": "exception.type", "value": {"stringValue": "httpx.ConnectError"}},
            {"key": "exception.message", "value": {"stringValue": "connection refused"}},
        ],
    }
    for _, _, span in spans(out):
        if span["traceId"] != trace_id:
            continue
        if span["spanId"] in (failing["spanId"], root["spanId"]):
            span["status"] = {"code": 2}
            span["events"] = [error]
            span["attributes"] = [a for a in span["attributes"] if a["key"] != "http.status_code"]
        if span["spanId"] == root["spanId"]:
            span["endTimeUnixNano"] = failing["endTimeUnixNano"]
    return out


def test_a_completed_training_whose_cli_gave_up_following_is_healthy(tmp_path: Path) -> None:
    d = _run(tmp_path, _with_follower_gone(load(RUN / "traces")), TRAINING)
    assert (d["verdict"], d["status"]) == ("healthy", "completed"), d["summary"]
    (finding,) = _advisory(d)
    assert "the operation completed at" in finding["summary"]
    marked = {s["span_name"] for s in d["execution_flow"] if s.get("recovered")}
    assert marked == {"GET", "cli.train"}
