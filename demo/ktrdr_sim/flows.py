"""The three operation flows KTRDR runs: backtest, training and data load.

Each flow takes a plan (what the user asked for, how long each phase takes, which fault
happens) and drives the CLI (or curl), backend, worker and host-service processes of a
:class:`Ktrdr`, with the span shapes of the real system (``run1/real-spans.txt``):
- backtest: the backend selects a worker (``workers.list``, ``workers.select``) and dispatches
  ``POST /backtests/start``; the worker answers at once and works in a background task
  (``operations.create``/``operation.register``, transitions, ``backtest.data_loading``,
  ``backtest.feature_compute``, then the span-less bar-by-bar simulation);
- training: ``training.start`` (with ``data.start_date``/``data.end_date``) picks a worker with
  two ``workers.list`` calls; the worker's only phase span is ``training.data_loading``, then
  the training loop (most of the time) writes no span;
- data load: backend-local; ``data.download`` (with ``operation.id`` and the progress
  attributes), then ``POST /data/validate`` and ``POST /data/historical`` to the IB host
  service (30 s read timeout, 4 attempts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from opentelemetry.context import Context
from opentelemetry.trace import Span

from ktrdr_sim import instrument as ins
from ktrdr_sim.errors import ValidationError, WorkerUnavailableError
from ktrdr_sim.http import REFUSED, TIMED_OUT, Handler, Target, request
from ktrdr_sim.ktrdr import (
    BACKEND_URL,
    IB_HOST_URL,
    Fault,
    Ktrdr,
    Operation,
    RunResult,
    Worker,
    trace_id_in,
)

DAYS = 86_400.0
VALIDATE_TIMEOUT_S = 30.0
VALIDATE_ATTEMPTS = 4
IB_WAIT_S = 257.5  # how long the host service waits for the Gateway before it answers
STRATEGIES = ("v3_minimal", "v3_long", "v3_medium", "v3_badsym", "v3_multi_symbol",
              "momentum_regime_regression_v3", "trend_tb_signal_v1")


@dataclass(slots=True)
class BacktestPlan:
    strategy: str = "v3_minimal"
    symbol: str = "EURUSD"  # from the strategy's configuration
    timeframe: str = "1h"
    start_date: str = "2024-01-01"
    end_date: str = "2024-06-30"
    model_path: str | None = "models/v3_minimal/1h_v1"
    rows: int = 3120
    setup_s: float = 2.4  # model and strategy loading: no span
    data_loading_s: float = 0.15
    feature_compute_s: float = 0.26
    simulation_s: float = 1.6
    fault: Fault | None = None
    follow: bool = True
    via_curl: bool = False
    propagate_to_worker: bool = True


@dataclass(slots=True)
class TrainingPlan:
    strategy: str = "v3_minimal"
    symbols: str = "EURUSD"
    timeframes: str = "1h"
    start_date: str = "2023-01-01"
    end_date: str = "2023-06-30"
    rows: int = 3097
    columns: int = 5
    data_loading_s: float = 0.24
    loop_s: float = 43.0  # the training loop (epochs): no span
    fault: Fault | None = None
    follow: bool = True
    via_curl: bool = False
    hang: bool = False  # the training loop never ends (the process stays alive)


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
    follow: bool = True


def _worker_facts(worker: Worker | None) -> dict[str, str]:
    if worker is None:
        return {}
    return {"worker_port": str(worker.process.port), "worker_address": worker.process.address,
            "worker_service": worker.process.service_name}


def _start(k: Ktrdr, route: str, path: str | None = None) -> Target:
    return Target(k.api, BACKEND_URL, route, path or route)


Plan = BacktestPlan | TrainingPlan | DataLoadPlan
# Per CLI command: the start route (and path), and how often it polls while following. The
# real CLI polls about every 0.3 s; this keeps the corpus small.
START = {"backtest": ("/api/v1/backtests/start",), "train": ("/api/v1/trainings/start",),
         "data_load": ("/api/v1/data/acquire/download",
                       "/api/v1/data/acquire/download?async_mode=true")}
POLL_S = {"backtest": 3.0, "train": 10.0, "data_load": 2.0}


def cli_kwargs(command: str, plan: Plan, click_context: str) -> dict[str, object]:
    """``cli.args``' keyword arguments as each command receives them (``--follow`` too)."""
    if isinstance(plan, DataLoadPlan):
        return {"symbol": plan.symbol, "timeframe": plan.timeframe, "mode": "tail",
                "start_date": None, "end_date": None, "trading_hours_only": False,
                "include_extended": False, "show_progress": True, "output_format": "table",
                "verbose": False, "quiet": False}
    common = {"ctx": click_context, "strategy": plan.strategy,
              "start_date": plan.start_date, "end_date": plan.end_date}
    if isinstance(plan, BacktestPlan):
        return {**common, "capital": 100000.0, "commission": 0.001, "slippage": 0.0005,
                "model_path": plan.model_path, "follow": plan.follow}
    return {**common, "symbols": None, "timeframes": None, "validation_split": 0.2,
            "models_dir": "models", "data_mode": "local", "dry_run": False,
            "detailed_analytics": False, "follow": plan.follow}


