"""The real recording (run1) with a service KTRDR depends on failing in other ways than it did.

run1 lost workers and the IB host service; another recording may lose PostgreSQL or restart
the backend. What KTRDR does then, read from its code at the recorded commit: the worker
answers ``POST /training/start`` at once and creates the operation in a background task
(``operations.create``, which reads the repository first: SQLAlchemy over asyncpg, whose
refused connection is asyncio's ``OSError: Multiple exceptions: [Errno 111] Connect call
failed`` when ``localhost`` is both ``::1`` and ``127.0.0.1``); KTRDR emits no database spans.
A restarted backend is silent while down (no health round, no answer), the CLI's ``--follow``
retries a refused poll three times and exits, and the worker trains on.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import real_variants as rv
from conftest import REAL_KTRDR
from opdiag.cli.main import main as opdiag_main
from opdiag.devtools.score_cases import diagnose_case

TRACES = REAL_KTRDR / "run1" / "traces"
FIRST = "op_training_20261204_154305_f6579e1a"  # run1 case 1, on the worker at :5005
FIRST_TRACE = "3fc8e4d54fc4d849781081d8e7561132"
DISPATCH = {
    "cli.train",
    "POST",
    "POST /api/v1/trainings/start",
    "training.start",
    "workers.list",
    "POST /training/start",
    "operations.create",
}
PG_REFUSED = (
    "Multiple exceptions: [Errno 111] Connect call failed ('::1', 5432, 0, 0), "
    "[Errno 111] Connect call failed ('127.0.0.1', 5432)"
)

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("JAEGER_URL", "OPDIAG_JAEGER_URL", "OPDIAG_TRACES", "OPDIAG_CONFIG"):
        monkeypatch.delenv(var, raising=False)


def _postgres_down(exc_type: str, message: str) -> rv.Recording:
    """Case 1's training with PostgreSQL down: the dispatch succeeds, the worker's
    ``operations.create`` raises 6 ms in, nothing else of the operation runs, and the CLI's
    command ends in error 0.3 s later (its first poll answered 400). The rest of run1 stays:
    the same worker (d97729bc, :5005) runs cases 7 and 9 afterwards and is SIGKILLed at
    15:48:21 during case 9."""
    base = rv.load(TRACES)
    ours = [s for _, _, s in rv.spans(base) if s["traceId"] == FIRST_TRACE]
    create = next(s for s in ours if s["name"] == "operations.create")
    failed_at = int(create["startTimeUnixNano"]) + 6_000_000
    cut = rv.without(
        base,
        lambda _svc, s: (
            s["traceId"] == FIRST_TRACE
            and (s["name"] not in DISPATCH or int(s["startTimeUnixNano"]) > failed_at)
        ),
    )
    created = rv.raising(exc_type, message, end_ns=failed_at)
    cut = rv.edited(cut, lambda _svc, s: s["spanId"] == create["spanId"], created)
    return rv.edited(
        cut,
        lambda _svc, s: s["traceId"] == FIRST_TRACE and s["name"] == "cli.train",
        rv.raising("click.exceptions.Exit", "1", end_ns=failed_at + 300_000_000),
    )


def _diagnose(recording: rv.Recording, ident: str, now: str, tmp: Path) -> dict[str, Any]:
    root = tmp / "run"
    rv.write(recording, root / "traces")
    return diagnose_case(root, {"id": ident, "now": now}, tmp / "scratch")


@pytest.mark.parametrize("now", ["2026-12-04T15:47:40Z", "2026-12-04T16:10:00Z"])
def test_postgres_down_when_the_worker_creates_the_operation(now: str, tmp_path: Path) -> None:
    """The operation failed at its creation because PostgreSQL refused the connection; its
    worker's death five minutes later, after it ran two other operations, is not its story."""
    d = _diagnose(_postgres_down("OSError", PG_REFUSED), FIRST, now, tmp_path)
    assert d["verdict"] == "service_unreachable", d["summary"]
    assert "PostgreSQL" in d["summary"] and "5432" in d["summary"], d["summary"]
    assert d["status"] == "failed"
    assert d["root_cause"]["span_name"] == "operations.create"
    assert d["duration_ms"] < 1_000  # over when the CLI gave up, not running until now


