"""A backtest or training worker: answers the dispatch at once, works in a background thread.

As in the recorded KTRDR: the worker registers itself with the backend and re-registers when the
backend stops health-checking it (a backend restart); its work spans are children of the
already-ended ``POST /backtests/start`` server span; the training's only phase span is
``training.data_loading`` and its loop writes none; it answers 503 when busy; cancel requests
arrive proxied by the backend. ``/health`` reports the running operation and the ones that
finished, which the backend reconciles.

``POST /_sim/die`` (untraced) SIGKILLs the worker process: nothing is flushed, connections are
refused from then on. The worker role runs that process under a keeper that starts a new one
(a new service-name suffix, a new registration) only after KTRDR's removal and orphan timeouts,
so the backend sees the dead worker the way it would see a crashed one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from opentelemetry.context import Context

from ktrdr_sim import instrument as ins
from ktrdr_sim.flows import BacktestPlan, TrainingPlan
from ktrdr_sim.live import ops
from ktrdr_sim.live.client import Client
from ktrdr_sim.live.config import WORKER_TYPES, LiveConfig
from ktrdr_sim.live.node import Node, make_node
from ktrdr_sim.live.ops import LiveOperation
from ktrdr_sim.live.web import App, Request, Response

SHORT = {"backtesting": "backtest", "training": "training"}
START_ROUTE = {"backtesting": "/backtests/start", "training": "/training/start"}
FINISHED_KEPT = 20  # finished operations the health answer reports
CHILD_ENV = "KTRDR_SIM_WORKER_CHILD"


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
        self.finished: list[LiveOperation] = []
        self.current: str | None = None
        self.lock = threading.Lock()
        self.last_health = 0.0
        self._routes()

    # ----------------------------------------------------------------------------- routes

    def _routes(self) -> None:
        app = self.app
        app.route("POST", START_ROUTE[self.worker_type])(self.start)
        app.route("GET", "/api/v1/operations/{operation_id}")(self.get_operation)
        app.route("GET", "/api/v1/operations/{operation_id}/metrics")(self.get_metrics)
        app.route("DELETE", "/api/v1/operations/{operation_id}/cancel")(self.cancel)
        app.route("GET", "/health")(self.health)
        app.add_metrics_routes()
        app.route("POST", "/_sim/die", traced=False)(self.die)

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
                    self.finished = [*self.finished, op][-FINISHED_KEPT:]

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

    def get_metrics(self, req: Request) -> Response:
        if req.params["operation_id"] not in self.ops:
            return Response(404, {"detail": "Operation not found"})
        return Response(200, {"success": True, "data": {"metrics": [], "cursor": 0}})

    def cancel(self, req: Request) -> Response:
        op = self.ops.get(req.params["operation_id"])
        if op is None:
            return Response(404, {"detail": "Operation not found"})
        if op.terminal:
            return Response(200, {"success": True, "status": op.status})
        ops.transition(self.node, req.ctx, op, "cancelled")
        op.cancelled.set()
        return Response(200, {"success": True, "status": "cancelled"})

    def health(self, req: Request) -> Response:
        self.last_health = time.monotonic()
        with ins.span(self.node.world, self.node.proc, "operations.list", req.ctx,
                      attributes=ins.service_attributes("operations.list")) as (sp, _):
            ins.mark_ok(sp)
        with self.lock:
            busy = self.current is not None
            finished = [{"operation_id": op.operation_id, "status": op.status}
                        for op in self.finished]
        return Response(200, {"healthy": True, "service": f"{self.worker_type}-worker",
                              "status": "operational",
                              "worker_status": "busy" if busy else "idle",
                              "current_operation": self.current,
                              "completed_operations": finished})

    def die(self, _req: Request) -> Response:
        """SIGKILL, right after answering: no span is flushed, nothing is unregistered."""
        return Response(200, {"success": True},
                        after=lambda: os.kill(os.getpid(), signal.SIGKILL))

    # ------------------------------------------------------------------------------- work

    def _backtest(self, ctx: Context, op: LiveOperation, plan: BacktestPlan) -> None:
        node = self.node
        ops.create_operation(node, ctx, op, with_id_on_create=True, symbol=plan.symbol,
                             timeframe=plan.timeframe)
        ops.transition(node, ctx, op, "running")
        outcome = "ok" if ops.quiet(node, op, plan.setup_s) else "cancelled"
        if outcome == "ok":
            outcome = ops.phase(node, ctx, op, "backtest.data_loading",
                                scope=ins.BACKTEST_ENGINE,
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
        ops.create_operation(node, ctx, op, with_id_on_create=True, symbol=plan.symbols,
                             timeframe=plan.timeframes)
        ops.transition(node, ctx, op, "running")
        outcome = ops.phase(node, ctx, op, "training.data_loading",
                            scope=ins.TRAINING_PIPELINE,
                            attributes={"data.symbol": plan.symbols,
                                        "data.timeframes": plan.timeframes,
                                        "progress.phase": "data_loading"},
                            seconds=plan.data_loading_s, fault=plan.fault,
                            after={"data.rows": plan.rows, "data.columns": plan.columns})
        # The training loop writes no span; a hung one holds the worker (and keeps reporting
        # the operation as its own) for a long while before it goes on.
        loop_s = plan.loop_s * (40 if plan.hang else 1)
        if outcome == "ok" and not ops.quiet(node, op, loop_s):
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
    with ins.span(worker.node.world, worker.node.proc, "operations.list", None,
                  attributes=ins.service_attributes("operations.list")) as (sp, _):
        ins.mark_ok(sp)  # start-up: the worker lists what it was running
    worker.app.serve()
    threading.Thread(target=worker.registration_loop, name="register", daemon=True).start()
    return worker


def keep(cfg: LiveConfig, log: Any = print) -> int:
    """The worker role: run the worker process; when it was killed, start a new one after
    ``restart_after_s`` KTRDR seconds. SIGTERM/SIGINT stop both."""
    stopping = threading.Event()
    child: list[subprocess.Popen[bytes]] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()
        if child and child[0].poll() is None:
            child[0].send_signal(signum)

    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, on_signal)
    env = {**os.environ, CHILD_ENV: "1", "KTRDR_SIM_PORT": str(cfg.port)}
    while True:
        child[:] = [subprocess.Popen([sys.executable, "-m", "ktrdr_sim.live", "--role",
                                      cfg.role], env=env)]
        code = child[0].wait()
        if stopping.is_set() or code != -signal.SIGKILL:
            return 0 if stopping.is_set() else code
        log(f"ktrdr_sim.live {cfg.role}: the worker on :{cfg.port} was killed; a new one "
            f"starts in {cfg.real_s(cfg.restart_after_s):.1f} s")
        if stopping.wait(cfg.real_s(cfg.restart_after_s)):
            return 0
