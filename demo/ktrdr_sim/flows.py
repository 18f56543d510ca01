"""The three operation flows KTRDR runs: backtest, training and data load (``ktrdr.md`` §1.3).

Each flow takes a plan (what the user asked for, how long each phase takes, which fault
happens) and drives the CLI, backend, worker and host-service processes of a :class:`Ktrdr`.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from ktrdr_sim import instrument as ins
from ktrdr_sim.clock import NS_PER_S
from ktrdr_sim.http import Target, request
from ktrdr_sim.ktrdr import Fault, Ktrdr, Operation, RunResult
from ktrdr_sim.runtime import Process

BACKEND_URL = "http://backend:8000"


def _trace_id(ctx: Context) -> str:
    return format(trace.get_current_span(ctx).get_span_context().trace_id, "032x")


@dataclass(slots=True)
class BacktestPlan:
    symbol: str = "AAPL"
    timeframe: str = "1h"
    strategy: str = "mean_reversion_v2"
    start_date: str = "2024-01-01"
    end_date: str = "2024-06-30"
    rows: int = 3120
    data_loading_s: float = 4.2
    feature_compute_s: float = 11.5
    simulation_s: float = 38.0
    fault: Fault | None = None
    follow: bool = True
    propagate_to_worker: bool = True
    cancel_after_s: float | None = None
    cancellation_reason: str = ""


@dataclass(slots=True)
class TrainingPlan:
    symbols: str = "AAPL,MSFT"
    timeframes: str = "1h,4h"
    strategy: str = "neuro_mean_reversion"
    start_date: str = "2023-01-01"
    end_date: str = "2024-06-30"
    rows: int = 8640
    columns: int = 5
    indicators: int = 12
    fuzzy_sets: int = 24
    data_loading_s: float = 38.0
    indicators_s: float = 71.0
    fuzzy_s: float = 24.0
    model_training_s: float = 240.0
    fault: Fault | None = None
    follow: bool = True
    stop_after: str | None = None  # the worker goes silent after this phase (stuck)


@dataclass(slots=True)
class DataLoadPlan:
    symbol: str = "EURUSD"
    timeframe: str = "1h"
    start_date: str = "2024-01-01T00:00:00"
    end_date: str = "2024-12-31T23:00:00"
    instrument_type: str = "CASH"
    segments: int = 3
    bars_per_segment: int = 2000
    segment_s: float = 6.5
    ib_host_up: bool = True
    ib_gateway_up: bool = True
    follow: bool = True


# ------------------------------------------------------------------------------- backtest


def run_backtest(k: Ktrdr, plan: BacktestPlan) -> RunResult:
    """``ktrdr backtest``: CLI → ``POST /api/v1/backtests/start`` → worker background task."""
    world = k.world
    clock = world.clock
    holder: dict[str, object] = {}
    traces: list[str] = []

    def worker_start(wctx: Context, wproc: Process, op: Operation) -> int:
        clock.sleep(0.0031)
        traces.append(_trace_id(wctx))
        clock.background(lambda: _backtest_work(k, wproc, wctx, op, plan))
        return 200

    def backend_start(ctx: Context) -> int:
        clock.sleep(0.0018)
        worker = k.select_worker(ctx, "backtesting")
        if worker is None or worker.process is None:
            clock.sleep(0.0009)
            return 503
        op = Operation(world.operation_id("backtesting"), "backtesting",
                       worker_id=worker.worker_id)
        if plan.cancel_after_s is not None:
            op.cancel_at_ns = clock.now_ns() + round(plan.cancel_after_s * NS_PER_S)
            op.cancellation_reason = plan.cancellation_reason
        holder["operation"] = op
        wproc = worker.process
        status = request(world, k.api, ctx, "POST",
                         Target(wproc, wproc.base_url, "/backtests/start", "/backtests/start"),
                         handler=lambda wctx: worker_start(wctx, wproc, op),
                         propagate=plan.propagate_to_worker)
        clock.sleep(0.0012)
        return 200 if status == 200 else 502

    args = {"symbol": plan.symbol, "timeframe": plan.timeframe, "strategy": plan.strategy,
            "start_date": plan.start_date, "end_date": plan.end_date}
    cli_trace, op = k.cli_command(
        "backtest", args,
        Target(k.api, BACKEND_URL, "/api/v1/backtests/start", "/api/v1/backtests/start"),
        backend_start, follow=plan.follow, cancel=plan.cancel_after_s is not None,
        result=holder)
    return RunResult(op, [cli_trace, *(t for t in traces if t != cli_trace)])


def _backtest_work(k: Ktrdr, wproc: Process, wctx: Context, op: Operation,
                   plan: BacktestPlan) -> None:
    """The worker's ``asyncio.create_task`` body: all spans start after the response."""
    clock = k.world.clock
    clock.sleep(0.004)
    k.create_operation(wproc, wctx, op, with_id_on_create=True, is_backend_local=False,
                       symbol=plan.symbol, timeframe=plan.timeframe)
    k.transition(wproc, wctx, op, "pending", "running")
    outcome = k.phase(wproc, wctx, "backtest.data_loading", scope=ins.BACKTEST_ENGINE,
                      attributes={"data.symbol": plan.symbol, "data.timeframe": plan.timeframe},
                      seconds=plan.data_loading_s, op=op, fault=plan.fault,
                      after={"data.rows": plan.rows})
    if outcome == "ok":
        outcome = k.phase(wproc, wctx, "backtest.feature_compute", scope=ins.BACKTEST_ENGINE,
                          attributes={"data.rows": plan.rows}, seconds=plan.feature_compute_s,
                          op=op, fault=plan.fault)
    if outcome == "ok":
        outcome = k.quiet(op, plan.simulation_s)  # the bar-by-bar simulation has no span
    k.finish(wproc, wctx, op, outcome, plan.fault)