def test_postgres_refusing_the_credentials(tmp_path: Path) -> None:
    d = _diagnose(
        _postgres_down(
            "asyncpg.exceptions.InvalidPasswordError",
            'password authentication failed for user "ktrdr"',
        ),
        FIRST,
        "2026-12-04T16:10:00Z",
        tmp_path,
    )
    assert d["verdict"] == "failed", d["summary"]
    assert "credentials" in d["summary"] and "PostgreSQL" in d["summary"], d["summary"]
    assert d["status"] == "failed"


LONG = "op_training_20261204_155512_6652e327"  # run1 case 18: 4 min, completed 15:59:14
LONG_TRACE = "e20c8e17"
DOWN_NS = rv.ns("2026-12-04T15:56:00Z")  # the backend stops; a new process answers 30 s later


def _backend_restarted(down_s: float) -> rv.Recording:
    """The backend restarted during case 18's training, down for ``down_s`` seconds. While
    it is down it writes nothing (no health round, no answered poll); the CLI's
    ``--follow`` poll is refused, retried after 1, 2 and 4 s (async_client.py) and the CLI
    exits 1. The worker trains on and completes as recorded."""
    base = rv.load(TRACES)
    root = next(
        s
        for _, _, s in rv.spans(base)
        if s["traceId"].startswith(LONG_TRACE) and s["name"] == "cli.train"
    )
    quiet = {
        s["traceId"]
        for _, svc, s in rv.spans(base)
        if svc == "ktrdr-api" and DOWN_NS <= int(s["startTimeUnixNano"]) < DOWN_NS + down_s * 1e9
    }
    cut = rv.without(
        base,
        lambda _svc, s: (
            s["traceId"].startswith(LONG_TRACE)
            and int(s["startTimeUnixNano"]) >= DOWN_NS
            and s["name"] != "operation.state_transition"
        )
        or (s["traceId"] in quiet and not s["traceId"].startswith(LONG_TRACE)),
    )
    url = f"http://127.0.0.1:8000/api/v1/operations/{LONG}"
    refused = rv.raising("httpx.ConnectError", "All connection attempts failed")
    polls, at = [], DOWN_NS + 200_000_000
    for i, wait_s in enumerate((1, 2, 4, 0)):
        trace_id, span_id, end = root["traceId"], f"{i + 1:016x}", at + 3_000_000
        poll = rv.client_call(trace_id, root["spanId"], span_id, at, end, "GET", url)
        refused(poll)
        polls.append(poll)
        at += 3_000_000 + int(wait_s * 1e9)
    cut = rv.added(cut, "ktrdr-cli", polls)
    return rv.edited(
        cut,
        lambda _svc, s: s["spanId"] == root["spanId"],
        rv.raising("click.exceptions.Exit", "1", end_ns=at + 50_000_000),
    )


def _before(recording: rv.Recording, clock: str) -> rv.Recording:
    """What the source held at ``clock``: the spans that had ended by then."""
    return rv.without(recording, lambda _svc, s: int(s["endTimeUnixNano"]) > rv.ns(clock))


def test_a_backend_restart_under_a_running_training_is_not_its_verdict(tmp_path: Path) -> None:
    """At 15:57:30 the backend has been back for a minute (its health rounds answer) and the
    training runs on its worker: the CLI's refused polls are history; once it completes, it
    is healthy."""
    restarted = _backend_restarted(30)
    now = "2026-12-04T15:57:30Z"
    d = _diagnose(_before(restarted, now), LONG, now, tmp_path / "running")
    assert (d["verdict"], d["status"]) == ("healthy", "running"), d["summary"]
    recovered = [f for f in d["findings"] if f["summary"].startswith("recovered: ")]
    assert recovered and "ktrdr-api was up again at 15:56:3" in recovered[0]["summary"]
    d = _diagnose(restarted, LONG, "2026-12-04T16:09:00Z", tmp_path / "final")
    assert (d["verdict"], d["status"]) == ("healthy", "completed"), d["summary"]


