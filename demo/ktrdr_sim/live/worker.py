"""A backtest or training worker: answers the dispatch at once, works in a background thread.

As in KTRDR (``ktrdr.md`` §1.3, §4): the worker registers itself with the backend and
re-registers when the backend stops health-checking it (a backend restart); its work spans are
children of the already-ended ``POST /backtests/start`` server span; it answers 503 when busy;
cancel requests arrive proxied by the backend.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from opentelemetry.context import Context

from ktrdr_sim import instrument as ins
from ktrdr_sim.flows import BacktestPlan, TrainingPlan, training_phases
from ktrdr_sim.live import ops
from ktrdr_sim.live.client import Client
from ktrdr_sim.live.config import WORKER_TYPES, LiveConfig
from ktrdr_sim.live.node import Node, make_node
from ktrdr_sim.live.ops import LiveOperation
from ktrdr_sim.live.web import App, Request, Response

SHORT = {"backtesting": "backtest", "training": "training"}
START_ROUTE = {"backtesting": "/backtests/start", "training": "/training/start"}


class Worker:
    """State and routes of one worker process."""

    def __init__(self, cfg: LiveConfig) -> None:
        self.worker_type = WORKER_TYPES[cfg.role]
        suffix = cfg.worker_id or os.urandom(4).hex()
        self.node: Node = make_node(
            cfg, f"ktrdr-{SHORT[self.worker_type]}-worker-{suffix}", "worker")
        # The registry id is another random value than the OTel suffix, as in KTRDR.
        self.registry_id = f"{self.worker_type}-worker-{os.urandom(4).hex()}"
        self.client = Client(self.node)
        self.app = App(self.node)
        self.ops: dict[str, LiveOperation] = {}
        self.current: str | None = None
        self.lock = threading.Lock()
        self.last_health = 0.0
        self._routes()

    # ----------------------------------------------------------------------------- routes

    def _routes(self) -> None:
        app = self.app
        app.route("POST", START_ROUTE[self.worker_type])(self.start)
        app.route("GET", "/api/v1/operations/{operation_id}")(self.get_operation)
        app.route("DELETE", "/api/v1/operations/{operation_id}/cancel")(self.cancel)
        app.route("GET", "/health")(self.health)
        app.add_metrics_routes()

    def start(self, req: Request) -> Response:
        body: dict[str, Any] = req.body or {}
        op_id = str(body.get("task_id") or f"worker_{SHORT[self.worker_type]}_"
                    f"{os.urandom(6).hex()}")
        try:
            plan = ops.plan_from_wire(self.worker_type, dict(body.get("plan") or {}))
        except (TypeError, ValueError) as exc:
            return Response(422, {"detail": str(exc)})
        with self.lock:
            if self.current is not None:
                return Response(503, {"detail": "Worker busy", "current_operation":
                                      self.current})
            op = LiveOperation(op_id, self.worker_type)
            self.ops[op_id] = op
            self.current = op_id
        ctx = req.ctx

        def work() -> None:
            try:
                if isinstance(plan, BacktestPlan):
                    self._backtest(ctx, op, plan)
                elif isinstance(plan, TrainingPlan):
                    self._training(ctx, op, plan)
            finally:
                with self.lock:
                    if self.current == op_id:
                        self.current = None

        # asyncio.create_task in KTRDR: the work starts after the response is sent.
        return Response(200, {"success": True, "operation_id": op_id},
                        after=lambda: threading.Thread(target=work, daemon=True).start())

    def get_operation(self, req: Request) -> Response:
        op = self.ops.get(req.params["operation_id"])
        if op is None:
            return Response(404, {"detail": "Operation not found"})
        return Response(200, {"success": True, "data": {
            "operation_id": op.operation_id, "operation_type": op.operation_type,
            "status": op.status}})

    def cancel(self, req: Request) -> Response:
        op = self.ops.get(req.params["operation_id"])
        if op is None:
            return Response(404, {"detail": "Operation not found"})
        if op.terminal:
            return Response(200, {"success": True, "status": op.status})
        reason = str((req.body or {}).get("reason") or "Cancelled by user")
        op.cancellation_reason = reason
        ops.transition(self.node, req.ctx, op, "cancelled",
                       **{"operation.cancellation_reason": reason})
        op.cancelled.set()
        return Response(200, {"success": True, "status": "cancelled"})

    def health(self, req: Request) -> Response:
        self.last_health = time.monotonic()
        with ins.span(self.node.world, self.node.proc, "operations.list", req.ctx,
                      attributes=ins.service_attributes("operations.list")) as (sp, _):
            ins.mark_ok(sp)
        busy = self.current is not None
        return Response(200, {"healthy": True, "service": f"{self.worker_type}-worker",
                              "status": "operational",
                              "worker_status": "busy" if busy else "idle",
                              "current_operation": self.current})

    # ------------------------------------------------------------------------------- work

    def _backtest(self, ctx: Context, op: LiveOperation, plan: BacktestPlan) -> None:
        node = self.node
        ops.create_operation(node, ctx, op, with_id_on_create=True, is_backend_local=False,
                             symbol=plan.symbol, timeframe=plan.timeframe)
        ops.transition(node, ctx, op, "running")
        outcome = ops.phase(node, ctx, op, "backtest.data_loading", scope=ins.BACKTEST_ENGINE,
                            attributes={"data.symbol": plan.symbol,
                                        "data.timeframe": plan.timeframe},
                            seconds=plan.data_loading_s, fault=plan.fault,
                            after={"data.rows": plan.rows})
        if outcome == "ok":
            outcome = ops.phase(node, ctx, op, "backtest.feature_compute",
                                scope=ins.BACKTEST_ENGINE, attributes={"data.rows": plan.rows},
                                seconds=plan.feature_compute_s, fault=plan.fault)
        if outcome == "ok" and not ops.quiet(node, op, plan.simulation_s):
            outcome = "cancelled"
        self._finish(ctx, op, outcome, plan.fault)

    def _training(self, ctx: Context, op: LiveOperation, plan: TrainingPlan) -> None:
        node = self.node
        ops.create_operation(node, ctx, op, with_id_on_create=True, is_backend_local=False,
                             symbol=plan.symbols, timeframe=plan.timeframes)
        ops.transition(node, ctx, op, "running")
        outcome = "ok"
        for name, attrs, seconds, after in training_phases(plan):
            outcome = ops.phase(node, ctx, op, name, scope=ins.TRAINING_PIPELINE,
                                attributes=attrs, seconds=seconds, fault=plan.fault,
                                after=after)
            if outcome != "ok":
                break
            if plan.stop_after == name:
                return  # hung: no further span ends, no terminal transition (stuck)
        if outcome == "ok" and not ops.quiet(node, op, plan.model_training_s):
            outcome = "cancelled"
        self._finish(ctx, op, outcome, plan.fault)

    def _finish(self, ctx: Context, op: LiveOperation, outcome: str, fault: object) -> None:
        if outcome == "failed" and fault is not None:
            ops.transition(self.node, ctx, op, "failed",
                           **{"operation.error": str(getattr(fault, "exc", fault))})
        elif outcome == "ok":
            ops.transition(self.node, ctx, op, "completed")
        # "cancelled": the cancel request made the transition.

    # ----------------------------------------------------------------------- registration

    def register(self) -> bool:
        """``POST /api/v1/workers/register`` (a root client span, as in KTRDR)."""
        resp = self.client.call(None, "POST", f"{self.node.cfg.backend_url}/api/v1/workers/"
                                "register", {
                                    "worker_id": self.registry_id,
                                    "worker_type": self.worker_type,
                                    "endpoint_url": self.node.cfg.public_url,
                                    "current_operation_id": self.current,
                                    "capabilities": {"gpu": False, "cores": 4}})
        ok = resp is not None and resp.status_code == 200
        if ok:
            self.last_health = time.monotonic()
        return ok

    def registration_loop(self) -> None:
        """Register, then re-register whenever health checks stop for 3 periods."""
        interval = self.node.cfg.health_interval_real_s
        registered = False
        while not self.node.stopping.is_set():
            silent = time.monotonic() - self.last_health > 3 * interval
            if not registered or silent:
                registered = self.register()
            self.node.stopping.wait(interval if registered else 1.0)


def run(cfg: LiveConfig) -> Worker:
    """Serve and start the registration loop; the caller waits and stops."""
    worker = Worker(cfg)
    worker.app.serve()
    threading.Thread(target=worker.registration_loop, name="register", daemon=True).start()
    return worker