def _launch(k: Ktrdr, command: str, plan: BacktestPlan | TrainingPlan, backend_start: Handler,
            holder: dict[str, object]) -> str:
    """The start request, sent with curl or by the CLI; the id of the trace it began."""
    start = _start(k, *START[command])
    if plan.via_curl:
        return k.curl(start, backend_start)
    trace, _ = k.cli_command(command, cli_kwargs(command, plan, k.click_context()), start,
                             backend_start, follow=plan.follow, poll_s=POLL_S[command],
                             result=holder)
    return trace


# ------------------------------------------------------------------------------- backtest


def run_backtest(k: Ktrdr, plan: BacktestPlan) -> RunResult:
    """``ktrdr backtest`` (or curl): ``POST /api/v1/backtests/start``; 400 for an unknown
    strategy (nothing on the backend is an error), 503 when no worker is available, 500 when
    the chosen worker refuses the connection."""
    world = k.world
    clock = world.clock
    holder: dict[str, object] = {}
    traces: list[str] = []
    chosen: list[Worker] = []

    def worker_start(wctx: Context, worker: Worker, op: Operation) -> int:
        clock.sleep(0.0021)
        if not plan.propagate_to_worker:
            traces.append(trace_id_in(wctx))
        k.run_on(worker, op, lambda: _backtest_work(k, worker, wctx, op, plan))
        return 200

    def backend_start(ctx: Context) -> int:
        clock.sleep(0.004 + 0.01 * world.rng.random())
        if plan.strategy not in STRATEGIES:
            clock.sleep(0.008)
            return 400
        tried: frozenset[str] = frozenset()
        for _ in range(3):  # a worker answering 503 (busy) is skipped
            worker = k.select_worker(ctx, "backtesting", tried)
            if worker is None:
                clock.sleep(0.001)
                return 503
            chosen.append(worker)
            op = Operation(world.operation_id("backtesting"), "backtesting")
            clock.sleep(0.02 + 0.02 * world.rng.random())
            status = request(world, k.api, ctx, "POST",
                             Target(worker.process, worker.base_url, "/backtests/start",
                                    "/backtests/start"),
                             handler=lambda wctx, w=worker, o=op: worker_start(wctx, w, o),
                             propagate=plan.propagate_to_worker)
            clock.sleep(0.002)
            if status == 200:
                k.mark_busy(worker, op)
                k.operations[op.operation_id] = op
                holder["operation"] = op
                return 200
            if status != 503:
                return 500  # "Failed to start backtest: All connection attempts failed"
            tried = tried | {worker.worker_id}
        return 503

    cli_trace = _launch(k, "backtest", plan, backend_start, holder)
    op = holder.get("operation")
    assert op is None or isinstance(op, Operation)
    return RunResult(op, [cli_trace, *traces], _worker_facts(chosen[-1] if chosen else None))


