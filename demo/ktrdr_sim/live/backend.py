"""The KTRDR backend (``ktrdr-api``): worker registry, dispatch, proxying, data loads.

As recorded from the real KTRDR: ``workers.select`` with string counts and
``success``/``no_workers_available`` (always OK); 400 for an unknown strategy (a backtest's
leaves nothing in ERROR on the backend, a training's ``training.start`` records a
ValidationError); 503 when nothing is available; 500 when the chosen worker refuses the
connection; training picks a worker with two ``workers.list`` calls and answers ``task_id``;
data loads are backend-local and validate the symbol with the IB host service (30 s read
timeout, 4 attempts) before fetching segment by segment; status and cancel requests are proxied
to the worker. Two loops write their own traces: the health loop (root ``GET {worker}/health``
every 10 s; 3 failures: temporarily unavailable; 300 s without a healthy check: removed) and the
orphan detector (every 15 s; a RUNNING operation no registered worker claims for 60 s is failed
in a one-span trace).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import Span

from ktrdr_sim import instrument as ins
from ktrdr_sim.errors import WorkerUnavailableError
from ktrdr_sim.flows import (
    STRATEGIES,
    TRAINING_SERVICE_FRAMES,
    VALIDATE_ATTEMPTS,
    VALIDATE_TIMEOUT_S,
    DataLoadPlan,
    progress_attributes,
    strategy_not_found,
    strategy_trace,
)
from ktrdr_sim.ktrdr import ORPHAN_ERROR
from ktrdr_sim.live import ops
from ktrdr_sim.live.client import Client
from ktrdr_sim.live.config import LiveConfig
from ktrdr_sim.live.node import Node, make_node
from ktrdr_sim.live.ops import LiveOperation
from ktrdr_sim.live.web import App, Request, Response

DISPATCH_ROUTE = {"backtesting": "/backtests/start", "training": "/training/start"}
MAX_DISPATCH_ATTEMPTS = 3  # KTRDR retries a worker's 503 on other workers
ANSWER_KEY = {"backtesting": "operation_id", "training": "task_id"}


@dataclass(slots=True)
class WorkerEntry:
    worker_id: str
    worker_type: str
    endpoint_url: str
    status: str = "available"
    last_selected: float = 0.0
    failures: int = 0
    last_healthy: float = field(default_factory=time.monotonic)
    current_operation_id: str | None = None


@dataclass(slots=True)
class Tracked:
    """An operation the backend knows: proxied to a worker, or its own (``local``). ``status``
    is the backend's record (the database)."""

    operation: LiveOperation
    worker: WorkerEntry | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        return self.worker is None


