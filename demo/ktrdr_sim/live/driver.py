"""The CLI side (``ktrdr-cli``): runs a mix of every scenario against the live services.

Each command is a ``cli.<command>`` root span (scope ``ktrdr.cli.telemetry``) wrapping the start
call and, when following, the polling ``GET /api/v1/operations/{id}``; ``operation.id`` is set
from the start response, as ``@trace_cli_command`` does. Scenarios reuse the recorder's plans,
faults and phase durations; ``speedup`` compresses them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry.context import Context
from opentelemetry.trace import Status, StatusCode

from ktrdr_sim import instrument as ins
from ktrdr_sim.flows import BacktestPlan, DataLoadPlan, TrainingPlan
from ktrdr_sim.live import ops
from ktrdr_sim.live.client import Client
from ktrdr_sim.live.config import LiveConfig
from ktrdr_sim.live.node import Node, make_node

OUTAGE_MIN_S = 2.0  # real seconds the IB host stays down, whatever the speedup
POLL_S = {"backtest": 15.0, "train": 30.0, "data_load": 5.0}
START = {"backtest": "/api/v1/backtests/start", "train": "/api/v1/trainings/start",
         "data_load": "/api/v1/data/acquire/download"}


@dataclass(slots=True)
class Outcome:
    """What one CLI command saw: the HTTP status of the start call and the final status."""

    start_status: int | None
    operation_id: str | None = None
    final_status: str | None = None


class Driver:
    def __init__(self, cfg: LiveConfig) -> None:
        self.node: Node = make_node(cfg, "ktrdr-cli", "host")
        self.client = Client(self.node)
        self.api = cfg.backend_url.rstrip("/")

    # ------------------------------------------------------------------------ the CLI

    def command(self, command: str, plan: BacktestPlan | TrainingPlan | DataLoadPlan,
                fault: str = "", *, follow: bool = True, cancel_after_s: float | None = None
                ) -> Outcome:
        """``ktrdr <command>``: start the operation, then follow it until it ends."""
        node = self.node
        wire = ops.plan_to_wire(plan, fault)
        args = {k: wire[k] for k in ("symbol", "symbols", "timeframe", "timeframes",
                                     "strategy", "start_date", "end_date") if k in wire}
        with ins.span(node.world, node.proc, f"cli.{command}", None, scope=ins.CLI_TELEMETRY,
                      attributes={"cli.command": command,
                                  "cli.args": json.dumps(args, sort_keys=True)}) as (root, ctx):
            resp = self.client.call(ctx, "POST", self.api + START[command], {"plan": wire})
            if resp is None or resp.status_code != 200:
                status = None if resp is None else resp.status_code
                root.set_status(Status(StatusCode.ERROR, f"Backend returned HTTP {status}"
                                       if status else "Could not reach the backend"))
                return Outcome(status)
            op_id = str(resp.json()["operation_id"])
            root.set_attribute("operation.id", op_id)
            out = Outcome(200, op_id)
            if follow:
                out.final_status = self._follow(ctx, command, op_id, cancel_after_s)
        return out

    def _follow(self, ctx: Context, command: str, op_id: str, cancel_after_s: float | None
                ) -> str | None:
        node = self.node
        url = f"{self.api}/api/v1/operations/{op_id}"
        started = time.monotonic()
        cancel_at = None if cancel_after_s is None else started + node.cfg.real_s(cancel_after_s)
        poll = node.cfg.real_s(POLL_S[command])
        while not node.stopping.is_set():
            wait = poll
            if cancel_at is not None:
                wait = min(poll, max(0.0, cancel_at - time.monotonic()))
            node.stopping.wait(wait)
            if cancel_at is not None and time.monotonic() >= cancel_at:
                self.client.call(ctx, "DELETE", url, {"reason": "Cancelled by user"})  # Ctrl-C
                cancel_at = None
            resp = self.client.call(ctx, "GET", url)
            if resp is not None and resp.status_code == 200:
                status = str(resp.json()["data"]["status"])
                if status in ops.TERMINAL:
                    return status
        return None

    # --------------------------------------------------------------- simulator controls

    def wait_for_workers(self, backtesting: int, training: int, timeout_s: float = 60.0) -> bool:
        """Until enough workers of each type are registered and available."""
        return self.wait_until(lambda: (self.available("backtesting") or 0) >= backtesting
                               and (self.available("training") or 0) >= training, timeout_s)

    def available(self, worker_type: str) -> int | None:
        """Available workers of a type in the backend's registry (None: no answer)."""
        resp = self.client.plain("GET", f"{self.api}/_sim/state")
        if resp is None or resp.status_code != 200:
            return None
        return sum(1 for w in resp.json()["workers"]
                   if w["worker_type"] == worker_type and w["status"] == "available")

    def wait_until(self, condition: Callable[[], bool], timeout_s: float = 30.0) -> bool:
        """Poll a condition on the wall clock (bounded)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self.node.stopping.is_set():
            if condition():
                return True
            self.node.stopping.wait(0.05)
        return False

    def control(self, url: str, body: dict[str, object] | None = None) -> None:
        self.client.plain("POST", url, body or {})


# ------------------------------------------------------------------------------ scenarios

Scenario = Callable[[Driver], None]


def healthy_backtest(d: Driver) -> None:
    d.command("backtest", BacktestPlan())


def healthy_training(d: Driver) -> None:
    d.command("train", TrainingPlan(symbols="GOOGL", timeframes="1h", data_loading_s=33.0,
                                    indicators_s=64.0, fuzzy_s=21.0, model_training_s=228.0))


def healthy_data_load(d: Driver) -> None:
    d.command("data_load", DataLoadPlan())


def failed_backtest(d: Driver) -> None:
    d.command("backtest", BacktestPlan(symbol="AMZN"), "feature_compute_error")


def invalid_input_training(d: Driver) -> None:
    d.command("train", TrainingPlan(start_date="2024-09-01", end_date="2024-03-31"),
              "bad_date_range")


def data_missing_training(d: Driver) -> None:
    d.command("train", TrainingPlan(), "no_local_data")


def data_missing_backtest(d: Driver) -> None:
    d.command("backtest", BacktestPlan(symbol="TSLA", timeframe="5m"), "file_not_found")


def ib_host_down(d: Driver) -> None:
    """The IB host service stops listening: the backend's call is refused."""
    health = f"{d.node.cfg.ib_url}/health"
    d.control(f"{d.node.cfg.ib_url}/_sim/outage",
              {"real_seconds": max(OUTAGE_MIN_S, d.node.cfg.real_s(30.0))})
    d.wait_until(lambda: d.client.plain("GET", health) is None)
    d.command("data_load", DataLoadPlan(symbol="GBPUSD"))
    d.wait_until(lambda: d.client.plain("GET", health) is not None)


