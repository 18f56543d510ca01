"""The simulated KTRDR deployment: CLI, backend, workers, IB host service, worker registry.

As the real KTRDR was recorded (``run1/real-spans.txt``): local processes, the backend on
``127.0.0.1:8000``, workers on 5003/5004 (backtest) and 5005/5006 (training), the IB host
service on ``localhost:5001`` in front of the IB Gateway on ``127.0.0.1:4002``.

Besides the request flows (``flows.py``), the backend runs two loops that write their own
traces, and the IB host service one:
- the worker health loop: every 10 s a root ``GET http://<worker>/health`` per registered
  worker; 3 failures make it ``temporarily_unavailable``, 300 s without a healthy check remove
  it;
- the orphan detector: every 15 s root ``operations.list`` and ``workers.list`` spans; a RUNNING
  operation that no registered worker claims for 60 s is failed in a one-span trace
  ``operation.state_transition`` running→failed, "Operation was RUNNING but no worker claimed
  it";
- the IB connection loop: while the Gateway is down, one-span ``ib.connect`` traces (scope
  ``ib.connection``) every 10-20 s, each refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span

from ktrdr_sim import instrument as ins
from ktrdr_sim.clock import NS_PER_S, Background, Clock
from ktrdr_sim.errors import Exit
from ktrdr_sim.http import Handler, Target, request, serve
from ktrdr_sim.runtime import Process, World

TERMINAL = frozenset({"completed", "failed", "cancelled"})
BACKEND_URL = "http://127.0.0.1:8000"
IB_HOST_URL = "http://localhost:5001"
GATEWAY = ("127.0.0.1", 4002)
WORKER_PORTS = {"backtesting": (5003, 5004), "training": (5005, 5006)}
SHORT = {"backtesting": "backtest", "training": "training"}

# KTRDR's defaults (seconds).
HEALTH_INTERVAL_S = 10.0
HEALTH_FAILURES = 3
REMOVAL_S = 300.0
ORPHAN_INTERVAL_S = 15.0
ORPHAN_TIMEOUT_S = 60.0
ORPHAN_ERROR = "Operation was RUNNING but no worker claimed it"
CURL_UA = "curl/7.88.1"

EXIT_STACK = ins.traceback_text(
    [("/app/ktrdr/cli/telemetry.py", 90, "sync_wrapper", "result = func(*args, **kwargs)"),
     ("/app/ktrdr/cli/commands/train.py", 186, "train", "raise typer.Exit(1) from None")],
    "click.exceptions.Exit", "1")


@dataclass(slots=True)
class Fault:
    """An exception raised in one phase: where, what, and its recorded stack trace."""

    phase: str
    exc: BaseException
    stacktrace: str


@dataclass(slots=True)
class Operation:
    """What OperationsService knows: id, type, status, and who runs it."""

    operation_id: str
    operation_type: str
    status: str = "pending"
    worker: Worker | None = None
    job: Background | None = None  # the worker's (or backend's) task running it
    hangs: bool = False  # its task never ends (a hung training loop)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(slots=True)
class Worker:
    """One worker process and its registry entry (``status`` etc. are the backend's view)."""

    worker_id: str
    worker_type: str
    process: Process
    status: str = "available"
    current_operation_id: str | None = None
    failures: int = 0
    last_healthy_ns: int = 0
    last_selected: float = 0.0
    running: Operation | None = None  # what the worker itself is doing

    @property
    def base_url(self) -> str:
        return self.process.base_url


@dataclass(slots=True)
class RunResult:
    """What a flow leaves behind: the operation (if one was created), the traces it made (the
    first is the scenario's key when there is no operation), and facts for the expectations."""

    operation: Operation | None
    trace_ids: list[str]
    facts: dict[str, str] = field(default_factory=dict)


def connect_refused_trace() -> tuple[ConnectionRefusedError, str]:
    """What ``ib.connect`` records when nothing listens on the Gateway's port."""
    exc = ConnectionRefusedError(111, f"Connect call failed {GATEWAY!r}")
    return exc, ins.traceback_text(
        [("/app/ib-host-service/ib/connection.py", 233, "_connect",
          "await self.ib.connectAsync(self.host, self.port, clientId=self.client_id)"),
         ("/usr/local/lib/python3.11/asyncio/base_events.py", 1085, "create_connection",
          "raise exceptions[0]")], "ConnectionRefusedError", str(exc))


def trace_id_of(sp: Span) -> str:
    return format(sp.get_span_context().trace_id, "032x")


def trace_id_in(ctx: Context) -> str:
    """The trace id of the span held by a context."""
    return trace_id_of(trace.get_current_span(ctx))


class IbHost:
    """The IB host service in front of the IB Gateway."""

    def __init__(self, k: Ktrdr) -> None:
        self.k = k
        self.process: Process | None = None
        self.gateway_up = True
        self.connected = False
        self.client_id = 0
        self._loop: Background | None = None

    def start(self, *, gateway_up: bool) -> None:
        """Start the service; with the Gateway up it connects at once."""
        self.process = self.k.world.spawn("ktrdr-ib-host-service", host="localhost", port=5001)
        self.gateway_up = gateway_up
        self.connected = False
        self._loop = None
        if gateway_up:
            self.connect_once()

    def stop(self) -> None:
        """Stop the service: connections are refused, requests in flight never answer."""
        if self.process is not None:
            self.k.world.kill(self.process)

    def ensure_connecting(self) -> None:
        if self.connected or self.process is None:
            return
        if self._loop is None or self._loop.done:
            self._loop = self.k.world.run_in(self.process, self._connection_loop)

    def _connection_loop(self) -> None:
        world = self.k.world
        while not self.connect_once():
            world.clock.sleep(9.0 + 13.0 * world.rng.random())

    def connect_once(self) -> bool:
        """One ``ib.connect`` attempt: its own one-span trace."""
        world, proc = self.k.world, self.process
        assert proc is not None
        self.client_id += 1
        with ins.span(world, proc, "ib.connect", None, scope=ins.IB_CONNECTION, attributes={
                "ib.host": GATEWAY[0], "ib.port": GATEWAY[1],
                "connection.client_id": self.client_id}) as (sp, _):
            world.clock.sleep(0.003 + 0.006 * world.rng.random())
            if self.gateway_up:
                sp.set_attribute("connection.status", "connected")
                self.connected = True
                return True
            sp.set_attribute("connection.status", "error")
            exc, stacktrace = connect_refused_trace()
            ins.record_error(world, sp, exc, stacktrace, events=2, skew_ns=proc.skew_ns)
            return False


class Ktrdr:
    """One KTRDR deployment on the injected world (clock + provider factory + randomness)."""

    def __init__(self, world: World, *, registry_dialect: str = "real") -> None:
        self.world = world
        self.registry_dialect = registry_dialect
        self.cli = world.spawn("ktrdr-cli")
        self.api = world.spawn("ktrdr-api", host="127.0.0.1", port=8000, body_sends=2)
        self.ib = IbHost(self)
        self.registry: list[Worker] = []
        self.operations: dict[str, Operation] = {}
        self._potential_orphans: dict[str, int] = {}
        self.next_health_ns = 0  # when the health loop runs next

    @property
    def clock(self) -> Clock:
        return self.world.clock

    # ------------------------------------------------------------------ background loops

    def start_loops(self) -> None:
        """The backend's health loop and orphan detector (they run until the recording ends)."""
        self.world.run_in(self.api, self._health_loop)
        self.world.run_in(self.api, self._orphan_loop)

    def _every(self, interval_s: float, body: Callable[[int], None]) -> None:
        """KTRDR's loops: do the round, then ``asyncio.sleep(interval)`` (so they drift)."""
        clock = self.clock
        while True:
            body(clock.now_ns())
            clock.sleep(interval_s)

    def _health_loop(self) -> None:
        self.clock.sleep(5.0)
        self._every(HEALTH_INTERVAL_S, self._health_round)

    def _health_round(self, _tick: int) -> None:
        for w in list(self.registry):
            self._check(w)
        self.next_health_ns = self.clock.now_ns() + round(HEALTH_INTERVAL_S * NS_PER_S)

    def _check(self, w: Worker) -> None:
        """``GET {worker}/health``: a root client span on ktrdr-api."""
        wproc = w.process

        def health(ctx: Context) -> int:
            with ins.span(self.world, wproc, "operations.list", ctx,
                          attributes=ins.service_attributes("operations.list")) as (sp, _):
                self.clock.sleep(0.0005 + 0.004 * self.world.rng.random())
                ins.mark_ok(sp)
            return 200

        status = request(self.world, self.api, None, "GET",
                         Target(wproc, wproc.base_url, "/health", "/health"), handler=health)
        now = self.clock.now_ns()
        if status == 200:
            w.failures = 0
            w.last_healthy_ns = now
            w.status = "busy" if w.running is not None else "available"
            w.current_operation_id = w.running.operation_id if w.running else None
        else:
            w.failures += 1
            if w.failures >= HEALTH_FAILURES:
                w.status = "temporarily_unavailable"
            if now - w.last_healthy_ns >= REMOVAL_S * NS_PER_S and w in self.registry:
                self.registry.remove(w)
        self.world.observer.registry(self.api, self.registry)

    def _orphan_loop(self) -> None:
        self.clock.sleep(7.0)
        self._every(ORPHAN_INTERVAL_S, self._orphan_check)

    def _orphan_check(self, tick: int) -> None:
        for method in ("operations.list", "workers.list"):
            with ins.span(self.world, self.api, method, None,
                          attributes=ins.service_attributes(method)) as (sp, _):
                self.clock.sleep(0.00005 + 0.0001 * self.world.rng.random())
                ins.mark_ok(sp)
        claimed = {w.current_operation_id for w in self.registry if w.current_operation_id}
        for op in list(self.operations.values()):
            if op.status != "running" or op.operation_id in claimed:
                self._potential_orphans.pop(op.operation_id, None)
                continue
            first = self._potential_orphans.setdefault(op.operation_id, tick)
            if tick - first >= ORPHAN_TIMEOUT_S * NS_PER_S:
                self.transition(self.api, None, op, "failed",
                                **{"operation.error": ORPHAN_ERROR})
                self._potential_orphans.pop(op.operation_id, None)


    # ------------------------------------------------------------------ workers and registry

    def start_worker(self, worker_type: str, port: int) -> Worker:
        """A worker process (random OTel suffix, another random registry id) that registers
        itself: a root ``operations.list`` at start-up, then ``POST /api/v1/workers/register``."""
        world = self.world
        short = SHORT[worker_type]
        proc = world.spawn(f"ktrdr-{short}-worker-{world.hex8()}", host="127.0.0.1", port=port)
        worker = Worker(f"{worker_type}-worker-{world.hex8()}", worker_type, proc)
        with ins.span(world, proc, "operations.list", None,
                      attributes=ins.service_attributes("operations.list")) as (sp, _):
            self.clock.sleep(0.09)
            ins.mark_ok(sp)
        self.clock.sleep(0.2)
        self.register(worker)
        return worker

    def register(self, worker: Worker) -> None:
        """Registration replaces any stale entry with the same endpoint."""

        def handler(_ctx: Context) -> int:
            self.clock.sleep(0.01)
            self.registry[:] = [w for w in self.registry
                                if w.process.address != worker.process.address]
            worker.status = "busy" if worker.running else "available"
            worker.current_operation_id = (worker.running.operation_id if worker.running
                                           else None)
            worker.failures = 0
            worker.last_healthy_ns = self.clock.now_ns()
            self.registry.append(worker)
            return 200

        request(self.world, worker.process, None, "POST",
                Target(self.api, BACKEND_URL, "/api/v1/workers/register",
                       "/api/v1/workers/register"), handler=handler)
        self.world.observer.registry(self.api, self.registry)

    def kill_worker(self, worker: Worker) -> None:
        """SIGKILL the worker process (its registry entry stays until health checks drop it)."""
        self.world.kill(worker.process)

    def list_span(self, parent: Context) -> None:
        with ins.span(self.world, self.api, "workers.list", parent,
                      attributes=ins.service_attributes("workers.list")) as (sp, _):
            self.clock.sleep(0.0002)
            ins.mark_ok(sp)

    def select_worker(self, parent: Context, worker_type: str,
                      exclude: frozenset[str] = frozenset()) -> Worker | None:
        """``WorkerRegistry.select_worker``: LRU among available workers of the type."""
        self.list_span(parent)
        self.world.observer.registry(self.api, self.registry)
        capable = [w for w in self.registry if w.worker_type == worker_type]
        available = sorted((w for w in capable if w.status == "available"
                            and w.worker_id not in exclude), key=lambda w: w.last_selected)
        chosen = available[0] if available else None
        if self.registry_dialect == "documented":
            self._select_span_documented(parent, worker_type, capable, available, chosen)
        else:
            self._select_span_real(parent, worker_type, capable, available, chosen)
        if chosen is not None:
            chosen.last_selected = self.clock.now_ns() / NS_PER_S
        return chosen

    def _select_span_real(self, parent: Context, worker_type: str, capable: list[Worker],
                          available: list[Worker], chosen: Worker | None) -> None:
        attrs = ins.service_attributes("workers.select", **{
            "worker.type": worker_type, "worker.total_workers": len(self.registry),
            "worker.capable_workers": len(capable),
            "worker.available_workers": len(available)})
        if chosen is not None:
            attrs["worker.selected_id"] = chosen.worker_id
        attrs["worker.selection_status"] = "success" if chosen else "no_workers_available"
        with ins.span(self.world, self.api, "workers.select", parent, attributes=attrs) as (
                sp, _):
            self.clock.sleep(0.0002)
            ins.mark_ok(sp)

    def _select_span_documented(self, parent: Context, worker_type: str,
                                capable: list[Worker], available: list[Worker],
                                chosen: Worker | None) -> None:
        """The dialect the skill documents: ``worker_registry.*``, ints, upper-case statuses."""
        if chosen is not None:
            status = "SUCCESS"
        elif not capable:
            status = "NO_CAPABLE_WORKERS"
        else:
            status = "NO_WORKERS_AVAILABLE"
        attrs: dict[str, str | int] = {
            "worker_registry.worker_type": worker_type.upper(),
            "worker_registry.total_workers": len(self.registry),
            "worker_registry.capable_workers": len(capable),
            "worker_registry.available_workers": len(available),
            "worker_registry.selection_status": status,
        }
        if chosen is not None:
            attrs["worker_registry.selected_worker_id"] = chosen.worker_id
        with ins.span(self.world, self.api, "worker_registry.select_worker", parent,
                      scope=ins.WORKER_REGISTRY, attributes=attrs) as (sp, _):
            self.clock.sleep(0.0004)
            ins.mark_ok(sp)

    def first_training_worker(self, parent: Context) -> Worker | None:
        """``_select_training_worker``: two ``workers.list`` calls, first available, no LRU."""
        self.world.observer.registry(self.api, self.registry)
        self.list_span(parent)
        self.list_span(parent)
        for worker in self.registry:
            if worker.worker_type == "training" and worker.status == "available":
                return worker
        return None

    @staticmethod
    def mark_busy(worker: Worker, op: Operation) -> None:
        worker.status = "busy"
        worker.current_operation_id = op.operation_id

    # ------------------------------------------------------------------ operations service

    def create_operation(self, proc: Process, parent: Context, op: Operation, *,
                         with_id_on_create: bool, symbol: str, timeframe: str) -> None:
        """``operations.create`` with its ``operation.register`` child. Every operation is
        registered with ``operation.is_backend_local=false``, backend-local data loads too."""
        kwargs = {"operation_id": op.operation_id} if with_id_on_create else {}
        self.operations[op.operation_id] = op
        with ins.span(self.world, proc, "operations.create", parent,
                      attributes=ins.service_attributes("operations.create", **kwargs)) as (
                sp, ctx):
            self.clock.sleep(0.01 + 0.08 * self.world.rng.random())
            with ins.span(self.world, proc, "operation.register", ctx, attributes={
                    "operation.id": op.operation_id, "data.symbol": symbol,
                    "data.timeframe": timeframe, "operation.type": op.operation_type,
                    "operation.status": "pending", "operation.is_backend_local": False}) as (
                    rsp, _):
                self.clock.sleep(0.008 + 0.02 * self.world.rng.random())
                ins.mark_ok(rsp)
            ins.mark_ok(sp)
        self.world.observer.operation_created(proc, op.operation_id, op.operation_type)

    def transition(self, proc: Process, parent: Context | None, op: Operation, to_status: str,
                   *, from_status: str | None = None, **extra: str | int | bool) -> None:
        """``operation.state_transition`` (from whatever the status is now: a failure after the
        orphan detector's is ``failed -> failed``)."""
        attrs: dict[str, str | int | bool] = {
            "operation.id": op.operation_id,
            "operation.from_status": from_status or op.status,
            "operation.to_status": to_status,
        }
        attrs.update(extra)
        with ins.span(self.world, proc, "operation.state_transition", parent,
                      attributes=attrs) as (sp, _):
            self.clock.sleep(0.00003)
            ins.mark_ok(sp)
        op.status = to_status
        self.world.observer.transition(proc, op.operation_id, op.operation_type, to_status,
                                       self.clock.now_ns())

    def phase(self, proc: Process, parent: Context, name: str, *, scope: str,
              attributes: dict[str, str | int], seconds: float, fault: Fault | None,
              after: dict[str, str | int] | None = None) -> bool:
        """A phase span (``start_as_current_span``): UNSET on success, ERROR with one
        exception event on failure. False when it failed."""
        with ins.span(self.world, proc, name, parent, scope=scope, attributes=attributes) as (
                sp, _):
            self.clock.sleep(seconds)
            if fault is not None and fault.phase == name:
                ins.record_error(self.world, sp, fault.exc, fault.stacktrace)
                return False
            for key, value in (after or {}).items():
                sp.set_attribute(key, value)
        return True

    def finish(self, proc: Process, parent: Context, op: Operation, fault: Fault | None
               ) -> None:
        """The terminal transition of the worker's task."""
        if fault is not None:
            self.transition(proc, parent, op, "failed", **{"operation.error": str(fault.exc)})
        else:
            self.transition(proc, parent, op, "completed")

    def run_on(self, worker: Worker, op: Operation, work: Callable[[], None]) -> None:
        """The worker's ``asyncio.create_task``: the work runs after the response is sent."""

        def body() -> None:
            worker.running = op
            work()
            if worker.running is op:
                worker.running = None

        op.worker = worker
        op.job = self.world.run_in(worker.process, body)

    def newest_operation(self, operation_type: str) -> Operation | None:
        """The operation of that type the backend dispatched last."""
        found = [op for op in self.operations.values() if op.operation_type == operation_type]
        return found[-1] if found else None

    def wait_all(self, step_s: float = 5.0) -> None:
        """Until every operation ended, except those that hang."""
        while any(not op.terminal and not op.hangs for op in self.operations.values()):
            self.clock.sleep(step_s)

    def wait_terminal(self, op: Operation, timeout_s: float, step_s: float = 5.0) -> None:
        """Wait (bounded) until the operation ended, e.g. until the orphan detector failed it."""
        deadline = self.clock.now_ns() + round(timeout_s * NS_PER_S)
        while not op.terminal and self.clock.now_ns() < deadline:
            self.clock.sleep(step_s)

    # ----------------------------------------------------------------------- the CLI side

    def cli_command(self, command: str, kwargs: dict[str, object], start: Target,
                    handler: Handler, *, follow: bool, poll_s: float, retries: int = 4,
                    result: dict[str, object] | None = None,
                    preflight: Callable[[Context], None] | None = None,
                    ) -> tuple[str, Operation | None]:
        """``@trace_cli_command``: the start call (retried on 500/503), then polling while
        following. The span carries no ``operation.id`` (the commands return None). Status:
        OK when started (and, when following, completed), ERROR ``Exit: 1`` when workers stayed
        unavailable, UNSET otherwise."""
        world = self.world
        holder: dict[str, object] = result if result is not None else {}
        args = json.dumps({"args": [], "kwargs": kwargs})
        with ins.span(world, self.cli, f"cli.{command}", None, scope=ins.CLI_TELEMETRY,
                      attributes={"cli.command": command, "cli.args": args}) as (root, ctx):
            self.clock.sleep(0.06 + 0.1 * world.rng.random())  # start-up, config, client
            if preflight is not None:
                preflight(ctx)
            status = None
            for attempt in range(retries):
                status = request(world, self.cli, ctx, "POST", start, handler=handler)
                if status not in (500, 503) or attempt == retries - 1:
                    break
                self.clock.sleep((1.5, 2.4, 4.7)[min(attempt, 2)] + 0.4 * world.rng.random())
            op = holder.get("operation")
            trace = trace_id_of(root)
            if status == 503:
                ins.record_error(world, root, Exit("1"), EXIT_STACK, events=2)
                return trace, None
            if status != 200 or not isinstance(op, Operation):
                return trace, None
            if not follow:
                ins.mark_ok(root)
                return trace, op
            self.follow(ctx, op, poll_s)
            if op.status == "completed" or command == "data_load":
                ins.mark_ok(root)
        return trace, op

    def follow(self, ctx: Context, op: Operation, poll_s: float) -> None:
        """Poll ``GET /api/v1/operations/{id}`` until the operation ends."""
        while True:
            self.clock.sleep(poll_s * (0.9 + 0.2 * self.world.rng.random()))
            path = f"/api/v1/operations/{op.operation_id}"
            request(self.world, self.cli, ctx, "GET",
                    Target(self.api, BACKEND_URL, "/api/v1/operations/{operation_id}", path),
                    handler=lambda bctx: self.get_operation(bctx, op))
            if op.terminal:
                return

    def get_operation(self, ctx: Context, op: Operation) -> int:
        """The backend's answer: a worker's operation is read from the worker (the proxy, then
        its metrics); when the worker does not answer, from the database."""
        self.clock.sleep(0.002)
        worker = op.worker
        if worker is None:
            return 200
        wproc = worker.process
        path = f"/api/v1/operations/{op.operation_id}"
        status = request(self.world, self.api, ctx, "GET",
                         Target(wproc, wproc.base_url, "/api/v1/operations/{operation_id}",
                                path), handler=lambda _c: self._answer(0.003))
        if status == 200:
            request(self.world, self.api, ctx, "GET",
                    Target(wproc, wproc.base_url, "/api/v1/operations/{operation_id}/metrics",
                           path + "/metrics?cursor=0"), handler=lambda _c: self._answer(0.002))
        return 200

    def _answer(self, seconds: float) -> int:
        self.clock.sleep(seconds)
        return 200

    def curl(self, start: Target, handler: Handler) -> str:
        """A start request sent with curl: the backend's server span is the trace root."""
        holder: list[str] = []

        def traced(ctx: Context) -> int:
            holder.append(trace_id_in(ctx))
            return handler(ctx)

        serve(self.world, self.api, {"user-agent": CURL_UA}, "POST", start, handler=traced,
              body=True, peer_ip="127.0.0.1")
        return holder[0]

    def cancel(self, op: Operation) -> str:
        """``ktrdr cancel <id>``: its own trace; the backend proxies the cancel to the worker,
        and both record running -> cancelled."""
        world = self.world
        kwargs = {"ctx": self.click_context(), "operation_id": op.operation_id, "reason": None,
                  "force": False}
        with ins.span(world, self.cli, "cli.cancel", None, scope=ins.CLI_TELEMETRY,
                      attributes={"cli.command": "cancel",
                                  "cli.args": json.dumps({"args": [], "kwargs": kwargs})}) as (
                root, ctx):
            self.clock.sleep(0.2)
            path = f"/api/v1/operations/{op.operation_id}"
            request(world, self.cli, ctx, "DELETE",
                    Target(self.api, BACKEND_URL, "/api/v1/operations/{operation_id}", path),
                    handler=lambda bctx: self._backend_cancel(bctx, op), body=True)
            ins.mark_ok(root)
        return trace_id_of(root)

    def _backend_cancel(self, ctx: Context, op: Operation) -> int:
        self.clock.sleep(0.015)
        worker = op.worker
        if worker is not None:
            wproc = worker.process

            def worker_cancel(wctx: Context) -> int:
                self.clock.sleep(0.002)
                self.transition(wproc, wctx, op, "cancelled")
                if op.job is not None:
                    kill = getattr(self.clock, "kill", None)
                    if kill is not None:
                        kill(op.job)  # the training loop stops; it writes no span
                worker.running = None
                self.clock.sleep(0.02)
                return 200

            request(self.world, self.api, ctx, "DELETE",
                    Target(wproc, wproc.base_url, "/api/v1/operations/{operation_id}/cancel",
                           f"/api/v1/operations/{op.operation_id}/cancel"),
                    handler=worker_cancel, body=False)
        # The backend's own record said running until now.
        self.transition(self.api, ctx, op, "cancelled", from_status="running")
        return 200

    def click_context(self) -> str:
        """``repr`` of the click context the CLI passes along (a memory address)."""
        return f"<click.core.Context object at 0x7f{self.world.rng.getrandbits(36) << 4:010x}>"