class Backend:
    def __init__(self, cfg: LiveConfig) -> None:
        self.node: Node = make_node(cfg, "ktrdr-api", "backend", body_sends=2)
        self.client = Client(self.node)
        self.app = App(self.node, http_metrics=True)
        self.registry: dict[str, WorkerEntry] = {}
        self.ops: dict[str, Tracked] = {}
        self.potential_orphans: dict[str, float] = {}
        self.lock = threading.RLock()
        self._routes()
        self._publish()

    def _routes(self) -> None:
        a = self.app
        a.route("POST", "/api/v1/workers/register")(self.register)
        a.route("GET", "/api/v1/workers")(self.list_workers)
        a.route("GET", "/api/v1/health")(lambda _r: Response(200, {"status": "ok"}))
        a.route("POST", "/api/v1/backtests/start")(self.start_backtest)
        a.route("POST", "/api/v1/trainings/start")(self.start_training)
        a.route("POST", "/api/v1/data/acquire/download")(self.start_data_load)
        a.route("GET", "/api/v1/operations/{operation_id}")(self.get_operation)
        a.route("DELETE", "/api/v1/operations/{operation_id}")(self.cancel_operation)
        a.add_metrics_routes()
        # The simulator's controls (no spans): a restart forgets every registration.
        a.route("POST", "/_sim/restart", traced=False)(self.sim_restart)
        a.route("POST", "/_sim/forget", traced=False)(self.sim_forget)
        a.route("GET", "/_sim/state", traced=False)(self.sim_state)

    # --------------------------------------------------------------------------- registry

    def _publish(self) -> None:
        """``update_worker_metrics``: the gauges for backtesting and training only."""
        with self.lock:
            counts: dict[str, tuple[int, int]] = {}
            for kind in ("backtesting", "training"):
                of_type = [w for w in self.registry.values() if w.worker_type == kind]
                counts[kind] = (len(of_type),
                                sum(1 for w in of_type if w.status == "available"))
        self.node.metrics.apply(("registry", counts))

    def register(self, req: Request) -> Response:
        body = req.body or {}
        try:
            entry = WorkerEntry(str(body["worker_id"]), str(body["worker_type"]),
                                str(body["endpoint_url"]))
        except KeyError as exc:
            return Response(422, {"detail": f"missing {exc.args[0]}"})
        with self.lock:
            for wid, old in list(self.registry.items()):  # stale entries of the same URL go
                if old.endpoint_url == entry.endpoint_url and wid != entry.worker_id:
                    del self.registry[wid]
            old = self.registry.get(entry.worker_id)
            if old is not None:
                entry.last_selected = old.last_selected
            if body.get("current_operation_id"):
                entry.status = "busy"
                entry.current_operation_id = str(body["current_operation_id"])
            self.registry[entry.worker_id] = entry
        self._publish()
        return Response(200, {"success": True, "worker_id": entry.worker_id})

    def list_workers(self, req: Request) -> Response:
        self._workers_list_span(req.ctx)
        with self.lock:
            rows = [{"worker_id": w.worker_id, "worker_type": w.worker_type,
                     "endpoint_url": w.endpoint_url, "status": w.status}
                    for w in self.registry.values()]
        return Response(200, rows)

    def _workers_list_span(self, ctx: Context | None) -> None:
        with ins.span(self.node.world, self.node.proc, "workers.list", ctx,
                      attributes=ins.service_attributes("workers.list")) as (sp, _):
            ins.mark_ok(sp)

    def _select(self, ctx: Context, worker_type: str, exclude: set[str]) -> WorkerEntry | None:
        """``WorkerRegistry.select_worker``: LRU among available workers of the type."""
        self._workers_list_span(ctx)
        with self.lock:
            workers = list(self.registry.values())
            capable = [w for w in workers if w.worker_type == worker_type]
            available = sorted((w for w in capable if w.status == "available"
                                and w.worker_id not in exclude), key=lambda w: w.last_selected)
            chosen = available[0] if available else None
            if chosen is not None:
                chosen.last_selected = self.node.clock.now_ns() / 1e9
        attrs = ins.service_attributes("workers.select", **{
            "worker.type": worker_type, "worker.total_workers": len(workers),
            "worker.capable_workers": len(capable), "worker.available_workers": len(available)})
        if chosen is not None:
            attrs["worker.selected_id"] = chosen.worker_id
        attrs["worker.selection_status"] = "success" if chosen else "no_workers_available"
        with ins.span(self.node.world, self.node.proc, "workers.select", ctx,
                      attributes=attrs) as (sp, _):
            ins.mark_ok(sp)
        return chosen

    def _first_training(self, ctx: Context, exclude: set[str]) -> WorkerEntry | None:
        """``_select_training_worker``: two ``workers.list`` calls, first available, no LRU."""
        self._workers_list_span(ctx)
        self._workers_list_span(ctx)
        with self.lock:
            for w in self.registry.values():
                if (w.worker_type == "training" and w.status == "available"
                        and w.worker_id not in exclude):
                    return w
        return None

    def _unavailable(self, worker_type: str, tried: set[str]) -> Response:
        with self.lock:
            registered = sum(1 for w in self.registry.values() if w.worker_type == worker_type)
        hint = f"All workers busy. Tried: {sorted(tried)}" if tried else \
            "Start a worker or wait for one to register"
        return Response(503, {"detail": {
            "error": f"No {worker_type} workers available", "error_code": "WORKER_UNAVAILABLE",
            "worker_type": worker_type, "registered_workers": registered, "hint": hint}})

    # --------------------------------------------------------------------------- dispatch

    def _dispatch(self, ctx: Context, worker_type: str, plan: dict[str, Any],
                  on_none: Span | None = None) -> Response:
        tried: set[str] = set()
        for _ in range(MAX_DISPATCH_ATTEMPTS):
            worker = (self._select(ctx, worker_type, tried) if worker_type == "backtesting"
                      else self._first_training(ctx, tried))
            if worker is None:
                if on_none is not None:  # training.start records the error
                    exc = WorkerUnavailableError(f"No {worker_type} workers available")
                    ins.record_error(self.node.world, on_none, exc, ins.traceback_text(
                        TRAINING_SERVICE_FRAMES,
                        "ktrdr.errors.exceptions.WorkerUnavailableError", str(exc)), events=2)
                return self._unavailable(worker_type, tried)
            op = LiveOperation(self.node.world.operation_id(worker_type), worker_type)
            resp = self.client.call(ctx, "POST", worker.endpoint_url +
                                    DISPATCH_ROUTE[worker_type],
                                    {"task_id": op.operation_id, "plan": plan})
            if resp is None:
                return Response(500, {"detail": f"Failed to start {worker_type}: All "
                                                "connection attempts failed"})
            if resp.status_code == 200:
                op.status = "running"
                with self.lock:
                    worker.status = "busy"  # mark_busy
                    worker.current_operation_id = op.operation_id
                    self.ops[op.operation_id] = Tracked(op, worker=worker)
                self._publish()
                return Response(200, {"success": True,
                                      ANSWER_KEY[worker_type]: op.operation_id})
            if resp.status_code != 503:
                return Response(502, {"detail": f"Worker {worker.worker_id} rejected the "
                                                "operation"})
            tried.add(worker.worker_id)
        return self._unavailable(worker_type, tried)

    def start_backtest(self, req: Request) -> Response:
        plan = dict((req.body or {}).get("plan") or {})
        if str(plan.get("strategy", "")) not in STRATEGIES:
            return Response(400, {"detail": "Symbol and timeframe must be provided or defined "
                                            "in strategy config"})
        return self._dispatch(req.ctx, "backtesting", plan)

    def start_training(self, req: Request) -> Response:
        plan = dict((req.body or {}).get("plan") or {})
        attrs = ins.service_attributes("training.start", start_date=plan.get("start_date"),
                                       end_date=plan.get("end_date"))
        with ins.span(self.node.world, self.node.proc, "training.start", req.ctx,
                      attributes=attrs) as (sp, tctx):
            strategy = str(plan.get("strategy", ""))
            if strategy not in STRATEGIES:
                exc = strategy_not_found(strategy)
                ins.record_error(self.node.world, sp, exc, strategy_trace(exc), events=2)
                return Response(400, {"detail": str(exc)})
            resp = self._dispatch(tctx, "training", plan, on_none=sp)
            if resp.status == 200:
                ins.mark_ok(sp)
        return resp

    # -------------------------------------------------------------------------- data load

    def start_data_load(self, req: Request) -> Response:
        node = self.node
        try:
            plan = ops.plan_from_wire("data_load", dict((req.body or {}).get("plan") or {}))
        except (TypeError, ValueError) as exc:
            return Response(422, {"detail": str(exc)})
        assert isinstance(plan, DataLoadPlan)
        with ins.span(node.world, node.proc, "data.download", req.ctx,
                      attributes=ins.service_attributes(
                          "data.download", symbol=plan.symbol, timeframe=plan.timeframe,
                          start_date=None, end_date=None)) as (sp, dctx):
            op = LiveOperation(node.world.operation_id("data_load"), "data_load")
            with self.lock:
                self.ops[op.operation_id] = Tracked(op)
            # ServiceOrchestrator does not pass operation_id= to create_operation.
            ops.create_operation(node, dctx, op, with_id_on_create=False, symbol=plan.symbol,
                                 timeframe=plan.timeframe)
            for key, value in progress_attributes(plan, op.operation_id,
                                                  node.clock.now_ns()).items():
                sp.set_attribute(key, value)
            ops.transition(node, dctx, op, "running")
            threading.Thread(target=self._data_load, args=(dctx, op, plan),
                             daemon=True).start()
            ins.mark_ok(sp)
        return Response(200, {"success": True, "operation_id": op.operation_id})

    def _data_load(self, dctx: Context, op: LiveOperation, plan: DataLoadPlan) -> None:
        """``asyncio.to_thread`` body: validate the symbol (a read timeout is retried after
        1, 2, 4 s), then one IB host request per segment."""
        node = self.node
        base = node.cfg.ib_url
        for attempt in range(VALIDATE_ATTEMPTS):
            try:
                resp = self.client.call(dctx, "POST", f"{base}/data/validate",
                                        {"symbol": plan.symbol},
                                        read_timeout_s=VALIDATE_TIMEOUT_S, raise_errors=True)
            except ConnectionError:
                ops.transition(node, dctx, op, "failed", **{
                    "operation.error": "Host service connection failed: HTTP error for POST "
                                       "/data/validate: All connection attempts failed"})
                return
            except TimeoutError:
                if attempt == VALIDATE_ATTEMPTS - 1:
                    ops.transition(node, dctx, op, "failed", **{
                        "operation.error": "Host service timeout: Request timed out after "
                                           f"{VALIDATE_ATTEMPTS} attempts: "})
                    return
                node.sleep(2.0 ** attempt)
                continue
            if resp is not None and resp.status_code == 200:
                break
        for segment in range(plan.segments):
            if op.cancelled.is_set():
                return
            body = {"plan": ops.plan_to_wire(plan), "segment": segment}
            resp = self.client.call(dctx, "POST", f"{base}/data/historical", body)
            if resp is None or resp.status_code >= 400:
                status = "no answer" if resp is None else f"HTTP {resp.status_code}"
                ops.transition(node, dctx, op, "failed", **{
                    "operation.error": f"Host service error on segment {segment + 1}: "
                                       f"{status}"})
                return
        ops.transition(node, dctx, op, "completed")

    # ---------------------------------------------------------------- status and cancel

    def get_operation(self, req: Request) -> Response:
        op_id = req.params["operation_id"]
        tracked = self.ops.get(op_id)
        if tracked is None:
            return Response(404, {"detail": "Operation not found"})
        op = tracked.operation
        if tracked.worker is not None and not op.terminal:
            url = f"{tracked.worker.endpoint_url}/api/v1/operations/{op_id}"
            resp = self.client.call(req.ctx, "GET", url)
            if resp is not None and resp.status_code == 200:
                self._record(tracked, str(resp.json()["data"]["status"]))
                self.client.call(req.ctx, "GET", f"{url}/metrics?cursor=0")
        return Response(200, {"success": True, "data": {
            "operation_id": op_id, "operation_type": op.operation_type, "status": op.status}})

    def _record(self, tracked: Tracked, status: str) -> None:
        """What a worker reports about its operation (the database follows it)."""
        op = tracked.operation
        if status in ops.TERMINAL and not op.terminal:
            op.status = status
            if tracked.worker is not None:
                self._release(tracked.worker, op.operation_id)

    def cancel_operation(self, req: Request) -> Response:
        op_id = req.params["operation_id"]
        tracked = self.ops.get(op_id)
        if tracked is None:
            return Response(404, {"detail": "Operation not found"})
        op = tracked.operation
        if tracked.local:
            op.cancelled.set()
        else:
            assert tracked.worker is not None
            resp = self.client.call(req.ctx, "DELETE", f"{tracked.worker.endpoint_url}"
                                    f"/api/v1/operations/{op_id}/cancel")
            if resp is None or resp.status_code != 200:
                return Response(502, {"detail": "Worker did not cancel"})
        ops.transition(self.node, req.ctx, op, "cancelled", from_status="running")
        return Response(200, {"success": True})

    def _release(self, worker: WorkerEntry, op_id: str) -> None:
        with self.lock:
            if worker.current_operation_id == op_id:
                worker.current_operation_id = None
                worker.status = "available"
        self._publish()

    # ------------------------------------------------------------------------ health loop

    def health_loop(self) -> None:
        """Every interval, ``GET {worker}/health`` as a root span per worker."""
        node = self.node
        while not node.stopping.wait(node.cfg.health_interval_real_s):
            with self.lock:
                workers = list(self.registry.values())
            for w in workers:
                self._check(w)
            self._publish()

    def _check(self, w: WorkerEntry) -> None:
        resp = self.client.call(None, "GET", f"{w.endpoint_url}/health")
        cfg = self.node.cfg
        with self.lock:
            if resp is None or resp.status_code != 200:
                w.failures += 1
                if w.failures >= 3:
                    w.status = "temporarily_unavailable"
                if time.monotonic() - w.last_healthy >= cfg.real_s(cfg.removal_s):
                    self.registry.pop(w.worker_id, None)
                return
            w.failures = 0
            w.last_healthy = time.monotonic()
            payload = resp.json()
            busy = payload.get("worker_status") == "busy"
            w.status = "busy" if busy else "available"
            w.current_operation_id = payload.get("current_operation") if busy else None
            finished = list(payload.get("completed_operations") or [])
        for item in finished:  # reconcile what the worker finished
            tracked = self.ops.get(str(item.get("operation_id")))
            if tracked is not None:
                self._record(tracked, str(item.get("status")))

    # --------------------------------------------------------------------- orphan detector

    def orphan_loop(self) -> None:
        """Every interval: root ``operations.list`` and ``workers.list`` spans, then a
        RUNNING operation no registered worker claims is failed after the timeout."""
        node = self.node
        while not node.stopping.wait(node.cfg.orphan_interval_real_s):
            for method in ("operations.list", "workers.list"):
                with ins.span(node.world, node.proc, method, None,
                              attributes=ins.service_attributes(method)) as (sp, _):
                    ins.mark_ok(sp)
            self._orphans(time.monotonic())

    def _orphans(self, now: float) -> None:
        cfg = self.node.cfg
        with self.lock:
            claimed = {w.current_operation_id for w in self.registry.values()
                       if w.current_operation_id}
            running = [t.operation for t in self.ops.values() if t.operation.status == "running"]
        for op in running:
            if op.operation_id in claimed:
                self.potential_orphans.pop(op.operation_id, None)
                continue
            first = self.potential_orphans.setdefault(op.operation_id, now)
            if now - first >= cfg.real_s(cfg.orphan_timeout_s):
                ops.transition(self.node, None, op, "failed",
                               **{"operation.error": ORPHAN_ERROR})
                self.potential_orphans.pop(op.operation_id, None)

    # ------------------------------------------------------------------ simulator controls

    def sim_restart(self, _req: Request) -> Response:
        """A backend restart: the in-memory registry is empty until workers re-register."""
        with self.lock:
            self.registry.clear()
        self._publish()
        return Response(200, {"success": True})

    def sim_forget(self, req: Request) -> Response:
        """Registrations of one type expire (e.g. every backtest worker went away)."""
        kind = str((req.body or {}).get("worker_type", ""))
        with self.lock:
            for wid in [w.worker_id for w in self.registry.values() if w.worker_type == kind]:
                del self.registry[wid]
        self._publish()
        return Response(200, {"success": True})

    def sim_state(self, _req: Request) -> Response:
        with self.lock:
            workers = [{"worker_id": w.worker_id, "worker_type": w.worker_type,
                        "status": w.status, "endpoint_url": w.endpoint_url,
                        "current_operation_id": w.current_operation_id}
                       for w in self.registry.values()]
            operations = {op_id: t.operation.status for op_id, t in self.ops.items()}
        return Response(200, {"workers": workers, "operations": operations})


def run(cfg: LiveConfig) -> Backend:
    backend = Backend(cfg)
    backend.app.serve()
    threading.Thread(target=backend.health_loop, name="health", daemon=True).start()
    threading.Thread(target=backend.orphan_loop, name="orphans", daemon=True).start()
    return backend