def test_a_backend_still_down_is_the_verdict_of_the_training_it_left(tmp_path: Path) -> None:
    now = "2026-12-04T15:57:30Z"
    d = _diagnose(_before(_backend_restarted(600), now), LONG, now, tmp_path)
    assert d["verdict"] == "service_unreachable", d["summary"]
    assert "backend" in d["summary"]


LOAD = "op_data_load_20261204_154455_734c9af6"  # run1 case 4: the Gateway refused throughout
LOAD_TRACE = "7b999689"
HOST = "ktrdr-ib-host-service"


def _host_killed(at: str) -> rv.Recording:
    """The IB host service SIGKILLed at ``at`` during case 4's second ``POST /data/validate``
    (its first timed out on the refusing Gateway): the open call ends in httpx's
    RemoteProtocolError, KTRDR retries only timeouts, so the operation fails at once; the
    host service's unexported spans are lost and its ib.connect loop stops."""
    killed = rv.ns(at)
    base = rv.died_before_export(rv.load(TRACES), HOST, killed)
    base = rv.without(
        base,
        lambda _svc, s: s["traceId"].startswith(LOAD_TRACE)
        and int(s["startTimeUnixNano"]) > killed + 600_000_000
        and s["name"] not in ("cli.data_load", "data.download", "operation.state_transition")
        and not s["name"].startswith("POST /api/v1/data/acquire/download"),
    )
    base = rv.without(base, lambda svc, s: rv.is_orphan_close(svc, s) and LOAD in str(s))

    def open_call(_svc: str, s: dict[str, Any]) -> bool:
        url = str(rv.attr(s, "http.url") or "")
        start, end = int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"])
        return s["kind"] == rv.CLIENT and ":5001/data/validate" in url and start < killed < end

    message = "Server disconnected without sending a response."
    dropped = rv.raising("httpx.RemoteProtocolError", message, end_ns=killed + 2_000_000)
    base = rv.edited(base, open_call, dropped)

    def failed(span: dict[str, Any]) -> None:
        span["startTimeUnixNano"], span["endTimeUnixNano"] = str(killed + 4_000_000), str(
            killed + 4_100_000
        )
        for a in span["attributes"]:
            if a["key"] == "operation.error":
                a["value"]["stringValue"] = (
                    f"Host service connection failed: HTTP error for POST /data/validate: {message}"
                )

    return rv.edited(
        base,
        lambda _svc, s: s["name"] == "operation.state_transition"
        and s["traceId"].startswith(LOAD_TRACE)
        and rv.attr(s, "operation.to_status") == "failed",
        failed,
    )


def test_the_host_service_killed_mid_request_is_the_cause_not_the_gateway(tmp_path: Path) -> None:
    """The Gateway's refusals explain why the first call hung; the operation failed because
    the host service died under the second, and it must be brought back first."""
    d = _diagnose(_host_killed("2026-12-04T15:45:40Z"), LOAD, "2026-12-04T16:10:00Z", tmp_path)
    assert d["verdict"] == "service_unreachable", d["summary"]
    assert "IB host service dropped the request" in d["summary"], d["summary"]
    assert d["root_cause"]["service"] == "ktrdr-api" and d["root_cause"]["span_name"] == "POST"
    (top,) = [f for f in d["findings"] if f["rule_id"] == "ib-host-dropped"]
    assert "ib-gateway-refused" in {a["rule_id"] for a in top["evidence"]["also"]}  # still shown