# ------------------------------------------------------------------------------- training


def run_training(k: Ktrdr, plan: TrainingPlan) -> RunResult:
    """``ktrdr train``: backend ``training.start`` picks a worker without ``select_worker``."""
    world = k.world
    clock = world.clock
    holder: dict[str, object] = {}

    def worker_start(wctx: Context, wproc: Process, op: Operation) -> int:
        clock.sleep(0.0042)
        clock.background(lambda: _training_work(k, wproc, wctx, op, plan))
        return 200

    def backend_start(ctx: Context) -> int:
        clock.sleep(0.0021)
        with ins.span(world, k.api, "training.start", ctx,
                      attributes=ins.service_attributes("training.start")) as (sp, tctx):
            worker = k.training_worker(tctx)
            if worker is None or worker.process is None:
                return 503
            op = Operation(world.operation_id("training"), "training",
                           worker_id=worker.worker_id)
            holder["operation"] = op
            wproc = worker.process
            status = request(world, k.api, tctx, "POST",
                             Target(wproc, wproc.base_url, "/training/start", "/training/start"),
                             handler=lambda wctx: worker_start(wctx, wproc, op))
            ins.mark_ok(sp)
        clock.sleep(0.0011)
        return 200 if status == 200 else 502

    args = {"strategy": plan.strategy, "symbols": plan.symbols.split(","),
            "timeframes": plan.timeframes.split(","), "start_date": plan.start_date,
            "end_date": plan.end_date}
    cli_trace, op = k.cli_command(
        "train", args,
        Target(k.api, BACKEND_URL, "/api/v1/trainings/start", "/api/v1/trainings/start"),
        backend_start, follow=plan.follow, poll_s=30.0, result=holder)
    return RunResult(op, [cli_trace])


Phase = tuple[str, dict[str, str | int], float, dict[str, str | int]]


def training_phases(plan: TrainingPlan) -> list[Phase]:
    """KTRDR's training pipeline spans in order: name, attributes at start, seconds,
    attributes set when the phase ends. Shared by the recorder and the live workers."""
    return [
        ("training.data_loading",
         {"data.symbol": plan.symbols, "data.timeframes": plan.timeframes,
          "progress.phase": "data_loading"},
         plan.data_loading_s, {"data.rows": plan.rows, "data.columns": plan.columns}),
        ("training.indicators",
         {"indicators.count": plan.indicators, "indicators.timeframes": plan.timeframes,
          "progress.phase": "indicators"}, plan.indicators_s, {}),
        ("training.fuzzy_computation",
         {"fuzzy_sets.count": plan.fuzzy_sets, "fuzzy_sets.timeframes": plan.timeframes,
          "progress.phase": "fuzzy_computation"}, plan.fuzzy_s, {}),
    ]


def _training_work(k: Ktrdr, wproc: Process, wctx: Context, op: Operation,
                   plan: TrainingPlan) -> None:
    clock = k.world.clock
    clock.sleep(0.006)
    k.create_operation(wproc, wctx, op, with_id_on_create=True, is_backend_local=False,
                       symbol=plan.symbols, timeframe=plan.timeframes)
    k.transition(wproc, wctx, op, "pending", "running")
    outcome = "ok"
    for name, attrs, seconds, after in training_phases(plan):
        outcome = k.phase(wproc, wctx, name, scope=ins.TRAINING_PIPELINE, attributes=attrs,
                          seconds=seconds, op=op, fault=plan.fault, after=after)
        if outcome != "ok":
            break
        if plan.stop_after == name:
            clock.sleep(0.002)
            return  # the next phase's span never ends, so it is never exported
    if outcome == "ok":
        outcome = k.quiet(op, plan.model_training_s)  # epochs: no spans at HEAD
    k.finish(wproc, wctx, op, outcome, plan.fault)


# ------------------------------------------------------------------------------ data load


