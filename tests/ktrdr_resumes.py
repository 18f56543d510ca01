"""run1 with the resumes KTRDR would record (commit 2c5c7173, read from its code), spliced
into a copy of the whole recording so the health checks and the rest are around them.

  backend  ktrdr/api/endpoints/operations.py::resume_operation, operations_service.try_resume /
           update_status
  worker   training_worker.py /training/resume, _execute_resumed_training (adopt and start the
           operation, the training pipeline's spans, complete_operation); backtest_worker.py
           /backtests/resume
  CLI      ktrdr/cli/commands/resume.py (cli.resume, no operation id; AsyncCLIClient retries a
           5xx three times)

Built by an audit of opdiag's resume handling; the scenario timings are invented, placed in
real idle windows of the recorded workers. ``scenarios(traces_dir)`` returns, per scenario,
(recording, operation id, clocks to judge at, what really happened).
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import real_variants as rv

TW_OLD = "ktrdr-training-worker-d97729bc"  # :5005, killed 15:48:18
TW = "ktrdr-training-worker-b969a633"  # :5006, alive 15:54:01-16:00:54
BW = "ktrdr-backtest-worker-2ce2abc4"  # :5004
API, CLI = "ktrdr-api", "ktrdr-cli"
INTERNAL, SERVER, CLIENT = 1, 2, 3

OP_CANCELLED = "op_training_20261204_154638_11134ee7"  # cancelled 15:47:30 (ktrdr cancel)
OP_KILLED = "op_training_20261204_154749_b37ed832"  # SIGKILL 15:48:18, orphan-failed 15:54:37
OP_KILLED2 = "op_training_20261204_160033_fcc59c1d"  # SIGKILL 16:00:59, orphan-failed 16:07:08
OP_BT_CANCELLED = "op_backtesting_20261204_160009_05b7bec2"  # cancelled 16:00:23
OP_DONE = "op_training_20261204_154305_f6579e1a"  # completed 15:43:49
OP_RUNNING = "op_training_20261204_155512_6652e327"  # running 15:55:12-15:59:14

_rnd = random.Random(10)
# what the backend answers a resume, per outcome
ANSWER = {
    "ok": 200,
    "conflict": 409,
    "no_checkpoint": 404,
    "no_worker": 503,
    "rejected": 502,
    "connect": 503,
}


def sid() -> str:
    return f"{_rnd.getrandbits(64):016x}"


def tid() -> str:
    return f"{_rnd.getrandbits(128):032x}"


def a(key, value):
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": str(value)}}


def span(t, parent, name, kind, start, end, attrs=None, status=None, events=None, scope=""):
    s = {
        "traceId": t,
        "spanId": sid(),
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(int(start)),
        "endTimeUnixNano": str(int(end)),
        "attributes": [a(k, v) for k, v in (attrs or {}).items()],
        "status": status or {},
        "flags": 256,
        "_scope": scope,
    }
    if parent:
        s["parentSpanId"] = parent["spanId"]
    if events:
        s["events"] = events
    return s


def exc_event(at, etype, msg):
    return [
        {
            "timeUnixNano": str(int(at)),
            "name": "exception",
            "attributes": [
                a("exception.type", etype),
                a("exception.message", msg),
                a("exception.escaped", "False"),
            ],
        }
    ]


S = 1_000_000_000
MS = 1_000_000


def server(t, parent, svc_port, method, route, target, start, end, code, receive=True):
    """A FastAPI server span with its http receive/send children (as KTRDR's records them)."""
    name = f"{method} {route}"
    attrs = {
        "http.scheme": "http",
        "http.host": f"127.0.0.1:{svc_port}",
        "net.host.port": svc_port,
        "http.flavor": "1.1",
        "http.target": target,
        "http.url": f"http://127.0.0.1:{svc_port}{target}",
        "http.method": method,
        "http.server_name": f"127.0.0.1:{svc_port}",
        "http.user_agent": "python-httpx/0.28.1",
        "net.peer.ip": "127.0.0.1",
        "net.peer.port": 40000,
        "http.route": route,
        "http.status_code": code,
    }
    st = {"code": 2} if code >= 500 else {}
    srv = span(
        t, parent, name, SERVER, start, end, attrs, st,
        scope="opentelemetry.instrumentation.fastapi"
    )
    out = [srv]
    if receive:
        out.append(
            span(
                t, srv, f"{name} http receive", INTERNAL, start + 1 * MS, start + 1.3 * MS,
                {"asgi.event.type": "http.request"}, scope="opentelemetry.instrumentation.fastapi"
            )
        )
    out.append(
        span(
            t, srv, f"{name} http send", INTERNAL, end - 1.2 * MS, end - 1.1 * MS,
            {"asgi.event.type": "http.response.start", "http.status_code": code}, st,
            scope="opentelemetry.instrumentation.fastapi"
        )
    )
    out.append(
        span(
            t, srv, f"{name} http send", INTERNAL, end - 1 * MS, end - 0.9 * MS,
            {"asgi.event.type": "http.response.body"}, scope="opentelemetry.instrumentation.fastapi"
        )
    )
    return srv, out


def client(t, parent, method, url, start, end, code=None, error=None):
    attrs = {"http.method": method, "http.url": url}
    st, ev = {}, None
    if code is not None:
        attrs["http.status_code"] = code
        if code >= 400:
            st = {"code": 2}
    if error:
        st = {"code": 2, "message": f"{error[0].rsplit('.', 1)[-1]}: {error[1]}"}
        ev = exc_event(end, *error)
    return span(
        t, parent, method, CLIENT, start, end, attrs, st, ev,
        scope="opentelemetry.instrumentation.httpx"
    )


def transition(t, parent, op, frm, to, at, resumed=False, error=None):
    attrs = {"operation.id": op, "operation.from_status": frm, "operation.to_status": to}
    if resumed:
        attrs["operation.resumed"] = True
    if error:
        attrs["operation.error"] = error
    return span(
        t, parent, "operation.state_transition", INTERNAL, at, at + 0.1 * MS, attrs, {"code": 1},
        scope="ktrdr.monitoring.service_telemetry"
    )


def select(t, parent, at, wtype, total, capable, available, selected=None):
    attrs = {
        "service.method": "workers.select",
        "worker.type": wtype,
        "worker.total_workers": str(total),
        "worker.capable_workers": str(capable),
        "worker.available_workers": str(available),
    }
    if selected:
        attrs["worker.selected_id"] = selected
    attrs["worker.selection_status"] = "success" if selected else "no_workers_available"
    return span(
        t, parent, "workers.select", INTERNAL, at, at + 0.08 * MS, attrs, {"code": 1},
        scope="ktrdr.monitoring.service_telemetry"
    )


def cli_root(t, op, start, end, follow=False, error=None):
    args = json.dumps(
        {
            "args": [],
            "kwargs": {
                "ctx": "<click.core.Context object at 0x7f3a1c2b9d50>",
                "operation_id": op,
                "follow": follow,
            },
        }
    )
    st, ev = {"code": 1}, None
    if error:
        st = {"code": 2, "message": f"{error[0].rsplit('.', 1)[-1]}: {error[1]}"}
        ev = exc_event(end - 0.5 * MS, *error) + exc_event(end - 0.2 * MS, *error)
    return span(
        t, None, "cli.resume", INTERNAL, start, end, {"cli.command": "resume", "cli.args": args},
        st, ev, scope="ktrdr.cli.telemetry"
    )


# ---- one resume request (backend side) -------------------------------------------------------


def resume_request(
    t,
    parent_client,
    op,
    at,
    *,
    frm,
    outcome,
    wtype="training",
    worker=None,
    port=None,
    worker_code=200,
    counts=(3, 1, 1),
):
    """Spans of one POST /api/v1/operations/{id}/resume on the backend (and the worker's
    answer). outcome: ok | conflict (409) | no_checkpoint (404) | no_worker (503) |
    rejected (502) | connect (503). Returns (spans by service, end time, worker server span
    or None)."""
    by = {API: [], worker: []} if worker else {API: []}
    code = ANSWER[outcome]
    dur = {
        "ok": 60,
        "conflict": 12,
        "no_checkpoint": 25,
        "no_worker": 30,
        "rejected": 45,
        "connect": 40,
    }[outcome]
    end = at + dur * MS
    srv, spans_ = server(
        t, parent_client, 8000, "POST", "/api/v1/operations/{operation_id}/resume",
        f"/api/v1/operations/{op}/resume", at, end, code
    )
    by[API] += spans_
    wsrv = None
    if outcome == "conflict":
        return by, end, None
    by[API].append(transition(t, srv, op, frm, "resuming", at + 3 * MS, resumed=True))
    if outcome == "no_checkpoint":
        return by, end, None  # update_status(FAILED): no span
    total, capable, available = counts
    sel = select(
        t, srv, at + 12 * MS, wtype, total, capable if outcome != "no_worker" else 0,
        available if outcome != "no_worker" else 0,
        None if outcome == "no_worker" else f"{wtype}-worker-{worker[-8:] if worker else 'x'}"
    )
    by[API].append(sel)
    if outcome == "no_worker":
        return by, end, None  # update_status(CANCELLED): no span
    path = "/training/resume" if wtype == "training" else "/backtests/resume"
    c0, c1 = at + 15 * MS, end - 8 * MS
    if outcome == "connect":
        by[API].append(
            client(
                t, srv, "POST", f"http://127.0.0.1:{port}{path}", c0, c1,
                error=("httpx.ConnectError", "All connection attempts failed")
            )
        )
        return by, end, None
    wcode = 200 if outcome == "ok" else worker_code
    cl = client(t, srv, "POST", f"http://127.0.0.1:{port}{path}", c0, c1, code=wcode)
    by[API].append(cl)
    wsrv, wsp = server(t, cl, port, "POST", path, path, c0 + 3 * MS, c1 - 3 * MS, wcode)
    by[worker] += wsp
    return by, end, wsrv


# ---- writing ---------------------------------------------------------------------------------


def resource_of(rec, service, like):
    for _, doc in rec:
        for r in doc.get("resourceSpans", []):
            if rv.service_of(r) == (service if like is None else like):
                res = copy.deepcopy({k: v for k, v in r.items() if k != "scopeSpans"})
                for at in res["resource"]["attributes"]:
                    if at["key"] == "service.name":
                        at["value"]["stringValue"] = service
                return res
    raise KeyError(service)


def put(rec, by_service, like=None):
    """Add spans, each in an export file written ~1-5 s after it ended (the batch exporter):
    a snapshot by file time only holds what had ended and been exported."""
    rec = list(rec)
    names = [n for n, _ in rec]
    for service, spans_ in by_service.items():
        if not spans_:
            continue
        res = resource_of(rec, service, (like or {}).get(service))
        groups = {}
        for s in spans_:
            export = (int(s["endTimeUnixNano"]) // (5 * S) + 1) * 5 * S  # next 5 s tick
            groups.setdefault(export, []).append(s)
        for export, group in groups.items():
            scopes = {}
            for original in group:
                s = dict(original)
                scopes.setdefault(s.pop("_scope"), []).append(s)
            doc = {
                "resourceSpans": [
                    {
                        **res,
                        "scopeSpans": [
                            {"scope": {"name": k}, "spans": v} for k, v in scopes.items()
                        ],
                    }
                ]
            }
            stamp = _stamp(export)
            before = [n for n in names if n.split("_")[0] <= stamp]
            seq = rv.sequence_of(before[-1]) if before else 0
            name = f"{stamp}_{seq:05d}_zz{len(rec)}-{service}.json"
            rec.append((name, doc))
    rec.sort(key=lambda item: (item[0].split("_")[0], rv.sequence_of(item[0]), item[0]))
    return rec


def _stamp(ns_):
    import datetime as dt

    return dt.datetime.fromtimestamp(ns_ / 1e9, dt.UTC).strftime("%Y%m%dT%H%M%S")


def merge(*dicts):
    out = {}
    for d in dicts:
        for k, v in d.items():
            out.setdefault(k, []).extend(v)
    return out


def write(rec: rv.Recording, into: Path, snapshot: str | None = None) -> Path:
    """The recording as files under ``into``, only those written by ``snapshot`` when given."""
    into.mkdir(parents=True, exist_ok=True)
    cut = _stamp(rv.ns(snapshot)) if snapshot else None
    for n, doc in rec:
        if cut is None or n.split("_")[0] <= cut:
            (into / n).write_text(json.dumps(doc))
    return into


# ---- scenarios -------------------------------------------------------------------------------


def resumed_training_run(t, wsrv, op, start, done, rows=6240, fail=None, worker=TW):
    """The worker's background task under POST /training/resume: adopt (no span), start_operation
    (resuming->running), training pipeline (training.data_loading; the epochs emit nothing),
    checkpoint delete (no span), complete_operation (running->completed)."""
    out = [transition(t, wsrv, op, "resuming", "running", start + 5 * MS)]
    out.append(
        span(
            t,
            wsrv,
            "training.data_loading",
            INTERNAL,
            start + 90 * MS,
            start + 320 * MS,
            {
                "data.symbol": "EURUSD",
                "data.timeframes": "1h",
                "progress.phase": "data_loading",
                "data.rows": str(rows),
                "data.columns": "5",
            },
            scope="ktrdr.training.training_pipeline",
        )
    )
    if done is not None:
        out.append(transition(t, wsrv, op, "running", "completed", done))
    return {worker: out}


def cli_resume(
    op,
    at,
    outcomes,
    *,
    frm,
    wtype="training",
    worker=TW,
    port=5006,
    worker_code=422,
    follow_until=None,
    ctrl_c=False,
    counts=(3, 1, 1),
):
    """A `ktrdr resume OP` (retries 5xx: 3 more attempts, backoff 1*2^n + jitter)."""
    t = tid()
    by = {CLI: []}
    cur = at + 250 * MS  # CLI start-up
    wsrv = None
    froms = frm
    ended_ok = True
    for i, outcome in enumerate(outcomes):
        code = ANSWER[outcome]
        cl = client(
            t, None, "POST", f"http://127.0.0.1:8000/api/v1/operations/{op}/resume", cur, cur,
            code=code
        )
        sub, end, ws = resume_request(
            t, cl, op, cur + 3 * MS, frm=froms, outcome=outcome, wtype=wtype, worker=worker,
            port=port, worker_code=worker_code, counts=counts
        )
        cl["endTimeUnixNano"] = str(int(end + 4 * MS))
        by[CLI].append(cl)
        by = merge(by, sub)
        wsrv = ws or wsrv
        froms = "cancelled"  # after the first refusal KTRDR reverted it to CANCELLED
        cur = end + 10 * MS
        if outcome != "ok" and code >= 500 and i < len(outcomes) - 1:
            cur += (2**i + 0.4) * S
        ended_ok = outcome == "ok"
    polls = []
    if follow_until is not None:
        p = cur + 50 * MS
        while p < follow_until:
            cl = client(
                t, None, "GET", f"http://127.0.0.1:8000/api/v1/operations/{op}", p, p + 9 * MS,
                code=200
            )
            _, ss = server(
                t, cl, 8000, "GET", "/api/v1/operations/{operation_id}", f"/api/v1/operations/{op}",
                p + 2 * MS, p + 7 * MS, 200, receive=False
            )
            polls.append(cl)
            by[API] = by.get(API, []) + ss
            p += 310 * MS + 9 * MS
        cur = follow_until
    err = None
    if not ended_ok:
        err = ("click.exceptions.Exit", "1")
    root = cli_root(t, op, at, cur + 30 * MS, follow=follow_until is not None, error=err)
    if ctrl_c:  # OTel SDK 1.38 use_span records Exception only: KeyboardInterrupt ends it UNSET
        root["status"] = {}
        root.pop("events", None)
    for s in by[CLI] + polls:
        s["parentSpanId"] = root["spanId"]
    by[CLI] = [root] + by[CLI] + polls
    return t, by, wsrv


def probes_of_restarted(rec, port, service, start_ns, end_ns, every_s=10):
    """A worker started again on `port` as `service`: it registers, the backend probes it again."""
    by = {API: [], service: []}
    p = start_ns
    while p < end_ns:
        t = tid()
        cl = client(t, None, "GET", f"http://127.0.0.1:{port}/health", p, p + 19 * MS, code=200)
        srv, ss = server(
            t, cl, port, "GET", "/health", "/health", p + 3 * MS, p + 18 * MS, 200, receive=False
        )
        ol = span(
            t, srv, "operations.list", INTERNAL, p + 14 * MS, p + 14.1 * MS,
            {"service.method": "operations.list"}, {"code": 1},
            scope="ktrdr.monitoring.service_telemetry"
        )
        by[API].append(cl)
        by[service] += [*ss, ol]
        p += every_s * S
    return by


def scenarios(run1_traces: Path) -> dict:
    base = rv.load(run1_traces)
    ns = rv.ns
    out = {}

    def add(name, recording, op, nows, truth):
        out[name] = (recording, op, nows, truth)

    def resumed_to_the_end(name, op, frm, nows, truth, **how):
        """``op`` resumed at 15:59:20 on :5006, its run completing at 16:00:25."""
        t, by, wsrv = cli_resume(op, ns("2026-12-04T15:59:20Z"), ["ok"], frm=frm, **how)
        start = int(wsrv["startTimeUnixNano"])
        run = resumed_training_run(t, wsrv, op, start, ns("2026-12-04T16:00:25Z"))
        add(name, put(base, merge(by, run)), op, nows, truth)

    # 1. cancelled training resumed (cancellation checkpoint) on the live worker :5006, completes.
    resumed_to_the_end(
        "s1_cancel_resume", OP_CANCELLED, "cancelled",
        ["2026-12-04T15:59:50Z", "2026-12-04T16:10:00Z"],
        "cancelled 15:47:30 after 51 s, resumed 15:59:20 from its cancellation checkpoint on "
        ":5006, completed 16:00:25 (65 s): healthy, resumed; ~116 s of work, not 13.8 min")
    # 1f. the same with --follow: backend GET keeps answering 'resuming' (no proxy after
    # resume), the CLI polls until the user presses Ctrl-C at 16:01:30.
    resumed_to_the_end(
        "s1f_cancel_resume_follow", OP_CANCELLED, "cancelled",
        ["2026-12-04T15:59:50Z", "2026-12-04T16:10:00Z"],
        "as s1, followed with --follow (Ctrl-C at 16:01:30 after the CLI kept "
        "reading 'resuming'): healthy",
        follow_until=ns("2026-12-04T16:01:30Z"), ctrl_c=True)
    # 2. killed (SIGKILL 15:48:18 on :5005), orphan-failed 15:54:37, resumed on the new training
    # worker (:5006, registered 15:54:01) at 15:59:20 from its periodic (epoch 10) checkpoint,
    # completes.
    resumed_to_the_end(
        "s2_kill_resume", OP_KILLED, "failed",
        ["2026-12-04T15:59:50Z", "2026-12-04T16:00:50Z", "2026-12-04T16:10:00Z"],
        "worker :5005 killed, orphan-failed, resumed on :5006 and completed 16:00:25: healthy "
        "(resumed); the dead worker is history")

    # 2r. the same worker restarted on the SAME port (:5006) as a new process after fcc59c1d's kill:
    # fcc59c1d orphan-failed 16:07:08, worker back 16:07:20, resume 16:07:45, completes 16:09:00.
    newsvc = "ktrdr-training-worker-7e41c0d2"
    pr = probes_of_restarted(
        base, 5006, newsvc, ns("2026-12-04T16:07:22Z"), ns("2026-12-04T16:09:40Z")
    )
    t, by, wsrv = cli_resume(
        OP_KILLED2, ns("2026-12-04T16:07:45Z"), ["ok"], frm="failed", worker=newsvc
    )
    run = resumed_training_run(
        t, wsrv, OP_KILLED2, int(wsrv["startTimeUnixNano"]), ns("2026-12-04T16:09:00Z"),
        worker=newsvc
    )
    add(
        "s2r_kill_restart_same_port", put(base, merge(pr, by, run), like={newsvc: TW}), OP_KILLED2,
        ["2026-12-04T16:08:20Z", "2026-12-04T16:10:00Z"],
        "worker :5006 SIGKILLed 16:00:59, orphan-failed 16:07:08, restarted on :5006, "
        "resumed 16:07:45, completed 16:09:00: healthy (resumed)")

    # 3. 404: fcc59c1d was killed 26 s in, before any periodic checkpoint (epoch 10): no checkpoint.
    # try_resume: failed->resuming (span), then update_status(FAILED) without a span, 404; no retry.
    t, by, _ = cli_resume(OP_KILLED2, ns("2026-12-04T16:08:00Z"), ["no_checkpoint"], frm="failed")
    add("s3_resume_404", put(base, by), OP_KILLED2, ["2026-12-04T16:10:00Z"],
        "orphan-failed after the worker kill; resume refused 404 (no checkpoint), KTRDR sets it "
        "FAILED again: worker_lost (as before), resume refused noted")

    # 3c. 404 on a CANCELLED operation: KTRDR marks it FAILED (no span) although it was cancelled.
    t, by, _ = cli_resume(
        OP_BT_CANCELLED, ns("2026-12-04T16:02:00Z"), ["no_checkpoint"], frm="cancelled"
    )
    add("s3c_resume_404_cancelled", put(base, by), OP_BT_CANCELLED, ["2026-12-04T16:10:00Z"],
        "cancelled backtest, resume 404 (no checkpoint): KTRDR now says FAILED "
        "(update_status without span); cancelled verdict + note is right")

    # 4. 503 no training worker: fcc59c1d resumed at 16:08:00, :5006 dead (unregistered 16:06),
    # only the backtest worker registered. 4 attempts (CLI retries 5xx); KTRDR reverts to
    # CANCELLED each time.
    t, by, _ = cli_resume(
        OP_KILLED2, ns("2026-12-04T16:08:00Z"), ["no_worker"] * 4, frm="failed", counts=(1, 0, 0)
    )
    add("s4_resume_503", put(base, by), OP_KILLED2, ["2026-12-04T16:10:00Z"],
        "orphan-failed op, resume refused 503 x4 (no training worker); KTRDR now says "
        "CANCELLED: worker_lost (as before) + refused note")

    # 4b. 503 because the selected worker is dead (registry still lists it): ConnectError.
    t, by, _ = cli_resume(
        OP_CANCELLED, ns("2026-12-04T15:48:40Z"), ["connect"] * 4, frm="cancelled", worker=TW_OLD,
        port=5005
    )
    add("s4b_resume_connect", put(base, by), OP_CANCELLED, ["2026-12-04T16:10:00Z"],
        "cancelled op; resume 15:48:40 dispatched to the just-killed :5005, ConnectError, "
        "503 x4, reverted to CANCELLED: cancelled (+ refused note)")

    # 5. 502: the worker rejects (422 checkpoint corrupted), 4 attempts, reverted to CANCELLED.
    t, by, _ = cli_resume(
        OP_KILLED, ns("2026-12-04T15:59:20Z"), ["rejected"] * 4, frm="failed", worker_code=422
    )
    add("s5_resume_502", put(base, by), OP_KILLED, ["2026-12-04T16:10:00Z"],
        "orphan-failed op; resume refused 502 x4 (worker answered 422); KTRDR now CANCELLED: "
        "worker_lost as before (+ refused note)")

    # 6. backtest resumed: cancelled 16:00:23 on :5004, resumed 16:02:00, completes 16:02:12.
    t, by, wsrv = cli_resume(
        OP_BT_CANCELLED, ns("2026-12-04T16:02:00Z"), ["ok"], frm="cancelled", wtype="backtesting",
        worker=BW, port=5004, counts=(2, 1, 1)
    )
    w0 = int(wsrv["startTimeUnixNano"])
    bt = [
        transition(t, wsrv, OP_BT_CANCELLED, "resuming", "running", w0 + 5 * MS),
        span(
            t, wsrv, "backtest.data_loading", INTERNAL, w0 + 2.9 * S, w0 + 3.03 * S,
            {"data.symbol": "EURUSD", "data.timeframe": "1h", "data.rows": "12505"},
            scope="ktrdr.backtesting.engine"
        ),
        span(
            t, wsrv, "backtest.feature_compute", INTERNAL, w0 + 3.03 * S, w0 + 3.8 * S,
            {"data.rows": "12505"}, scope="ktrdr.backtesting.engine"
        ),
        transition(t, wsrv, OP_BT_CANCELLED, "running", "completed", w0 + 12 * S),
    ]
    add(
        "s6_backtest_resume", put(base, merge(by, {BW: bt})), OP_BT_CANCELLED,
        ["2026-12-04T16:02:07Z", "2026-12-04T16:10:00Z"],
        "backtest cancelled 16:00:23 after 13 s, resumed 16:02:00, completed 16:02:12: healthy")

    # 7. 409: resume a completed training; resume a running one.
    t, by, _ = cli_resume(OP_DONE, ns("2026-12-04T15:50:00Z"), ["conflict"], frm="completed")
    add("s7a_resume_completed_409", put(base, by), OP_DONE, ["2026-12-04T16:10:00Z"],
        "completed training; a later resume answered 409: healthy")
    t2, by2, _ = cli_resume(OP_RUNNING, ns("2026-12-04T15:57:00Z"), ["conflict"], frm="running")
    add(
        "s7b_resume_running_409", put(base, by2), OP_RUNNING,
        ["2026-12-04T15:57:30Z", "2026-12-04T16:10:00Z"],
        "running training; a resume answered 409 (already running): running / healthy")
    out["_409_traces"] = (t, t2)
    return out