def _host_stopped(at: str) -> rv.Recording:
    """The IB host service stopped at ``at`` while case 4's second ``POST /data/validate``
    waited on the refusing Gateway: that call times out as recorded (nothing answers it),
    the retry after it (KTRDR retries timeouts after 1, 2, 4 s) finds the port closed, and
    ``ConnectError`` fails the load at once (service_adapter.py retries only timeouts):
    'Host service connection failed: HTTP error for POST /data/validate: All connection
    attempts failed'. The CLI sees failed on its next poll and ends; the host service's
    unexported spans and its ib.connect loop stop with it."""
    stopped = rv.ns(at)
    base = rv.died_before_export(rv.load(TRACES), HOST, stopped)
    base = rv.without(base, lambda svc, s: rv.is_orphan_close(svc, s) and LOAD in str(s))
    calls = sorted(
        (
            s
            for _, _, s in rv.spans(base)
            if s["traceId"].startswith(LOAD_TRACE)
            and s["kind"] == rv.CLIENT
            and str(rv.attr(s, "http.url")).endswith(":5001/data/validate")
        ),
        key=lambda s: int(s["startTimeUnixNano"]),
    )
    retry = next(s for s in calls if int(s["startTimeUnixNano"]) > stopped + 10**10)
    refused_at = int(retry["startTimeUnixNano"])
    base = rv.without(
        base,
        lambda _svc, s: s["traceId"].startswith(LOAD_TRACE)
        and int(s["startTimeUnixNano"]) > refused_at + 400_000_000
        and s["name"] not in ("cli.data_load", "data.download", "operation.state_transition"),
    )
    message = "All connection attempts failed"
    base = rv.edited(
        base,
        lambda _svc, s: s["spanId"] == retry["spanId"],
        rv.raising("httpx.ConnectError", message, end_ns=refused_at + 2_000_000),
    )

    def failed(span: dict[str, Any]) -> None:
        span["startTimeUnixNano"] = str(refused_at + 4_000_000)
        span["endTimeUnixNano"] = str(refused_at + 4_100_000)
        for a in span["attributes"]:
            if a["key"] == "operation.from_status":
                a["value"]["stringValue"] = "running"
            if a["key"] == "operation.error":
                a["value"]["stringValue"] = (
                    f"Host service connection failed: HTTP error for POST /data/validate: {message}"
                )

    def cli_ends(span: dict[str, Any]) -> None:
        span["endTimeUnixNano"] = str(refused_at + 500_000_000)

    base = rv.edited(
        base,
        lambda _svc, s: s["traceId"].startswith(LOAD_TRACE)
        and rv.attr(s, "operation.to_status") == "failed",
        failed,
    )
    return rv.edited(
        base,
        lambda _svc, s: s["traceId"].startswith(LOAD_TRACE) and s["name"] == "cli.data_load",
        cli_ends,
    )


def test_the_host_service_stopped_between_attempts_is_the_cause_not_the_gateway(
    tmp_path: Path,
) -> None:
    """The Gateway's refusals made the first calls time out; the load failed because the
    retry found nothing listening on :5001, and the host service must be started first.
    Before: 'IB Gateway at 127.0.0.1:4002 refused the IB host service', root cause ib.connect."""
    d = _diagnose(_host_stopped("2026-12-04T15:45:40Z"), LOAD, "2026-12-04T16:10:00Z", tmp_path)
    assert d["verdict"] == "service_unreachable", d["summary"]
    assert "IB host service refused the connection" in d["summary"], d["summary"]
    assert "5001" in d["summary"] and "stopped or died" in d["summary"], d["summary"]
    assert d["root_cause"]["service"] == "ktrdr-api" and d["root_cause"]["span_name"] == "POST"
    assert d["status"] == "failed"
    (top,) = [f for f in d["findings"] if f["rule_id"] == "ib-host-gone-after-waiting"]
    assert "ib-gateway-refused" in {a["rule_id"] for a in top["evidence"]["also"]}  # still shown


@pytest.mark.parametrize(
    ("now", "status"), [("2026-12-04T15:46:00Z", "cancelled"), ("2026-12-04T16:10:00Z", "failed")]
)
def test_a_data_load_cancelled_while_waiting_on_the_gateway(
    now: str, status: str, tmp_path: Path
) -> None:
    """Ctrl+C on `ktrdr data load AAPL` 20 s into case 4: cancelled at once; KTRDR's download
    thread goes on and, when the host service's retries run out, fails the cancelled load.
    The Gateway stays the verdict and the cancel is said. Before, once failed: 'IB Gateway
    ... refused the IB host service ..., so the host service could not answer', no cancel."""
    changed = rv.data_load_cancelled(rv.load(TRACES), LOAD, rv.ns("2026-12-04T15:45:15Z"))
    d = _diagnose(changed, LOAD, now, tmp_path)
    assert (d["verdict"], d["status"]) == ("service_unreachable", status), d["summary"]
    assert "Gateway" in d["summary"] and "4002" in d["summary"], d["summary"]
    assert "cancelled" in d["summary"], d["summary"]
    assert d["root_cause"]["span_name"] == "ib.connect"