def ib_gateway_down(d: Driver) -> None:
    d.command("data_load", DataLoadPlan(symbol="USDJPY", ib_gateway_up=False))


def workers_busy(d: Driver) -> None:
    """Both backtest workers take a long backtest; a third finds none available (503)."""
    long = [threading.Thread(target=d.command, args=("backtest", BacktestPlan(
        symbol=s, simulation_s=60.0)), daemon=True) for s in ("MSFT", "SPY")]
    for t in long:
        t.start()
    d.wait_until(lambda: d.available("backtesting") == 0)
    d.command("backtest", BacktestPlan(symbol="NVDA", strategy="momentum_breakout"))
    for t in long:
        t.join()


def no_workers(d: Driver) -> None:
    """The backend restarted; no worker has re-registered yet."""
    d.control(f"{d.api}/_sim/restart")
    d.command("backtest", BacktestPlan(symbol="SPY", timeframe="1d"))
    d.wait_for_workers(2, 2)


def no_capable_workers(d: Driver) -> None:
    """Only training workers are registered when a backtest arrives."""
    d.control(f"{d.api}/_sim/forget", {"worker_type": "backtesting"})
    d.command("backtest", BacktestPlan(symbol="QQQ", timeframe="4h"))
    d.wait_for_workers(2, 2)


def slow_training(d: Driver) -> None:
    d.command("train", TrainingPlan(symbols="AAPL,MSFT,GOOGL", timeframes="1h,4h,1d",
                                    indicators=48, indicators_s=600.0))


def cancelled_backtest(d: Driver) -> None:
    d.command("backtest", BacktestPlan(symbol="AMD", feature_compute_s=30.0),
              cancel_after_s=12.0)


def stuck_training(d: Driver) -> None:
    """The worker hangs after data loading; the CLI does not follow (``--no-follow``)."""
    d.command("train", TrainingPlan(symbols="AAPL", timeframes="1h",
                                    stop_after="training.data_loading"), follow=False)


# Order matters: healthy trainings first, so "slow" has a baseline in the same cycle.
SCENARIOS: dict[str, Scenario] = {
    "healthy_backtest": healthy_backtest,
    "healthy_training": healthy_training,
    "healthy_data_load": healthy_data_load,
    "failed_backtest": failed_backtest,
    "invalid_input_training": invalid_input_training,
    "data_missing_training": data_missing_training,
    "data_missing_backtest": data_missing_backtest,
    "ib_host_down": ib_host_down,
    "ib_gateway_down": ib_gateway_down,
    "workers_busy": workers_busy,
    "no_workers": no_workers,
    "no_capable_workers": no_capable_workers,
    "slow_training": slow_training,
    "cancelled_backtest": cancelled_backtest,
    "stuck_training": stuck_training,
}
DEFAULT_WEIGHTS = {name: 1 for name in SCENARIOS} | {"healthy_training": 2,
                                                      "healthy_backtest": 2}


def parse_mix(text: str) -> dict[str, int]:
    """``name=weight,…`` over the defaults (weight = runs per cycle; 0 leaves it out).

    A bare list of names (``healthy_backtest,stuck_training``) runs only those, once each.
    """
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        return dict(DEFAULT_WEIGHTS)
    weights = dict(DEFAULT_WEIGHTS) if all("=" in x for x in items) else {}
    for item in items:
        name, _, weight = item.partition("=")
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
        weights[name] = int(weight) if weight else 1
    return weights


def cycle(weights: dict[str, int]) -> list[str]:
    """One cycle: every scenario ``weight`` times, in the fixed order."""
    return [name for name in SCENARIOS for _ in range(weights.get(name, 0))]


def run(driver: Driver, log: Callable[[str], None] = print) -> int:
    """Run cycles of the mix until ``cycles`` are done (0 = forever) or the node stops."""
    cfg = driver.node.cfg
    weights = parse_mix(cfg.mix)
    try:
        if not driver.wait_for_workers(2, 2, timeout_s=120.0):
            log("ktrdr_sim.live driver: workers did not register within 120 s")
            return 1
        done = 0
        while not driver.node.stopping.is_set() and (cfg.cycles == 0 or done < cfg.cycles):
            for name in cycle(weights):
                if driver.node.stopping.is_set():
                    break
                log(f"ktrdr_sim.live driver: {name}")
                SCENARIOS[name](driver)
                driver.node.sleep(cfg.gap_s)
            done += 1
            log(f"ktrdr_sim.live driver: cycle {done} done")
    finally:
        driver.client.close()
        driver.node.shutdown()
    return 0
