"""The demo's timeline: what happens to the simulated KTRDR, and what a correct diagnosis of
each operation says.

Modelled on the recording of the real KTRDR (``run1/ground-truth.md``): it starts with one
backtest worker (:5003) and one training worker (:5005); workers are killed mid-run, a dispatch
reaches a just-killed worker, the only backtest worker is dead (503) or busy (503), the IB host
service is down and then up without its Gateway; later every worker is replaced (5003-5006)
and the healthy, failing, slow and hung operations run. Steps run concurrently on one
simulated clock, each at its instant; the background loops (health checks, orphan detector, IB
connection loop) run beside them all along.

An expectation mirrors ``run1/cases.yaml``: the verdict (and other defensible ones), the span
the root cause must point at, words the summary must contain (formatted with the facts the
run returns, e.g. the killed worker's port), and the bottleneck.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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
from ktrdr_sim.ktrdr import WORKER_PORTS, Fault, Ktrdr, RunResult, Worker

# Corpus files (see record.py for their formats).
BACKTESTS = "backtests"
TRAININGS = "trainings"
DATA_LOADS = "data-loads"
DISPATCH_FAILURES = "dispatch-failures"
SLOW = "training-slow"
SPLIT_CLI = "backtest-split-cli"
QUIRKS = "data-load-quirks"

GAP_AFTER_DATA_LOADING = ("gap_after", "training.data_loading")
WORKER = "ktrdr-{kind}-worker-*"


@dataclass(frozen=True, slots=True)
class Expect:
    """What a correct diagnosis says (the keys of ``run1/cases.yaml``)."""

    verdict: str
    truth: str
    also_acceptable: tuple[str, ...] = ()
    root_cause: tuple[str, str] | None = None  # (service fnmatch pattern, span name)
    mentions: tuple[str, ...] = ()  # str.format()-ed with the run's facts
    bottleneck: tuple[str, str] | None = None  # ("span" | "gap_after", span name)


@dataclass
class Stage:
    """What the steps share: the deployment and the current worker of each port."""

    k: Ktrdr
    workers: dict[int, Worker] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Step:
    """Something that happens at ``at_s`` seconds after the start. A step with an expectation
    is a scenario: an operation (or a request that never became one, keyed by its trace id)
    the corpus must diagnose."""

    name: str
    at_s: float
    run: Callable[[Stage], RunResult | None]
    expect: Expect | None = None
    operation_type: str = ""
    file: str = ""
    keyed_by_trace: bool = False


def _fault(phase: str, exc: BaseException, frames: list[tuple[str, int, str, str]],
           exc_type: str) -> Fault:
    return Fault(phase, exc, traceback_text(frames, exc_type, str(exc)))


def no_data(phase: str, symbol: str) -> Fault:
    """What a phase raises when the cache has nothing for the symbol (or the date range)."""
    exc = DataNotFoundError(f"No data found in cache for {symbol} 1h")
    frame = (("/app/ktrdr/backtesting/engine.py", 188, "_load_historical_data",
              "data = self.repository.load_from_cache(")
             if phase.startswith("backtest") else
             ("/app/ktrdr/training/training_pipeline.py", 143, "load_market_data",
              "data = repository.load_from_cache("))
    return _fault(phase, exc, [frame, ("/app/ktrdr/data/repository/data_repository.py", 109,
                                       "load_from_cache", "raise DataNotFoundError(")],
                  "ktrdr.errors.exceptions.DataNotFoundError")


def feature_failure() -> Fault:
    exc = RuntimeError("Feature computation failed: indicator 'rsi_14' produced 312 NaN rows "
                       "after warm-up")
    return _fault("backtest.feature_compute", exc, [
        ("/app/ktrdr/backtesting/engine.py", 214, "run",
         "features = self._compute_features(data)"),
        ("/app/ktrdr/backtesting/feature_cache.py", 98, "_compute_features",
         "raise RuntimeError(msg)")], "RuntimeError")


TWO_YEARS = {"start_date": "2022-01-01", "end_date": "2023-12-31", "rows": 12505,
             "setup_s": 2.7, "data_loading_s": 0.1, "feature_compute_s": 0.8}
LONG_TRAINING = {"strategy": "v3_long", "end_date": "2023-12-31", "rows": 6240,
                 "data_loading_s": 0.26, "loop_s": 900.0}


# ---------------------------------------------------------------------------- world events


def setup(s: Stage) -> None:
    """The backend and the IB host service (Gateway up) start; the loops run from now on."""
    s.k.ib.start(gateway_up=True)
    s.k.start_loops()


def start_workers(kind: str, *ports: int) -> Callable[[Stage], None]:
    def run(s: Stage) -> None:
        for port in ports:
            s.workers[port] = s.k.start_worker(kind, port)
    return run


def first_workers(s: Stage) -> None:
    """One backtest worker (:5003) and one training worker (:5005), as the recording began."""
    start_workers("backtesting", 5003)(s)
    start_workers("training", 5005)(s)


def kill_worker(port: int) -> Callable[[Stage], None]:
    def run(s: Stage) -> None:
        s.k.kill_worker(s.workers[port])
    return run


def stop_ib_host(s: Stage) -> None:
    s.k.ib.stop()


def start_ib_host(gateway_up: bool) -> Callable[[Stage], None]:
    def run(s: Stage) -> None:
        s.k.ib.start(gateway_up=gateway_up)
    return run


# ------------------------------------------------------------------------- scenario bodies


def killed_mid_run(start: Callable[[], RunResult], after_s: float, s: Stage) -> RunResult:
    """Start an operation, SIGKILL its worker ``after_s`` later, wait for KTRDR to notice."""
    result = start()
    op = result.operation
    assert op is not None and op.worker is not None, "the killed scenario needs a worker"
    s.k.clock.sleep(after_s)
    s.k.kill_worker(op.worker)
    s.k.wait_terminal(op, timeout_s=900.0, step_s=15.0)
    assert op.status == "failed", "the orphan detector should have failed it"
    return result


def dead_worker_facts(result: RunResult, s: Stage, port: int) -> RunResult:
    dead = s.workers[port]
    result.facts.update(worker_port=str(port), worker_address=dead.process.address,
                        worker_service=dead.process.service_name)
    return result


def cancelled_training(s: Stage) -> RunResult:
    """A 150-epoch training started without following; ``ktrdr cancel`` 51 s later."""
    result = run_training(s.k, TrainingPlan(**LONG_TRAINING, follow=False))
    op = result.operation
    assert op is not None
    s.k.clock.sleep(51.0)
    result.trace_ids.append(s.k.cancel(op))
    return result


def cancelled_backtest(s: Stage) -> RunResult:
    """A 2-year backtest followed by the CLI; ``ktrdr cancel`` from another shell at 13 s."""
    holder: list[RunResult] = []
    job = s.k.clock.background(lambda: holder.append(run_backtest(s.k, BacktestPlan(
        symbol="AMD", **TWO_YEARS, simulation_s=60.0))))
    s.k.clock.sleep(13.0)
    op = s.k.newest_operation("backtesting")
    assert op is not None
    cancel_trace = s.k.cancel(op)
    s.k.clock.join(job)
    result = holder[0]
    result.trace_ids.append(cancel_trace)
    return result


def stale_busy(s: Stage) -> RunResult:
    """curl a backtest right after the previous one completed: until the next health check
    the registry still has the only idle worker as busy (503)."""
    k = s.k
    op = k.newest_operation("backtesting")
    assert op is not None
    k.wait_terminal(op, timeout_s=120.0, step_s=0.5)
    gap_ns = k.next_health_ns - k.clock.now_ns()
    k.clock.sleep(min(3.0, gap_ns / 2e9))
    result = run_backtest(k, BacktestPlan(symbol="MSFT", end_date="2024-03-31", via_curl=True))
    assert result.operation is None, "the stale-busy request should have got a 503"
    return result


# ---------------------------------------------------------------------------------- the steps


def _steps() -> list[Step]:
    bt, tr, dl = "backtesting", "training", "data_load"
    bt_worker, tr_worker = WORKER.format(kind="backtest"), WORKER.format(kind="training")
    healthy = Expect("healthy", "completed")
    return [
        Step("setup", 0, setup),
        Step("no_workers_backtest", 8,
             lambda s: run_backtest(s.k, BacktestPlan(follow=False)),
             Expect("no_workers", "the backend has just started and no worker has registered "
                    "yet: 503 'No backtesting workers available' (total 0); the CLI retried "
                    "four times"),
             bt, DISPATCH_FAILURES, keyed_by_trace=True),
        Step("start_workers", 25, first_workers),
        Step("healthy_backtest_eurusd", 40, lambda s: run_backtest(s.k, BacktestPlan()),
             Expect("healthy", "backtest completed in about 5 s"), bt, BACKTESTS),
        Step("healthy_training_eurusd", 60,
             lambda s: run_training(s.k, TrainingPlan(loop_s=150.0)),
             Expect("healthy", "six months of EURUSD trained in about 2.5 min, nearly all of it "
                    "the training loop, which emits no span",
                    bottleneck=GAP_AFTER_DATA_LOADING), tr, TRAININGS),
        Step("healthy_data_load_eurusd", 75, lambda s: run_data_load(s.k, DataLoadPlan()),
             Expect("healthy", "data load of 3 segments completed"), dl, DATA_LOADS),
        Step("data_missing_backtest_zzzz", 110,
             lambda s: run_backtest(s.k, BacktestPlan(
                 strategy="v3_badsym", symbol="ZZZZ", model_path="models/v3_badsym/1h_v1",
                 fault=no_data("backtest.data_loading", "ZZZZ"))),
             Expect("data_missing", "strategy on symbol ZZZZ: 'No data found in cache for "
                    "ZZZZ 1h'", root_cause=(bt_worker, "backtest.data_loading"),
                    mentions=("ZZZZ",)), bt, BACKTESTS),
        Step("invalid_input_backtest_unknown_strategy", 125,
             lambda s: run_backtest(s.k, BacktestPlan(strategy="no_such_strategy",
                                                      model_path=None,
                                                      end_date="2024-03-31")),
             Expect("invalid_input", "backtest of a strategy that does not exist: the API "
                    "answered 400; nothing on the backend is an error, only the CLI's client "
                    "span", root_cause=("ktrdr-cli", "POST"), mentions=("400",)),
             bt, DISPATCH_FAILURES, keyed_by_trace=True),
        Step("failed_backtest_feature_compute", 140,
             lambda s: run_backtest(s.k, BacktestPlan(symbol="AMZN", fault=feature_failure())),
             Expect("failed", "RuntimeError in backtest.feature_compute",
                    root_cause=(bt_worker, "backtest.feature_compute")), bt, BACKTESTS),
        Step("stop_ib_host", 200, stop_ib_host),
        Step("service_unreachable_ib_host_down", 210,
             lambda s: run_data_load(s.k, DataLoadPlan(symbol="GBPUSD")),
             Expect("service_unreachable", "nothing listened on :5001; POST /data/validate got "
                    "'All connection attempts failed'", root_cause=("ktrdr-api", "POST"),
                    mentions=("IB host", "5001")), dl, DATA_LOADS),
        Step("start_ib_host_without_gateway", 235, start_ib_host(gateway_up=False)),
        Step("service_unreachable_ib_gateway_down", 240,
             lambda s: run_data_load(s.k, DataLoadPlan(symbol="AAPL", instrument_type="STK")),
             Expect("service_unreachable", "the IB host service ran but the IB Gateway "
                    "(127.0.0.1:4002) refused every connection (its ib.connect traces); the "
                    "orphan detector failed the load at about 67 s, then 'Host service timeout: "
                    "Request timed out after 4 attempts'",
                    root_cause=("ktrdr-ib-host-service", "ib.connect"),
                    mentions=("Gateway", "4002")), dl, DATA_LOADS),
        Step("cancelled_training", 260, cancelled_training,
             Expect("cancelled", "150-epoch training cancelled with ktrdr cancel after 51 s"),
             tr, TRAININGS),
        Step("workers_busy_training", 287,
             lambda s: run_training(s.k, TrainingPlan(follow=False)),
             Expect("workers_busy", "a second training while the only training worker runs "
                    "one (its health checks answer): 503 'No training workers available'"),
             tr, DISPATCH_FAILURES, keyed_by_trace=True),
        Step("worker_lost_training_killed", 330,
             lambda s: killed_mid_run(lambda: run_training(s.k, TrainingPlan(
                 **LONG_TRAINING, follow=False)), 33.0, s),
             Expect("worker_lost", "the training worker on :{worker_port} was killed 33 s into "
                    "the training; its health checks failed, the operation stayed RUNNING, "
                    "then the orphan detector failed it in a trace of its own",
                    mentions=("{worker_port}",)), tr, TRAININGS),
        Step("kill_backtest_worker", 420, kill_worker(5003)),
        Step("worker_lost_dispatch_connect_error", 421,
             lambda s: run_backtest(s.k, BacktestPlan(end_date="2024-03-31")),
             Expect("worker_lost", "the backtest worker on :{worker_port} had just been "
                    "killed; the registry still listed it available, so the dispatch got "
                    "ConnectError and the API answered 500 (four times)",
                    also_acceptable=("service_unreachable",), root_cause=("ktrdr-api", "POST"),
                    mentions=("{worker_port}",)), bt, DISPATCH_FAILURES, keyed_by_trace=True),
        Step("worker_lost_backtest_503_dead", 456,
             lambda s: dead_worker_facts(run_backtest(s.k, BacktestPlan(
                 end_date="2024-03-31", via_curl=True)), s, 5003),
             Expect("worker_lost", "35 s after the kill the only backtest worker "
                    "(:{worker_port}) is dead, not busy: temporarily unavailable, 503; its "
                    "health checks fail", mentions=("{worker_port}",)),
             bt, DISPATCH_FAILURES, keyed_by_trace=True),
        Step("worker_lost_backtest_503_dead_cli", 470,
             lambda s: dead_worker_facts(run_backtest(s.k, BacktestPlan(
                 end_date="2024-03-31", follow=False)), s, 5003),
             Expect("worker_lost", "the same dead worker (:{worker_port}), the CLI retrying "
                    "four times", mentions=("{worker_port}",)),
             bt, DISPATCH_FAILURES, keyed_by_trace=True),
        Step("stop_ib_host_again", 585, stop_ib_host),
        Step("restart_ib_host", 600, start_ib_host(gateway_up=True)),
        Step("restart_backtest_worker", 600, start_workers(bt, 5003)),
        Step("healthy_backtest_msft", 620,
             lambda s: run_backtest(s.k, BacktestPlan(symbol="MSFT", **TWO_YEARS,
                                                      simulation_s=7.5)),
             Expect("healthy", "2-year backtest completed in about 13 s"), bt, BACKTESTS),
        Step("workers_busy_backtest_stale", 621, stale_busy,
             Expect("workers_busy", "a backtest seconds after the previous one completed: the "
                    "registry still had the worker busy until its next health check (a stale "
                    "flag); 503"), bt, DISPATCH_FAILURES, keyed_by_trace=True),
        Step("worker_lost_backtest_killed", 680,
             lambda s: killed_mid_run(lambda: run_backtest(s.k, BacktestPlan(
                 **TWO_YEARS, simulation_s=60.0, via_curl=True)), 10.0, s),
             Expect("worker_lost", "the backtest worker on :{worker_port} was killed 10 s into "
                    "a 2-year backtest; RUNNING for 6 min, then the orphan detector failed it",
                    mentions=("{worker_port}",)), bt, BACKTESTS),
        Step("healthy_data_load_aapl", 700,
             lambda s: run_data_load(s.k, DataLoadPlan(symbol="AAPL", instrument_type="STK",
                                                       segments=2)),
             healthy, dl, DATA_LOADS),
        Step("healthy_data_load_skewed_ib_clock", 740, skewed_ib_host, healthy, dl, QUIRKS),
        Step("start_workers_2", 1080, start_workers(tr, *WORKER_PORTS[tr])),
        Step("no_capable_workers_documented_dialect", 1095, documented_no_capable,
             Expect("no_capable_workers", "a design-era backend (documented dialect) with only "
                    "training workers registered"), bt, DISPATCH_FAILURES, keyed_by_trace=True),
        Step("start_backtest_workers_2", 1110, start_workers(bt, *WORKER_PORTS[bt])),
        Step("healthy_training_aapl", 1130,
             lambda s: run_training(s.k, TrainingPlan(
                 symbols="AAPL", end_date="2023-12-31", rows=6240, data_loading_s=0.3,
                 loop_s=200.0)),
             Expect("healthy", "a year of AAPL trained in about 3.5 min; 99 % of it is the "
                    "training loop, which emits no span",
                    bottleneck=GAP_AFTER_DATA_LOADING), tr, TRAININGS),
        Step("invalid_input_training_inverted_dates", 1140,
             lambda s: run_training(s.k, TrainingPlan(
                 start_date="2023-06-30", end_date="2023-01-01",
                 fault=no_data("training.data_loading", "EURUSD"))),
             Expect("invalid_input", "training asked for --start 2023-06-30 --end 2023-01-01 "
                    "(start after end); KTRDR failed it with a misleading 'No data found in "
                    "cache for EURUSD 1h'", root_cause=("ktrdr-api", "training.start"),
                    mentions=("2023-06-30", "2023-01-01")), tr, TRAININGS),
        Step("invalid_input_training_unknown_strategy", 1150,
             lambda s: run_training(s.k, TrainingPlan(strategy="no_such_strategy",
                                                      follow=False)),
             Expect("invalid_input", "training of a strategy file that does not exist: 400 "
                    "'Strategy file not found'", root_cause=("ktrdr-api", "training.start"),
                    mentions=("no_such_strategy",)),
             tr, DISPATCH_FAILURES, keyed_by_trace=True),
        Step("data_missing_training_zzzz", 1160,
             lambda s: run_training(s.k, TrainingPlan(
                 symbols="ZZZZ", fault=no_data("training.data_loading", "ZZZZ"))),
             Expect("data_missing", "training on symbol ZZZZ: 'No data found in cache for "
                    "ZZZZ 1h'", root_cause=(tr_worker, "training.data_loading"),
                    mentions=("ZZZZ",)), tr, TRAININGS),
        Step("slow_training", 1180,
             lambda s: run_training(s.k, TrainingPlan(
                 end_date="2023-12-31", rows=6240, data_loading_s=0.26, loop_s=900.0)),
             Expect("slow", "the same strategy (v3_minimal) took 15 min, five times the "
                    "healthy trainings' median; the time is the span-less training loop",
                    bottleneck=GAP_AFTER_DATA_LOADING), tr, SLOW),
        Step("healthy_backtest_split_traces", 1200,
             lambda s: run_backtest(s.k, BacktestPlan(symbol="META", simulation_s=9.0,
                                                      propagate_to_worker=False)),
             Expect("healthy", "completed; the CLI trace and the worker trace are separate "
                    "(backend-to-worker context lost)"), bt, SPLIT_CLI),
        Step("cancelled_backtest", 1230, cancelled_backtest,
             Expect("cancelled", "2-year backtest cancelled with ktrdr cancel after 13 s"),
             bt, BACKTESTS),
        Step("healthy_backtest_spy", 1300,
             lambda s: run_backtest(s.k, BacktestPlan(symbol="SPY", simulation_s=8.5)),
             healthy, bt, BACKTESTS),
        Step("healthy_training_nvda", 1400,
             lambda s: run_training(s.k, TrainingPlan(symbols="NVDA", loop_s=178.0)),
             Expect("healthy", "training on NVDA completed in about 3 min",
                    bottleneck=GAP_AFTER_DATA_LOADING), tr, TRAININGS),
        Step("stuck_training_after_data_loading", 1620,
             lambda s: run_training(s.k, TrainingPlan(symbols="AAPL", hang=True, follow=False)),
             Expect("stuck", "the training loop hung after training.data_loading; the worker "
                    "still answers its health checks and reports the operation as its own",
                    mentions=("after training.data_loading",)), tr, TRAININGS),
    ]


def skewed_ib_host(s: Stage) -> RunResult:
    """The IB host service's clock runs 2.5 s behind the backend's, so its spans start before
    their parent client span (Jaeger's clock-skew material)."""
    proc = s.k.ib.process
    assert proc is not None
    proc.skew_ns = -2_500_000_000
    try:
        return run_data_load(s.k, DataLoadPlan(symbol="MSFT", instrument_type="STK",
                                               segments=2, segment_s=4.1))
    finally:
        proc.skew_ns = 0


def documented_no_capable(s: Stage) -> RunResult:
    """A design-era backend (documented dialect) with only training workers registered."""
    s.k.registry_dialect = "documented"
    try:
        return run_backtest(s.k, BacktestPlan(symbol="QQQ", follow=False))
    finally:
        s.k.registry_dialect = "real"


STEPS: list[Step] = _steps()
SCENARIOS: list[Step] = [step for step in STEPS if step.expect is not None]