@pytest.mark.parametrize(
    ("killed", "back"),
    [
        ("2026-12-04T15:45:12Z", "2026-12-04T15:45:19Z"),
        ("2026-12-04T15:44:58Z", "2026-12-04T15:45:05Z"),
    ],
)
def test_a_data_load_lost_with_a_restarted_backend_says_so(
    killed: str, back: str, tmp_path: Path
) -> None:
    """The backend SIGKILLed during case 4's data load and back 7 s later: the load ran in
    the old process (nothing resumes it), the CLI's reads were refused meanwhile and
    answered RUNNING again after, and the new process's orphan detector failed it. Before:
    'service unreachable: backend API unreachable (httpx.ConnectError at …)', as if the
    backend were still down and nothing said the load was lost with it. Killed 3 s in, the
    backend's spans of the load were lost with its first export batch: only the orphan
    detector's one-span trace names it, and the CLI's trace (its reads answered, one
    refused) was a failed dispatch of its own; the load read 'failed: Operation was RUNNING
    but no worker claimed it', 0 ms long."""
    changed = rv.backend_killed_during_data_load(rv.load(TRACES), LOAD, rv.ns(killed), rv.ns(back))
    d = _diagnose(changed, LOAD, "2026-12-04T16:10:00Z", tmp_path)
    assert (d["verdict"], d["status"]) == ("service_unreachable", "failed"), d["summary"]
    assert "the backend stopped while it ran this data load" in d["summary"], d["summary"]
    assert "orphan detector" in d["summary"], d["summary"]
    assert d["root_cause"]["service"] == "ktrdr-cli"


def test_a_data_load_sent_with_curl_lost_with_a_restarted_backend(tmp_path: Path) -> None:
    """The same kill with the load started by curl: no read was refused, but the IB host
    service served the load's validate call that the killed backend never exported, and no
    call of it timed out before the orphan detector failed it. Before: 'failed: POST
    /api/v1/data/acquire/download never called the IB host service', which it had."""
    changed = rv.backend_killed_during_data_load(
        rv.load(TRACES), LOAD, rv.ns("2026-12-04T15:45:12Z"), rv.ns("2026-12-04T15:45:19Z")
    )
    trace_id = next(
        s["traceId"] for _, _, s in rv.spans(changed) if rv.attr(s, "operation.id") == LOAD
    )
    d = _diagnose(rv.as_curl(changed, {trace_id}), LOAD, "2026-12-04T16:10:00Z", tmp_path)
    assert (d["verdict"], d["status"]) == ("service_unreachable", "failed"), d["summary"]
    assert "the backend stopped while it ran this data load" in d["summary"], d["summary"]
    assert "never called" not in d["summary"]
    assert d["root_cause"]["span_name"] == "POST /api/v1/data/acquire/download"