def _backtest_work(k: Ktrdr, worker: Worker, wctx: Context, op: Operation,
                   plan: BacktestPlan) -> None:
    """The worker's background task: every span starts after the dispatch answered."""
    clock = k.world.clock
    wproc = worker.process
    clock.sleep(0.002)
    k.create_operation(wproc, wctx, op, with_id_on_create=True, symbol=plan.symbol,
                       timeframe=plan.timeframe)
    k.transition(wproc, wctx, op, "running")
    clock.sleep(plan.setup_s)
    ok = k.phase(wproc, wctx, "backtest.data_loading", scope=ins.BACKTEST_ENGINE,
                 attributes={"data.symbol": plan.symbol, "data.timeframe": plan.timeframe},
                 seconds=plan.data_loading_s, fault=plan.fault, after={"data.rows": plan.rows})
    if ok:
        ok = k.phase(wproc, wctx, "backtest.feature_compute", scope=ins.BACKTEST_ENGINE,
                     attributes={"data.rows": plan.rows}, seconds=plan.feature_compute_s,
                     fault=plan.fault)
    if ok:
        clock.sleep(plan.simulation_s)  # the bar-by-bar simulation has no span
    k.finish(wproc, wctx, op, None if ok else plan.fault)


# ------------------------------------------------------------------------------- training


def strategy_not_found(strategy: str) -> ValidationError:
    searched = ", ".join(f"/app/strategies/{s}.yaml" for s in STRATEGIES)
    return ValidationError(f"Strategy file not found: {strategy}.yaml (searched: {searched})")


TRAINING_SERVICE_FRAMES = [
    ("/app/ktrdr/api/services/training_service.py", 212, "start_training",
     "worker = self._select_training_worker(context={})"),
    ("/app/ktrdr/api/services/training_service.py", 145, "_select_training_worker",
     "raise WorkerUnavailableError("),
]
STRATEGY_FRAMES = [
    ("/app/ktrdr/api/services/training_service.py", 188, "start_training",
     "strategy_path = self._resolve_strategy(strategy_name)"),
    ("/app/ktrdr/config/strategy_loader.py", 96, "resolve", "raise ValidationError("),
]


def strategy_trace(exc: ValidationError) -> str:
    return ins.traceback_text(STRATEGY_FRAMES, "ktrdr.errors.exceptions.ValidationError",
                              str(exc))


def run_training(k: Ktrdr, plan: TrainingPlan) -> RunResult:
    """``ktrdr train`` (or curl): ``training.start`` picks a worker without ``select_worker``;
    400 for an unknown strategy, 503 when no training worker is available. The answer carries
    ``task_id`` (the operation id)."""
    world = k.world
    clock = world.clock
    holder: dict[str, object] = {}
    chosen: list[Worker] = []

    def worker_start(wctx: Context, worker: Worker, op: Operation) -> int:
        clock.sleep(0.0012)
        k.run_on(worker, op, lambda: _training_work(k, worker, wctx, op, plan))
        return 200

    def backend_start(ctx: Context) -> int:
        clock.sleep(0.002)
        attrs = ins.service_attributes("training.start", start_date=plan.start_date,
                                       end_date=plan.end_date)
        with ins.span(world, k.api, "training.start", ctx, attributes=attrs) as (sp, tctx):
            clock.sleep(0.015 + 0.15 * world.rng.random())  # loads the strategy file
            if plan.strategy not in STRATEGIES:
                exc = strategy_not_found(plan.strategy)
                ins.record_error(world, sp, exc, strategy_trace(exc), events=2)
                status = 400
            else:
                status = _dispatch_training(tctx, sp)
        clock.sleep(0.001)
        return status

    def _dispatch_training(tctx: Context, sp: Span) -> int:
        worker = k.first_training_worker(tctx)
        if worker is None:
            clock.sleep(0.001)
            exc = WorkerUnavailableError("No training workers available")
            ins.record_error(world, sp, exc, ins.traceback_text(
                TRAINING_SERVICE_FRAMES, "ktrdr.errors.exceptions.WorkerUnavailableError",
                str(exc)), events=2)
            return 503
        chosen.append(worker)
        op = Operation(world.operation_id("training"), "training", hangs=plan.hang)
        clock.sleep(0.03 + 0.08 * world.rng.random())
        status = request(world, k.api, tctx, "POST",
                         Target(worker.process, worker.base_url, "/training/start",
                                "/training/start"),
                         handler=lambda wctx: worker_start(wctx, worker, op))
        if status != 200:
            return 500
        k.mark_busy(worker, op)
        k.operations[op.operation_id] = op
        holder["operation"] = op
        ins.mark_ok(sp)
        return 200

    cli_trace = _launch(k, "train", plan, backend_start, holder)
    op = holder.get("operation")
    assert op is None or isinstance(op, Operation)
    return RunResult(op, [cli_trace], _worker_facts(chosen[-1] if chosen else None))


