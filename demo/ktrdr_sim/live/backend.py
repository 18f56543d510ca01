"""The KTRDR backend (``ktrdr-api``): worker registry, dispatch, proxying, data loads.

Behaviour from ``ktrdr.md`` §1–§4: ``workers.select`` with string counts and
``success``/``no_workers_available`` (always OK); 503 ``WORKER_UNAVAILABLE`` when nothing is
available; training picks a worker with two ``workers.list`` calls and no ``workers.select``;
data loads are backend-local and fetch from the IB host service segment by segment; operation
status and cancel requests are proxied to the worker; a health loop polls every worker.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.context import Context

from ktrdr_sim import instrument as ins
from ktrdr_sim.flows import DataLoadPlan
from ktrdr_sim.live import ops
from ktrdr_sim.live.client import Client
from ktrdr_sim.live.config import LiveConfig
from ktrdr_sim.live.node import Node, make_node
from ktrdr_sim.live.ops import LiveOperation
from ktrdr_sim.live.web import App, Request, Response

DISPATCH_ROUTE = {"backtesting": "/backtests/start", "training": "/training/start"}
MAX_DISPATCH_ATTEMPTS = 3  # KTRDR retries a worker's 503 on other workers


@dataclass(slots=True)
class WorkerEntry:
    worker_id: str
    worker_type: str
    endpoint_url: str
    status: str = "available"
    last_selected: float = 0.0
    failures: int = 0
    current_operation_id: str | None = None


@dataclass(slots=True)
class Tracked:
    """An operation the backend knows: proxied to a worker, or its own (``local``)."""

    operation_type: str
    worker: WorkerEntry | None = None
    local: LiveOperation | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Backend:
    def __init__(self, cfg: LiveConfig) -> None:
        self.node: Node = make_node(cfg, "ktrdr-api", "backend")
        self.client = Client(self.node)
        self.app = App(self.node, http_metrics=True)
        self.registry: dict[str, WorkerEntry] = {}
        self.ops: dict[str, Tracked] = {}
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
        with ins.span(self.node.world, self.node.proc, "workers.list", req.ctx,
                      attributes=ins.service_attributes("workers.list")) as (sp, _):
            ins.mark_ok(sp)
            rows = [{"worker_id": w.worker_id, "worker_type": w.worker_type,
                     "endpoint_url": w.endpoint_url, "status": w.status}
                    for w in self.registry.values()]
        return Response(200, rows)

    def _workers_list_span(self, ctx: Context) -> None:
        with ins.span(self.node.world, self.node.proc, "workers.list", ctx,
                      attributes=ins.service_attributes("workers.list")) as (sp, _):
            ins.mark_ok(sp)

    def _select(self, ctx: Context, worker_type: str, exclude: set[str]) -> WorkerEntry | None:
        """``WorkerRegistry.select_worker``: LRU among available workers of the type."""
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
            "worker.capable_workers": len(capable), "worker.available_workers": len(available),
            "worker.selection_status": "success" if chosen else "no_workers_available"})
        if chosen is not None:
            attrs["worker.selected_id"] = chosen.worker_id
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

    def _dispatch(self, ctx: Context, worker_type: str, plan: dict[str, Any]) -> Response:
        tried: set[str] = set()
        for _ in range(MAX_DISPATCH_ATTEMPTS):
            worker = (self._select(ctx, worker_type, tried) if worker_type == "backtesting"
                      else self._first_training(ctx, tried))
            if worker is None:
                return self._unavailable(worker_type, tried)
            op_id = self.node.world.operation_id(worker_type)
            resp = self.client.call(ctx, "POST", worker.endpoint_url +
                                    DISPATCH_ROUTE[worker_type], {"task_id": op_id,
                                                                  "plan": plan})
            if resp is not None and resp.status_code == 200:
                with self.lock:
                    worker.status = "busy"  # mark_busy
                    worker.current_operation_id = op_id
                    self.ops[op_id] = Tracked(worker_type, worker=worker)
                self._publish()
                return Response(200, {"success": True, "operation_id": op_id})
            if resp is None or resp.status_code != 503:
                return Response(502, {"detail": f"Worker {worker.worker_id} rejected the "
                                                "operation"})
            tried.add(worker.worker_id)
        return self._unavailable(worker_type, tried)

    def start_backtest(self, req: Request) -> Response:
        return self._dispatch(req.ctx, "backtesting", dict((req.body or {}).get("plan") or {}))

    def start_training(self, req: Request) -> Response:
        with ins.span(self.node.world, self.node.proc, "training.start", req.ctx,
                      attributes=ins.service_attributes("training.start")) as (sp, tctx):
            resp = self._dispatch(tctx, "training", dict((req.body or {}).get("plan") or {}))
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
                          start_date=plan.start_date, end_date=plan.end_date)) as (sp, dctx):
            op = LiveOperation(node.world.operation_id("data_load"), "data_load")
            with self.lock:
                self.ops[op.operation_id] = Tracked("data_load", local=op)
            # ServiceOrchestrator does not pass operation_id= to create_operation.
            ops.create_operation(node, dctx, op, with_id_on_create=False,
                                 is_backend_local=True, symbol=plan.symbol,
                                 timeframe=plan.timeframe)
            threading.Thread(target=self._data_load, args=(dctx, op, plan),
                             daemon=True).start()
            ins.mark_ok(sp)
        return Response(200, {"success": True, "operation_id": op.operation_id})

    def _data_load(self, dctx: Context, op: LiveOperation, plan: DataLoadPlan) -> None:
        """``asyncio.to_thread`` body: one IB host request per segment."""
        node = self.node
        ops.transition(node, dctx, op, "running")
        url = f"{node.cfg.ib_url}/data/historical"
        for segment in range(plan.segments):
            if op.cancelled.is_set():
                return
            body = {"plan": ops.plan_to_wire(plan), "segment": segment}
            resp = self.client.call(dctx, "POST", url, body)
            if resp is None:
                ops.transition(node, dctx, op, "failed", **{
                    "operation.error": "IB host service request failed: All connection "
                                       f"attempts failed ({url})"})
                return
            if resp.status_code >= 400:
                detail = str((resp.json() or {}).get("detail", "")) if resp.content else ""
                ops.transition(node, dctx, op, "failed", **{
                    "operation.error": f"IB host service returned HTTP {resp.status_code}: "
                                       f"{detail}"})
                return
        ops.transition(node, dctx, op, "completed")

    # ---------------------------------------------------------------- status and cancel

    def get_operation(self, req: Request) -> Response:
        op_id = req.params["operation_id"]
        tracked = self.ops.get(op_id)
        if tracked is None:
            return Response(404, {"detail": "Operation not found"})
        if tracked.local is not None:
            status = tracked.local.status
        else:
            assert tracked.worker is not None
            resp = self.client.call(req.ctx, "GET", f"{tracked.worker.endpoint_url}"
                                    f"/api/v1/operations/{op_id}?force_refresh=false")
            if resp is None or resp.status_code != 200:
                return Response(502, {"detail": "Worker did not answer"})
            status = str(resp.json()["data"]["status"])
            if status in ops.TERMINAL:
                self._release(tracked.worker, op_id)
        return Response(200, {"success": True, "data": {
            "operation_id": op_id, "operation_type": tracked.operation_type,
            "status": status}})

    def cancel_operation(self, req: Request) -> Response:
        op_id = req.params["operation_id"]
        tracked = self.ops.get(op_id)
        if tracked is None:
            return Response(404, {"detail": "Operation not found"})
        reason = str((req.body or {}).get("reason") or "Cancelled by user")
        if tracked.local is not None:
            ops.transition(self.node, req.ctx, tracked.local, "cancelled",
                           **{"operation.cancellation_reason": reason})
            tracked.local.cancelled.set()
            return Response(200, {"success": True})
        assert tracked.worker is not None
        resp = self.client.call(req.ctx, "DELETE", f"{tracked.worker.endpoint_url}"
                                f"/api/v1/operations/{op_id}/cancel", {"reason": reason})
        if resp is None or resp.status_code != 200:
            return Response(502, {"detail": "Worker did not cancel"})
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
                resp = self.client.call(None, "GET", f"{w.endpoint_url}/health")
                with self.lock:
                    if resp is None or resp.status_code != 200:
                        w.failures += 1
                        if w.failures >= 3:
                            w.status = "temporarily_unavailable"
                        continue
                    w.failures = 0
                    payload = resp.json()
                    busy = payload.get("worker_status") == "busy"
                    w.status = "busy" if busy else "available"
                    w.current_operation_id = payload.get("current_operation") if busy else None
            self._publish()

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
                        "status": w.status} for w in self.registry.values()]
        return Response(200, {"workers": workers})


def run(cfg: LiveConfig) -> Backend:
    backend = Backend(cfg)
    backend.app.serve()
    threading.Thread(target=backend.health_loop, name="health", daemon=True).start()
    return backend