@pytest.mark.parametrize(
    ("killed", "now", "back"),
    [
        ("2026-12-04T15:45:12Z", "2026-12-04T15:45:16Z", None),  # still down
        ("2026-12-04T15:45:12Z", "2026-12-04T15:45:40Z", "15:45:19 UTC"),
        ("2026-12-04T15:45:12Z", "2026-12-04T16:10:00Z", "15:45:19 UTC"),  # failed since
        # killed 3 s in: none of its backend spans arrived, the CLI's trace is all there is
        ("2026-12-04T15:44:58Z", "2026-12-04T15:45:03Z", None),
        ("2026-12-04T15:44:58Z", "2026-12-04T15:45:30Z", "15:45:05 UTC"),
        ("2026-12-04T15:44:58Z", "2026-12-04T16:10:00Z", "15:45:05 UTC"),
    ],
)
def test_a_data_load_lost_with_its_backend_says_so_while_in_flight(
    killed: str, now: str, back: str | None, tmp_path: Path
) -> None:
    """The backend SIGKILLed during case 4's data load (followed by the CLI) and back 7 s
    later, judged before the new backend's orphan detector fails the load (15:46:06). The
    refused reads say the backend stopped; the first read answered after them says when it
    came back, as a new process that lost the load (a data load runs in the backend's own
    thread; nothing resumes it). Before: 'IB Gateway ... refuses the IB host service ...:
    the data load waits on a host service that cannot reach the Gateway' (its solution:
    'the data load will time out'), the refused reads history once answered again; killed
    3 s in and still down, 'backend API unreachable'; and the final diagnosis did not say
    when the backend came back."""
    changed = rv.backend_killed_during_data_load(
        rv.load(TRACES), LOAD, rv.ns(killed), rv.ns(killed) + 7_000_000_000
    )
    d = _diagnose(changed, LOAD, now, tmp_path)
    assert d["verdict"] == "service_unreachable", d["summary"]
    assert "the backend stopped while it ran this data load" in d["summary"], d["summary"]
    assert "Gateway" not in d["summary"], d["summary"]
    if now < "2026-12-04T15:46:06Z":  # KTRDR's detector: 60 s unclaimed, seen every 15 s
        assert any(
            "fails it 60 to 75 s after that process started" in s
            for s in d["solution"]["steps"]
        ), d["solution"]
    if back is None:
        assert "again" not in d["summary"], d["summary"]
    elif now < "2026-12-04T15:46:06Z":
        assert f"the backend answered again at {back}, a new process that lost the load" in (
            d["summary"]
        ), d["summary"]
    else:
        assert f"the backend that came back (answering again at {back})" in d["summary"], (
            d["summary"]
        )


@pytest.mark.parametrize("killed", ["2026-12-04T15:44:56Z", "2026-12-04T15:44:59Z"])
def test_a_data_load_sent_with_curl_lost_with_its_backend_within_its_first_export(
    killed: str, tmp_path: Path
) -> None:
    """The load of case 4 started with curl (nothing follows it) and the backend SIGKILLed
    1 or 4 s in, back 7 s later: every backend span of the load was in its first 5 s
    export batch, lost, so only the orphan detector's record, written by the backend that
    came back, names the load (a data load runs in the backend's own process). Before:
    'failed: Operation was RUNNING but no worker claimed it', the detector's words, as if
    something had failed in a live backend."""
    back = rv.ns(killed) + 7_000_000_000
    changed = rv.backend_killed_during_data_load(rv.load(TRACES), LOAD, rv.ns(killed), back)
    trace_id = next(
        s["traceId"] for _, _, s in rv.spans(rv.load(TRACES)) if rv.attr(s, "operation.id") == LOAD
    )
    changed = rv.unfollowed(changed, {trace_id})
    assert not [s for _, svc, s in rv.spans(changed) if s["traceId"] == trace_id
                and svc == "ktrdr-api"]
    d = _diagnose(changed, LOAD, "2026-12-04T16:10:00Z", tmp_path)
    assert (d["verdict"], d["status"]) == ("service_unreachable", "failed"), d["summary"]
    assert "the backend stopped while it ran this data load" in d["summary"], d["summary"]
    assert "orphan detector of the backend that came back" in d["summary"], d["summary"]