def _training_work(k: Ktrdr, worker: Worker, wctx: Context, op: Operation,
                   plan: TrainingPlan) -> None:
    clock = k.world.clock
    wproc = worker.process
    clock.sleep(0.002)
    k.create_operation(wproc, wctx, op, with_id_on_create=True, symbol=plan.symbols,
                       timeframe=plan.timeframes)
    k.transition(wproc, wctx, op, "running")
    clock.sleep(0.04 + 0.4 * k.world.rng.random())
    ok = k.phase(wproc, wctx, "training.data_loading", scope=ins.TRAINING_PIPELINE,
                 attributes={"data.symbol": plan.symbols, "data.timeframes": plan.timeframes,
                             "progress.phase": "data_loading"},
                 seconds=plan.data_loading_s, fault=plan.fault,
                 after={"data.rows": plan.rows, "data.columns": plan.columns})
    if ok:
        # The training loop (indicators, fuzzy sets, epochs) writes no span.
        clock.sleep(1000 * DAYS if plan.hang else plan.loop_s)
    k.finish(wproc, wctx, op, None if ok else plan.fault)


# ------------------------------------------------------------------------------ data load


def run_data_load(k: Ktrdr, plan: DataLoadPlan) -> RunResult:
    """``ktrdr data load``: a backend-local operation fetching from the IB host service."""
    world = k.world
    clock = world.clock
    holder: dict[str, object] = {}

    def health(_ctx: Context) -> int:
        clock.sleep(0.002)
        return 200

    def preflight(ctx: Context) -> None:
        request(world, k.cli, ctx, "GET", _start(k, "/api/v1/health"), handler=health)
        clock.sleep(0.01)

    def backend_start(ctx: Context) -> int:
        clock.sleep(0.01)
        op = Operation(world.operation_id("data_load"), "data_load")
        attrs = ins.service_attributes("data.download", symbol=plan.symbol,
                                       timeframe=plan.timeframe, start_date=None,
                                       end_date=None)
        with ins.span(world, k.api, "data.download", ctx, attributes=attrs) as (sp, dctx):
            clock.sleep(0.001)
            # ServiceOrchestrator does not pass operation_id= to create_operation.
            k.create_operation(k.api, dctx, op, with_id_on_create=False, symbol=plan.symbol,
                               timeframe=plan.timeframe)
            for key, value in progress_attributes(plan, op.operation_id,
                                                  clock.now_ns()).items():
                sp.set_attribute(key, value)
            k.transition(k.api, dctx, op, "running")
            op.job = world.run_in(k.api, lambda: _data_load_work(k, dctx, op, plan))
            clock.sleep(0.015)
            ins.mark_ok(sp)
        holder["operation"] = op
        return 200

    cli_trace, op = k.cli_command(
        "data_load", cli_kwargs("data_load", plan, ""), _start(k, *START["data_load"]),
        backend_start, follow=plan.follow, poll_s=POLL_S["data_load"], retries=1,
        result=holder, preflight=preflight)
    return RunResult(op, [cli_trace], {"ib_host_address": "localhost:5001"})


