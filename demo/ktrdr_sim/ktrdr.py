"""The simulated KTRDR deployment: CLI, backend, workers, IB host service, worker registry.

Each flow follows ``shared/research/ktrdr.md`` §1.3: the CLI span wraps the start call and the
polling; the backend selects a worker and dispatches over HTTP; the worker answers at once and
runs the operation in a background task whose spans are children of the (ended) server span.
Faults are parameters of the flows, so scenarios stay one-liners.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from opentelemetry.context import Context
from opentelemetry.trace import Status, StatusCode

from ktrdr_sim import instrument as ins
from ktrdr_sim.clock import NS_PER_S
from ktrdr_sim.http import Handler, Target, request
from ktrdr_sim.runtime import Process, World

TERMINAL = frozenset({"completed", "failed", "cancelled"})
IB_HOST_URL = "http://host.docker.internal:5001"


@dataclass(slots=True)
class Fault:
    """An exception raised in one phase: where, what, and its recorded stack trace."""

    phase: str
    exc: BaseException
    stacktrace: str


@dataclass(slots=True)
class Operation:
    """What OperationsService knows: id, type, and status transitions over time."""

    operation_id: str
    operation_type: str
    transitions: list[tuple[int, str]] = field(default_factory=list)
    cancel_at_ns: int | None = None
    cancellation_reason: str = ""
    worker_id: str = ""

    def status_at(self, t_ns: int) -> str:
        status = "pending"
        for when, to_status in self.transitions:
            if when <= t_ns:
                status = to_status
        return status


@dataclass(slots=True)
class Worker:
    """A registry entry; ``process`` is None for entries whose process we never call."""

    worker_id: str
    worker_type: str
    status: str = "available"
    process: Process | None = None
    last_selected: float = 0.0


@dataclass(slots=True)
class Selection:
    total: int
    capable: int
    available: int
    worker: Worker | None


@dataclass(slots=True)
class RunResult:
    """What a flow leaves behind: the operation (if one was created) and the traces it made."""

    operation: Operation | None
    trace_ids: list[str]


class Ktrdr:
    """One KTRDR deployment on the injected world (clock + provider factory + randomness)."""

    def __init__(self, world: World, *, registry_dialect: str = "real") -> None:
        self.world = world
        self.registry_dialect = registry_dialect
        self.cli = world.spawn("ktrdr-cli", ip="172.18.0.1")
        self.api = world.spawn("ktrdr-api", host="backend", port=8000, ip="172.18.0.2")
        self.ib = world.spawn(
            "ktrdr-ib-host-service", host="host.docker.internal", port=5001, ip="192.168.65.254"
        )
        self.ib_up = True
        self.ib_gateway_up = True
        self.registry: list[Worker] = []
        self._worker_slots = {"backtesting": 0, "training": 0}

    # ----------------------------------------------------------------- workers and registry

    def start_worker(self, worker_type: str) -> Worker:
        """A worker process: random OTel suffix, a different random registry id, its own port."""
        n = self._worker_slots[worker_type] + 1
        self._worker_slots[worker_type] = n
        short = "backtest" if worker_type == "backtesting" else "training"
        port = (5003 if worker_type == "backtesting" else 5005) + n - 1
        proc = self.world.spawn(
            f"ktrdr-{short}-worker-{self.world.hex8()}",
            host=f"{short}-worker-{n}", port=port, ip=f"172.18.0.{10 + len(self.registry)}",
        )
        worker = Worker(f"{worker_type}-worker-{self.world.hex8()}", worker_type, process=proc)
        self.registry.append(worker)
        return worker

    def restart_workers(self) -> None:
        """Every worker restarts and re-registers: new processes, new random suffixes."""
        kinds = [w.worker_type for w in self.registry if w.process is not None] or [
            "backtesting", "backtesting", "training", "training"]
        self.registry.clear()
        self._worker_slots = {"backtesting": 0, "training": 0}
        for kind in kinds:
            self.start_worker(kind)

    def select_worker(self, parent: Context, worker_type: str) -> Worker | None:
        """``WorkerRegistry.select_worker``: LRU among available workers of the type."""
        with ins.span(self.world, self.api, "workers.list", parent,
                      attributes=ins.service_attributes("workers.list")) as (sp, _):
            self.world.clock.sleep(0.0003)
            ins.mark_ok(sp)
        self.world.observer.registry(self.api, self.registry)
        sel = self._count(worker_type)
        if self.registry_dialect == "documented":
            self._select_span_documented(parent, worker_type, sel)
        else:
            self._select_span_real(parent, worker_type, sel)
        if sel.worker is not None:
            sel.worker.last_selected = self.world.clock.now_ns() / NS_PER_S
        return sel.worker

    def _count(self, worker_type: str) -> Selection:
        capable = [w for w in self.registry if w.worker_type == worker_type]
        available = sorted(
            (w for w in capable if w.status == "available"), key=lambda w: w.last_selected
        )
        return Selection(len(self.registry), len(capable), len(available),
                         available[0] if available else None)

    def _select_span_real(self, parent: Context, worker_type: str, sel: Selection) -> None:
        attrs = ins.service_attributes(
            "workers.select",
            **{
                "worker.type": worker_type,
                "worker.total_workers": sel.total,
                "worker.capable_workers": sel.capable,
                "worker.available_workers": sel.available,
                "worker.selection_status": "success" if sel.worker else "no_workers_available",
            },
        )
        if sel.worker is not None:
            attrs["worker.selected_id"] = sel.worker.worker_id
        with ins.span(self.world, self.api, "workers.select", parent, attributes=attrs) as (sp, _):
            self.world.clock.sleep(0.0004)
            ins.mark_ok(sp)

    def _select_span_documented(self, parent: Context, worker_type: str, sel: Selection) -> None:
        """The dialect the skill documents: ``worker_registry.*``, ints, upper-case statuses."""
        if sel.worker is not None:
            status = "SUCCESS"
        elif sel.capable == 0:
            status = "NO_CAPABLE_WORKERS"
        else:
            status = "NO_WORKERS_AVAILABLE"
        attrs: dict[str, str | int] = {
            "worker_registry.worker_type": worker_type.upper(),
            "worker_registry.total_workers": sel.total,
            "worker_registry.capable_workers": sel.capable,
            "worker_registry.available_workers": sel.available,
            "worker_registry.selection_status": status,
        }
        if sel.worker is not None:
            attrs["worker_registry.selected_worker_id"] = sel.worker.worker_id
        with ins.span(self.world, self.api, "worker_registry.select_worker", parent,
                      scope="ktrdr.api.services.worker_registry",
                      attributes=attrs) as (sp, _):
            self.world.clock.sleep(0.0004)
            ins.mark_ok(sp)

    # ------------------------------------------------------------------ operations service

    def create_operation(self, proc: Process, parent: Context, op: Operation, *,
                         with_id_on_create: bool, is_backend_local: bool,
                         symbol: str, timeframe: str) -> None:
        """``operations.create`` with its ``operation.register`` child."""
        kwargs = {"operation_id": op.operation_id} if with_id_on_create else {}
        with ins.span(self.world, proc, "operations.create", parent,
                      attributes=ins.service_attributes("operations.create", **kwargs)) as (
                sp, ctx):
            self.world.clock.sleep(0.0015)
            with ins.span(self.world, proc, "operation.register", ctx,
                          scope=ins.OPERATIONS_SERVICE,
                          attributes={
                              "operation.id": op.operation_id,
                              "data.symbol": symbol,
                              "data.timeframe": timeframe,
                              "operation.type": op.operation_type,
                              "operation.status": "pending",
                              "operation.is_backend_local": is_backend_local,
                          }):
                self.world.clock.sleep(0.0021)
            ins.mark_ok(sp)
        self.world.observer.operation_created(proc, op.operation_id, op.operation_type)

    def transition(self, proc: Process, parent: Context, op: Operation, from_status: str,
                   to_status: str, **extra: str | int | bool) -> None:
        """``operation.state_transition``; the status change is visible from that instant."""
        attrs: dict[str, str | int | bool] = {
            "operation.id": op.operation_id,
            "operation.from_status": from_status,
            "operation.to_status": to_status,
        }
        attrs.update(extra)
        with ins.span(self.world, proc, "operation.state_transition", parent,
                      scope=ins.OPERATIONS_SERVICE, attributes=attrs):
            self.world.clock.sleep(0.0012)
        now = self.world.clock.now_ns()
        op.transitions.append((now, to_status))
        self.world.observer.transition(proc, op.operation_id, op.operation_type, to_status, now)

    def phase(self, proc: Process, parent: Context, name: str, *, scope: str,
              attributes: dict[str, str | int], seconds: float, op: Operation,
              fault: Fault | None, after: dict[str, str | int] | None = None) -> str:
        """A worker phase span; returns ``ok``, ``failed`` (exception recorded) or ``cancelled``."""
        clock = self.world.clock
        with ins.span(self.world, proc, name, parent, scope=scope, attributes=attributes) as (
                sp, _):
            if fault is not None and fault.phase == name:
                clock.sleep(seconds)
                ins.record_error(self.world, sp, fault.exc, fault.stacktrace,
                                 status_message=f"{type(fault.exc).__name__}: {fault.exc}")
                return "failed"
            end = clock.now_ns() + round(seconds * NS_PER_S)
            if op.cancel_at_ns is not None and op.cancel_at_ns < end:
                clock.sleep(max(0, op.cancel_at_ns - clock.now_ns()) / NS_PER_S)
                return "cancelled"
            clock.sleep(seconds)
            for key, value in (after or {}).items():
                sp.set_attribute(key, value)
        return "ok"

    def quiet(self, op: Operation, seconds: float) -> str:
        """Uninstrumented work (simulation, epochs): time passes, cancellation is honoured."""
        clock = self.world.clock
        end = clock.now_ns() + round(seconds * NS_PER_S)
        if op.cancel_at_ns is not None and op.cancel_at_ns < end:
            clock.sleep(max(0, op.cancel_at_ns - clock.now_ns()) / NS_PER_S)
            return "cancelled"
        clock.sleep(seconds)
        return "ok"

    def training_worker(self, parent: Context) -> Worker | None:
        """``_select_training_worker``: two ``workers.list`` calls, GPU first, no LRU."""
        self.world.observer.registry(self.api, self.registry)
        for _ in range(2):
            with ins.span(self.world, self.api, "workers.list", parent,
                          attributes=ins.service_attributes("workers.list")) as (sp, _):
                self.world.clock.sleep(0.0003)
                ins.mark_ok(sp)
        for worker in self.registry:
            if worker.worker_type == "training" and worker.status == "available":
                return worker
        return None

    def finish(self, proc: Process, parent: Context, op: Operation, outcome: str,
               fault: Fault | None) -> None:
        """The terminal transition for an outcome of :meth:`phase`."""
        if outcome == "failed" and fault is not None:
            self.transition(proc, parent, op, "running", "failed",
                            **{"operation.error": str(fault.exc)})
        elif outcome == "ok":
            self.transition(proc, parent, op, "running", "completed")
        # "cancelled": the transition belongs to the cancel request (see cancel handler).

    # ----------------------------------------------------------------------- the CLI side

    def cli_command(self, command: str, args: dict[str, object], start: Target,
                    handler: Handler, *, follow: bool, poll_s: float = 15.0,
                    propagate: bool = True, cancel: bool = False,
                    result: dict[str, object] | None = None) -> tuple[str, Operation | None]:
        """``@trace_cli_command``: the start call, then polling while following progress.

        The backend handler puts the operation it created into ``result["operation"]`` (the
        start response); returns the CLI trace id and that operation, if any.
        """
        world = self.world
        holder: dict[str, object] = result if result is not None else {}
        with ins.span(world, self.cli, f"cli.{command}", None, scope=ins.CLI_TELEMETRY,
                      attributes={"cli.command": command,
                                  "cli.args": json.dumps(args, sort_keys=True)}) as (
                root, ctx):
            world.clock.sleep(0.18)  # CLI start-up, config, client creation
            status = request(world, self.cli, ctx, "POST", start, handler=handler,
                             propagate=propagate)
            op = holder.get("operation")
            if status is None or status >= 400 or not isinstance(op, Operation):
                world.clock.sleep(0.01)
                root.set_status(Status(StatusCode.ERROR,
                                       f"Backend returned HTTP {status}" if status else
                                       "Could not reach the backend"))
                return format(root.get_span_context().trace_id, "032x"), None
            root.set_attribute("operation.id", op.operation_id)
            if follow:
                self._follow(ctx, op, poll_s, op if cancel else None)
            world.clock.sleep(0.02)
        return format(root.get_span_context().trace_id, "032x"), op

    def _follow(self, ctx: Context, op: Operation, poll_s: float,
                cancel: Operation | None) -> None:
        clock = self.world.clock
        cancelled_sent = False
        while True:
            now = clock.now_ns()
            due = cancel.cancel_at_ns if cancel is not None else None
            if due is not None and not cancelled_sent and due <= now + poll_s * NS_PER_S:
                clock.sleep(max(0, due - now) / NS_PER_S)  # Ctrl-C: the CLI cancels
                self._send_cancel(ctx, cancel)
                cancelled_sent = True
            else:
                clock.sleep(poll_s)
            path = f"/api/v1/operations/{op.operation_id}"
            request(self.world, self.cli, ctx, "GET",
                    Target(self.api, "http://backend:8000", "/api/v1/operations/{operation_id}",
                           path),
                    handler=lambda _ctx: self._sleep_status(200, 0.004))
            if op.status_at(clock.now_ns()) in TERMINAL:
                return

    def _sleep_status(self, status: int, seconds: float) -> int:
        self.world.clock.sleep(seconds)
        return status

    def _send_cancel(self, ctx: Context, op: Operation) -> None:
        """``DELETE /api/v1/operations/{id}`` proxied to the worker, which cancels."""
        worker = next(w for w in self.registry if w.process is not None
                      and w.worker_id == op.worker_id)
        wproc = worker.process
        assert wproc is not None

        def worker_cancel(wctx: Context) -> int:
            self.world.clock.sleep(0.002)
            self.transition(wproc, wctx, op, "running", "cancelled", **{
                "operation.cancellation_reason": op.cancellation_reason})
            return 200

        def backend_cancel(bctx: Context) -> int:
            request(self.world, self.api, bctx, "DELETE",
                    Target(wproc, wproc.base_url, "/api/v1/operations/{operation_id}/cancel",
                           f"/api/v1/operations/{op.operation_id}/cancel"), handler=worker_cancel)
            return 200

        request(self.world, self.cli, ctx, "DELETE",
                Target(self.api, "http://backend:8000", "/api/v1/operations/{operation_id}",
                       f"/api/v1/operations/{op.operation_id}"), handler=backend_cancel)