def run_data_load(k: Ktrdr, plan: DataLoadPlan) -> RunResult:
    """``ktrdr data load``: a backend-local operation fetching from the IB host service."""
    world = k.world
    clock = world.clock
    holder: dict[str, object] = {}

    def backend_start(ctx: Context) -> int:
        clock.sleep(0.0016)
        with ins.span(world, k.api, "data.download", ctx, attributes=ins.service_attributes(
                "data.download", symbol=plan.symbol, timeframe=plan.timeframe,
                start_date=plan.start_date, end_date=plan.end_date)) as (sp, dctx):
            op = Operation(world.operation_id("data_load"), "data_load")
            holder["operation"] = op
            # ServiceOrchestrator does not pass operation_id= to create_operation.
            k.create_operation(k.api, dctx, op, with_id_on_create=False, is_backend_local=True,
                               symbol=plan.symbol, timeframe=plan.timeframe)
            clock.background(lambda: _data_load_work(k, dctx, op, plan))
            clock.sleep(0.0008)
            ins.mark_ok(sp)
        return 200

    args = {"symbol": plan.symbol, "timeframe": plan.timeframe, "mode": "tail",
            "start_date": plan.start_date, "end_date": plan.end_date}
    cli_trace, op = k.cli_command(
        "data_load", args,
        Target(k.api, BACKEND_URL, "/api/v1/data/acquire/download",
               "/api/v1/data/acquire/download"),
        backend_start, follow=plan.follow, poll_s=5.0, result=holder)
    return RunResult(op, [cli_trace])


def _data_load_work(k: Ktrdr, dctx: Context, op: Operation, plan: DataLoadPlan) -> None:
    """``asyncio.to_thread`` body on the backend: one IB request per segment."""
    world = k.world
    clock = world.clock
    clock.sleep(0.003)
    k.transition(k.api, dctx, op, "pending", "running")
    connected = False
    for segment in range(plan.segments):
        clock.sleep(0.05)
        target = Target(k.ib if plan.ib_host_up else None, "http://host.docker.internal:5001",
                        "/data/historical", "/data/historical")

        def ib_handler(ictx: Context, segment: int = segment) -> int:
            nonlocal connected
            if not connected:
                if not _ib_connect(k, ictx, plan):
                    return 500
                connected = True
            _ib_fetch(k, ictx, plan, segment)
            return 200

        status = request(world, k.api, dctx, "POST", target, handler=ib_handler,
                         connect_timeout_s=0.0021)
        if status is None:
            k.transition(k.api, dctx, op, "running", "failed", **{
                "operation.error": "IB host service request failed: All connection attempts "
                                   "failed (http://host.docker.internal:5001/data/historical)"})
            return
        if status >= 400:
            k.transition(k.api, dctx, op, "running", "failed", **{
                "operation.error": f"IB host service returned HTTP {status}: Failed to connect "
                                   "to IB Gateway at 127.0.0.1:4002"})
            return
    k.transition(k.api, dctx, op, "running", "completed")


def _ib_connect(k: Ktrdr, ictx: Context, plan: DataLoadPlan) -> bool:
    world = k.world
    with ins.span(world, k.ib, "ib.connect", ictx, scope=ins.IB_CONNECTION,
                  attributes={"ib.host": "127.0.0.1", "ib.port": 4002,
                              "connection.client_id": 1 + world.rng.randrange(998)}) as (sp, _):
        world.clock.sleep(0.35 if plan.ib_gateway_up else 2.0)
        if plan.ib_gateway_up:
            sp.set_attribute("connection.status", "connected")
            return True
        sp.set_attribute("connection.status", "failed")
        exc = ConnectionRefusedError(61, "Connect call failed ('127.0.0.1', 4002)")
        ins.record_error(world, sp, exc, ins.traceback_text(
            [("ib-host-service/ib/connection.py", 212, "_connect",
              "await self.ib.connectAsync(self.host, self.port, clientId=self.client_id)"),
             ("/usr/local/lib/python3.11/asyncio/base_events.py", 1085, "create_connection",
              "raise exceptions[0]")],
            "ConnectionRefusedError", str(exc)), skew_ns=k.ib.skew_ns)
        return False


def _ib_fetch(k: Ktrdr, ictx: Context, plan: DataLoadPlan, segment: int) -> None:
    world = k.world
    latency = round(plan.segment_s * 1000 * (0.9 + 0.2 * world.rng.random()), 2)
    with ins.span(world, k.ib, "ib.fetch_historical", ictx, scope=ins.IB_FETCHER,
                  kind=SpanKind.INTERNAL,
                  attributes={"data.symbol": plan.symbol, "data.timeframe": plan.timeframe,
                              "data.start_date": plan.start_date,
                              "data.end_date": plan.end_date,
                              "data.instrument_type": plan.instrument_type}) as (sp, _):
        world.clock.sleep(latency / 1000)
        sp.set_attribute("bars.received", plan.bars_per_segment - 7 * segment)
        sp.set_attribute("ib.latency_ms", latency)