def progress_attributes(plan: DataLoadPlan, operation_id: str, now_ns: int
                        ) -> dict[str, str | int | float]:
    """GenericProgressManager's attributes on ``data.download`` (typed, not ``str()``-ed)."""
    context = {"operation": f"Download {plan.symbol} {plan.timeframe} (tail mode)",
               "service": "Data/Acquisition",
               "current_step_name": f"Validating symbol {plan.symbol}",
               "step_start_percentage": 0.0, "step_end_percentage": 5.0}
    return {"progress.current_step": 0, "progress.total_steps": 7,
            "progress.items_processed": 0, "progress.context": json.dumps(context),
            "progress.percentage": 0.0, "operation.id": operation_id,
            "progress.phase": f"\u26a1 Starting Download {plan.symbol} {plan.timeframe} [0/7]",
            "progress.updated_at": round(now_ns / 1e9, 6)}


def _data_load_work(k: Ktrdr, dctx: Context, op: Operation, plan: DataLoadPlan) -> None:
    """``asyncio.to_thread`` body on the backend: validate the symbol, then one IB request per
    segment. A refused connection fails at once; a read timeout is retried (1, 2, 4 s)."""
    world = k.world
    clock = world.clock
    clock.sleep(0.03 + 0.03 * world.rng.random())
    ib = k.ib
    for attempt in range(VALIDATE_ATTEMPTS):
        status = request(world, k.api, dctx, "POST",
                         Target(ib.process, IB_HOST_URL, "/data/validate", "/data/validate"),
                         handler=lambda ictx: _validate(k), read_timeout_s=VALIDATE_TIMEOUT_S)
        if status is REFUSED:
            k.transition(k.api, dctx, op, "failed", **{
                "operation.error": "Host service connection failed: HTTP error for POST "
                                   "/data/validate: All connection attempts failed"})
            return
        if status != TIMED_OUT:
            break
        if attempt == VALIDATE_ATTEMPTS - 1:
            k.transition(k.api, dctx, op, "failed", **{
                "operation.error": f"Host service timeout: Request timed out after "
                                   f"{VALIDATE_ATTEMPTS} attempts: "})
            return
        clock.sleep(2.0 ** attempt)
    for segment in range(plan.segments):
        clock.sleep(0.05)
        status = request(world, k.api, dctx, "POST",
                         Target(ib.process, IB_HOST_URL, "/data/historical", "/data/historical"),
                         handler=lambda ictx, s=segment: _fetch(k, ictx, plan, s),
                         read_timeout_s=VALIDATE_TIMEOUT_S)
        if status != 200:
            k.transition(k.api, dctx, op, "failed", **{
                "operation.error": f"Host service error on segment {segment + 1}: HTTP "
                                   f"{status}"})
            return
    k.transition(k.api, dctx, op, "completed")


def _validate(k: Ktrdr) -> int:
    """The host service validates the symbol once connected to the Gateway; while it is not,
    it waits (minutes) for its connection loop before answering."""
    clock = k.world.clock
    ib = k.ib
    ib.ensure_connecting()
    waited = 0.0
    while not ib.connected and waited < IB_WAIT_S:
        clock.sleep(1.0)
        waited += 1.0
    clock.sleep(0.02 + 0.02 * k.world.rng.random())
    return 200


def _fetch(k: Ktrdr, ictx: Context, plan: DataLoadPlan, segment: int) -> int:
    world = k.world
    proc = k.ib.process
    assert proc is not None
    latency = round(plan.segment_s * 1000 * (0.9 + 0.2 * world.rng.random()), 2)
    with ins.span(world, proc, "ib.fetch_historical", ictx, scope=ins.IB_FETCHER,
                  attributes={"data.symbol": plan.symbol, "data.timeframe": plan.timeframe,
                              "data.start_date": plan.start_date,
                              "data.end_date": plan.end_date,
                              "data.instrument_type": plan.instrument_type}) as (sp, _):
        world.clock.sleep(latency / 1000)
        sp.set_attribute("bars.received", plan.bars_per_segment - 7 * segment)
        sp.set_attribute("ib.latency_ms", latency)
    return 200
