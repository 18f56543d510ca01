"""The demo scenarios: one per verdict, plus healthy runs of every type as the "slow" baseline.

A scenario is data (name, expected verdict, operation type, when it starts, which corpus file
holds its traces) plus a function that drives a :class:`Ktrdr`. The functions never touch the
clock's absolute time, so they run unchanged on the simulated or the wall clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ktrdr_sim.errors import DataNotFoundError
from ktrdr_sim.flows import (
    BacktestPlan,
    DataLoadPlan,
    TrainingPlan,
    run_backtest,
    run_data_load,
    run_training,
)
from ktrdr_sim.instrument import traceback_text
from ktrdr_sim.ktrdr import Fault, Ktrdr, RunResult

# Corpus files (see record.py for their formats).
BACKTESTS = "backtests"
TRAININGS = "trainings"
DATA_LOADS = "data-loads"
DISPATCH_FAILURES = "dispatch-failures"
SLOW = "training-slow"
SPLIT_CLI = "backtest-split-cli"
QUIRKS = "data-load-quirks"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    verdict: str
    operation_type: str
    at_min: float  # start, in minutes after the corpus base time
    file: str
    run: Callable[[Ktrdr], RunResult]
    keyed_by_trace: bool = False  # dispatch failures create no operation id


def _stack(*frames: tuple[str, int, str, str]) -> list[tuple[str, int, str, str]]:
    return list(frames)


ENGINE_FRAME = ("/app/ktrdr/backtesting/engine.py", 214, "run",
                "features = self._compute_features(data)")
PIPELINE_FRAME = ("/app/ktrdr/training/training_pipeline.py", 167, "load_market_data",
                  "data = repository.load_from_cache(symbol, timeframe, start_date, end_date)")


def feature_failure() -> Fault:
    exc = RuntimeError("Feature computation failed: indicator 'rsi_14' produced 312 NaN rows "
                       "after warm-up")
    return Fault("backtest.feature_compute", exc, traceback_text(_stack(
        ENGINE_FRAME,
        ("/app/ktrdr/backtesting/feature_cache.py", 98, "_compute_features",
         "raise RuntimeError(msg)"),
    ), "RuntimeError", str(exc)))


def bad_date_range() -> Fault:
    exc = ValueError("Invalid date range: start_date 2024-09-01 is after end_date 2024-03-31")
    return Fault("training.data_loading", exc, traceback_text(_stack(
        ("/app/ktrdr/training/training_pipeline.py", 141, "load_market_data",
         "validate_date_range(start_date, end_date)"),
        ("/app/ktrdr/data/validation.py", 37, "validate_date_range", "raise ValueError(msg)"),
    ), "ValueError", str(exc)))


def no_local_data() -> Fault:
    exc = DataNotFoundError("No data found for MSFT 4h between 2023-01-01 and 2024-06-30")
    return Fault("training.data_loading", exc, traceback_text(_stack(
        PIPELINE_FRAME,
        ("/app/ktrdr/data/repository/data_repository.py", 122, "load_from_cache",
         "raise DataNotFoundError(msg)"),
    ), "ktrdr.errors.exceptions.DataNotFoundError", str(exc)))


def missing_file() -> Fault:
    exc = FileNotFoundError(2, "No such file or directory", "/app/data/TSLA_5m.csv")
    return Fault("backtest.data_loading", exc, traceback_text(_stack(
        ("/app/ktrdr/backtesting/engine.py", 188, "run", "data = self._load_data()"),
        ("/app/ktrdr/data/local_data_loader.py", 74, "load", "with open(path) as fh:"),
    ), "FileNotFoundError", str(exc)))


# ------------------------------------------------------------------------ scenario bodies


def workers_busy(k: Ktrdr) -> RunResult:
    """Both backtest workers busy with other operations: total "4", capable "2", available "0"."""
    saved = [w.status for w in k.registry]
    for w in k.registry:
        if w.worker_type == "backtesting":
            w.status = "busy"
    try:
        return run_backtest(k, BacktestPlan(symbol="NVDA", strategy="momentum_breakout"))
    finally:
        for w, status in zip(k.registry, saved, strict=True):
            w.status = status


def no_workers(k: Ktrdr) -> RunResult:
    """Backend just restarted, no worker re-registered yet; afterwards they come back with new
    process suffixes (a new Jaeger service name per restart)."""
    k.registry.clear()
    result = run_backtest(k, BacktestPlan(symbol="SPY", timeframe="1d"))
    k.restart_workers()
    return result


def no_capable_workers(k: Ktrdr) -> RunResult:
    """A design-era backend (documented dialect) with only training workers registered."""
    saved = list(k.registry)
    k.registry[:] = [w for w in k.registry if w.worker_type == "training"]
    k.registry_dialect = "documented"
    try:
        return run_backtest(k, BacktestPlan(symbol="QQQ", timeframe="4h"))
    finally:
        k.registry_dialect = "real"
        k.registry[:] = saved


def skewed_ib_host(k: Ktrdr) -> RunResult:
    """The IB host service runs natively on the Mac; its clock is 2.5 s behind the containers',
    so its spans start before their parent client span (Jaeger's clock-skew material)."""
    k.ib.skew_ns = -2_500_000_000
    try:
        return run_data_load(k, DataLoadPlan(symbol="MSFT", instrument_type="STK", segments=2,
                                             segment_s=4.1))
    finally:
        k.ib.skew_ns = 0


def stuck(k: Ktrdr) -> RunResult:
    return run_training(k, TrainingPlan(symbols="AAPL", timeframes="1h", follow=False,
                                        stop_after="training.data_loading"))


def _scenarios() -> list[Scenario]:
    bt, tr, dl = "backtesting", "training", "data_load"
    return [
        Scenario("healthy_backtest_aapl", "healthy", bt, 0, BACKTESTS,
                 lambda k: run_backtest(k, BacktestPlan())),
        Scenario("healthy_training_aapl_msft", "healthy", tr, 5, TRAININGS,
                 lambda k: run_training(k, TrainingPlan())),
        Scenario("healthy_data_load_eurusd", "healthy", dl, 14, DATA_LOADS,
                 lambda k: run_data_load(k, DataLoadPlan())),
        Scenario("healthy_backtest_msft", "healthy", bt, 18, BACKTESTS,
                 lambda k: run_backtest(k, BacktestPlan(symbol="MSFT", data_loading_s=3.9,
                                                        feature_compute_s=12.4,
                                                        simulation_s=41.0))),
        Scenario("healthy_training_googl", "healthy", tr, 22, TRAININGS,
                 lambda k: run_training(k, TrainingPlan(symbols="GOOGL", timeframes="1h",
                                                        data_loading_s=33.0, indicators_s=64.0,
                                                        fuzzy_s=21.0,
                                                        model_training_s=228.0))),
        Scenario("failed_backtest_feature_compute", "failed", bt, 32, BACKTESTS,
                 lambda k: run_backtest(k, BacktestPlan(symbol="AMZN",
                                                        fault=feature_failure()))),
        Scenario("invalid_input_training_date_range", "invalid_input", tr, 36, TRAININGS,
                 lambda k: run_training(k, TrainingPlan(start_date="2024-09-01",
                                                        end_date="2024-03-31",
                                                        fault=bad_date_range()))),
        Scenario("data_missing_training_no_local_data", "data_missing", tr, 40, TRAININGS,
                 lambda k: run_training(k, TrainingPlan(fault=no_local_data()))),
        Scenario("data_missing_backtest_file_not_found", "data_missing", bt, 44, BACKTESTS,
                 lambda k: run_backtest(k, BacktestPlan(symbol="TSLA", timeframe="5m",
                                                        fault=missing_file()))),
        Scenario("service_unreachable_ib_host_refused", "service_unreachable", dl, 48,
                 DATA_LOADS,
                 lambda k: run_data_load(k, DataLoadPlan(symbol="GBPUSD", ib_host_up=False))),
        Scenario("service_unreachable_ib_gateway_down", "service_unreachable", dl, 52,
                 DATA_LOADS,
                 lambda k: run_data_load(k, DataLoadPlan(symbol="USDJPY",
                                                         ib_gateway_up=False))),
        Scenario("workers_busy_backtest", "workers_busy", bt, 56, DISPATCH_FAILURES,
                 workers_busy, keyed_by_trace=True),
        Scenario("no_workers_backtest", "no_workers", bt, 60, DISPATCH_FAILURES, no_workers,
                 keyed_by_trace=True),
        Scenario("no_capable_workers_documented_dialect", "no_capable_workers", bt, 64,
                 DISPATCH_FAILURES, no_capable_workers, keyed_by_trace=True),
        Scenario("healthy_backtest_split_traces", "healthy", bt, 68, SPLIT_CLI,
                 lambda k: run_backtest(k, BacktestPlan(symbol="META", simulation_s=36.0,
                                                        propagate_to_worker=False))),
        Scenario("healthy_training_nvda", "healthy", tr, 74, TRAININGS,
                 lambda k: run_training(k, TrainingPlan(symbols="NVDA", data_loading_s=41.0,
                                                        indicators_s=77.0, fuzzy_s=26.0,
                                                        model_training_s=255.0))),
        Scenario("slow_training_indicators", "slow", tr, 86, SLOW,
                 lambda k: run_training(k, TrainingPlan(symbols="AAPL,MSFT,GOOGL",
                                                        timeframes="1h,4h,1d", indicators=48,
                                                        indicators_s=2580.0))),
        Scenario("cancelled_backtest", "cancelled", bt, 92, BACKTESTS,
                 lambda k: run_backtest(k, BacktestPlan(
                     symbol="AMD", feature_compute_s=30.0, cancel_after_s=12.0,
                     cancellation_reason="Cancelled by user"))),
        Scenario("healthy_data_load_aapl", "healthy", dl, 100, DATA_LOADS,
                 lambda k: run_data_load(k, DataLoadPlan(symbol="AAPL", instrument_type="STK",
                                                         segments=2))),
        Scenario("healthy_backtest_spy", "healthy", bt, 106, BACKTESTS,
                 lambda k: run_backtest(k, BacktestPlan(symbol="SPY", data_loading_s=4.5,
                                                        simulation_s=35.0))),
        Scenario("healthy_data_load_skewed_ib_clock", "healthy", dl, 112, QUIRKS,
                 skewed_ib_host),
        Scenario("stuck_training_after_data_loading", "stuck", tr, 140, TRAININGS, stuck),
    ]


SCENARIOS: list[Scenario] = _scenarios()