def test_a_data_load_lost_with_its_backend_before_any_record_is_not_said_unstarted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The curl-started load of case 4 (id made at 15:44:55) lost with its backend killed at
    15:44:56: at 15:45:30 nothing names it yet, its first record (the orphan detector's) is
    at 15:46:06. Before: 'had not started by 15:45:30 … its first span starts at 15:46:06',
    false: its id says it was made at 15:44:55. Now: no span of it had been exported by then,
    though its id says when it was made."""
    killed = rv.ns("2026-12-04T15:44:56Z")
    changed = rv.backend_killed_during_data_load(
        rv.load(TRACES), LOAD, killed, killed + 7_000_000_000
    )
    trace_id = next(
        s["traceId"] for _, _, s in rv.spans(rv.load(TRACES)) if rv.attr(s, "operation.id") == LOAD
    )
    root = rv.write(rv.unfollowed(changed, {trace_id}), tmp_path / "run" / "traces")
    assert opdiag_main(["diagnose", LOAD, "--traces", str(root),
                        "--now", "2026-12-04T15:45:30Z"]) != 0
    said = capsys.readouterr().err
    assert "had not started" not in said, said
    assert "made at 2026-12-04T15:44:55.000Z" in said and "15:46:06" in said, said
    # once failed, it lasted from its id's time to the orphan detector's record (71 s), not
    # from that record to the last read of it (before: started 15:46:06, 21m31s)
    d = diagnose_case(root.parent, {"id": LOAD, "now": "2026-12-04T16:10:00Z"}, tmp_path / "d")
    assert d["started_at_ms"] == rv.ns("2026-12-04T15:44:55Z") // 1_000_000, d["started_at_ms"]
    assert 65_000 < d["duration_ms"] < 80_000, d["duration_ms"]


def test_a_data_load_lost_with_its_backend_lasted_until_it_was_failed(tmp_path: Path) -> None:
    """The backend SIGKILLed 3 s into case 4's data load, back 7 s later, the load failed by
    the new process's orphan detector 71 s in. The IB host service's /data/validate call
    from the dead backend went on waiting on the Gateway until 15:49:14: its caller's span
    never reached the traces, so it is no work of the load (it read 4m19s). While the load
    ran, the CLI's trace (reads refused, then answered by the new backend) was a row of its
    own, 'healthy: no errors (status unknown)', and its trace id said healthy at the end."""
    changed = rv.backend_killed_during_data_load(
        rv.load(TRACES), LOAD, rv.ns("2026-12-04T15:44:58Z"), rv.ns("2026-12-04T15:45:05Z")
    )
    d = _diagnose(changed, LOAD, "2026-12-04T16:10:00Z", tmp_path)
    assert 70_000 < d["duration_ms"] < 75_000, d["duration_ms"]
    (cli_trace,) = {t for t in d["trace_ids"] if t.startswith("7b999689")}
    by_trace = diagnose_case(tmp_path / "run", {"id": cli_trace, "now": "2026-12-04T16:10:00Z"},
                             tmp_path / "by-trace")
    assert (by_trace["operation_id"], by_trace["verdict"]) == (LOAD, d["verdict"])
    out = io.StringIO()
    with redirect_stdout(out):
        assert opdiag_main(["operations", "--traces", str(tmp_path / "run" / "traces"),
                            "--now", "2026-12-04T15:45:30Z", "--format", "json"]) == 0
    rows = [r for r in json.loads(out.getvalue())
            if r["time"] >= rv.ns("2026-12-04T15:44:50Z") // 1_000_000
            and r["time"] < rv.ns("2026-12-04T15:45:00Z") // 1_000_000]
    assert [(r["operation_id"], r["status"]) for r in rows] == [(LOAD, "running")], rows


HUNG_LOAD = "op_data_load_20261204_154455_734c9af6"  # run1 case 4: POST /data/validate timed out


@pytest.mark.parametrize(
    ("now", "status", "timeouts"),
    [("2026-12-04T15:45:40Z", "running", 1), ("2026-12-04T15:52:00Z", "failed", 4)],
)
def test_an_ib_host_service_that_hangs_is_not_called_down(
    now: str, status: str, timeouts: int, tmp_path: Path
) -> None:
    """Case 4's host service with nothing showing the Gateway refusing it (no ib.connect
    spans: the Gateway is up, the host service hangs for another reason): it accepted every
    POST /data/validate (its server spans are there) and answered none in 30 s; KTRDR's
    service_adapter retried the timeouts and failed the load. It read "Nothing answered at
    http://localhost:5001: the IB host service is not running. Start it": a running service
    called down, and starting what runs fixes nothing."""
    hung = rv.without(rv.load(TRACES), rv.is_ib_connect)
    d = _diagnose(_before(hung, now), HUNG_LOAD, now, tmp_path)
    assert (d["verdict"], d["status"]) == ("service_unreachable", status), d["summary"]
    assert "5001" in d["summary"] and "hangs" in d["summary"], d["summary"]
    assert f"attempts timed out: {timeouts}" in d["summary"], d["summary"]
    assert "gateway" not in d["summary"].lower(), d["summary"]
    steps = " ".join(d["solution"]["steps"])
    assert "not running" not in steps and "running, not down" in steps, steps
    assert "curl -s -m 5 http://localhost:5001/health | jq" in d["solution"]["commands"]
    if status == "failed":
        assert "Host service timeout" in steps, steps
