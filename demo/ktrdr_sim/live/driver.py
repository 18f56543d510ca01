"""The CLI side (``ktrdr-cli``): runs a mix of every scenario against the live services.

Each command is a ``cli.<command>`` root span (scope ``ktrdr.cli.telemetry``) wrapping the start
call (retried on 500 and 503, as the CLI does) and, when following, the polling ``GET
/api/v1/operations/{id}``; as recorded it carries no ``operation.id``, and it is OK when the
command succeeded, ERROR ``Exit: 1`` when workers stayed unavailable, UNSET otherwise. ``ktrdr
cancel`` is a command (a trace) of its own. Scenarios reuse the recorder's plans, faults and
durations; ``speedup`` compresses them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from opentelemetry.context import Context

from ktrdr_sim import instrument as ins
from ktrdr_sim.errors import Exit
from ktrdr_sim.flows import POLL_S, START, BacktestPlan, DataLoadPlan, TrainingPlan, cli_kwargs
from ktrdr_sim.ktrdr import EXIT_STACK
from ktrdr_sim.live import ops
from ktrdr_sim.live.client import Client
from ktrdr_sim.live.config import LiveConfig
from ktrdr_sim.live.node import EXPORT_DELAY_S, Node, make_node

OUTAGE_MIN_S = 2.0  # real seconds the IB host stays down, whatever the speedup
CLICK_CONTEXT = "<click.core.Context object at 0x7f3c9a2b1e50>"
RETRIES = {"backtest": 4, "train": 4, "data_load": 1}
BACKOFF_S = (1.5, 2.4, 4.7)
LONG_TRAINING = {"strategy": "v3_long", "end_date": "2023-12-31", "rows": 6240,
                 "data_loading_s": 0.26, "loop_s": 600.0}


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
                fault: str = "", *, follow: bool = True) -> Outcome:
        """``ktrdr <command>``: start the operation, then follow it until it ends."""
        node = self.node
        wire = ops.plan_to_wire(plan, fault)
        shown = replace(plan, follow=follow) if not isinstance(plan, DataLoadPlan) else plan
        args = json.dumps({"args": [], "kwargs": cli_kwargs(command, shown, CLICK_CONTEXT)})
        with ins.span(node.world, node.proc, f"cli.{command}", None, scope=ins.CLI_TELEMETRY,
                      attributes={"cli.command": command, "cli.args": args}) as (root, ctx):
            if command == "data_load":
                self.client.call(ctx, "GET", f"{self.api}/api/v1/health")
            resp = None
            for attempt in range(RETRIES[command]):
                resp = self.client.call(ctx, "POST", self.api + START[command][-1],
                                        {"plan": wire})
                if resp is None or resp.status_code not in (500, 503) \
                        or attempt == RETRIES[command] - 1:
                    break
                node.sleep(BACKOFF_S[min(attempt, 2)])
            status = None if resp is None else resp.status_code
            if status == 503:
                ins.record_error(node.world, root, Exit("1"), EXIT_STACK, events=2)
                return Outcome(status)
            if status != 200 or resp is None:
                return Outcome(status)
            answer = resp.json()
            op_id = str(answer.get("operation_id") or answer.get("task_id"))
            out = Outcome(200, op_id)
            if follow:
                out.final_status = self._follow(ctx, command, op_id)
            if not follow or out.final_status == "completed" or command == "data_load":
                ins.mark_ok(root)
        return out

    def cancel(self, op_id: str) -> None:
        """``ktrdr cancel <id>``: a trace of its own."""
        node = self.node
        kwargs = {"ctx": CLICK_CONTEXT, "operation_id": op_id, "reason": None,
                  "force": False}
        with ins.span(node.world, node.proc, "cli.cancel", None, scope=ins.CLI_TELEMETRY,
                      attributes={"cli.command": "cancel",
                                  "cli.args": json.dumps({"args": [], "kwargs": kwargs})}) as (
                root, ctx):
            self.client.call(ctx, "DELETE", f"{self.api}/api/v1/operations/{op_id}",
                             {"reason": None})
            ins.mark_ok(root)

    def _follow(self, ctx: Context, command: str, op_id: str) -> str | None:
        node = self.node
        url = f"{self.api}/api/v1/operations/{op_id}"
        while not node.stopping.wait(node.cfg.real_s(POLL_S[command])):
            resp = self.client.call(ctx, "GET", url)
            if resp is not None and resp.status_code == 200:
                status = str(resp.json()["data"]["status"])
                if status in ops.TERMINAL:
                    return status
        return None

    # --------------------------------------------------------------- simulator controls

    def state(self) -> dict[str, Any]:
        """The backend's registry and operation records (None parts when it does not answer)."""
        resp = self.client.plain("GET", f"{self.api}/_sim/state")
        if resp is None or resp.status_code != 200:
            return {"workers": [], "operations": {}}
        return dict(resp.json())

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

    def operation_status(self, op_id: str) -> str | None:
        return self.state()["operations"].get(op_id)

    def worker_of(self, op_id: str) -> str | None:
        """The endpoint of the worker the backend sent the operation to."""
        for w in self.state()["workers"]:
            if w.get("current_operation_id") == op_id:
                return str(w["endpoint_url"])
        return None

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
    d.command("backtest", BacktestPlan(simulation_s=8.0))


def healthy_training(d: Driver) -> None:
    d.command("train", TrainingPlan(symbols="GOOGL", loop_s=180.0))


def healthy_data_load(d: Driver) -> None:
    d.command("data_load", DataLoadPlan())


def failed_backtest(d: Driver) -> None:
    d.command("backtest", BacktestPlan(symbol="AMZN"), "feature_compute_error")


def invalid_input_training(d: Driver) -> None:
    """Start after end: KTRDR fails it with a misleading 'No data found'."""
    d.command("train", TrainingPlan(start_date="2023-06-30", end_date="2023-01-01"), "no_data")


def invalid_input_strategy(d: Driver) -> None:
    """A training of a strategy file that does not exist: 400, a ValidationError on
    ``training.start``."""
    d.command("train", TrainingPlan(strategy="no_such_strategy"), follow=False)


def invalid_input_backtest(d: Driver) -> None:
    """A strategy that does not exist: 400, nothing in ERROR on the backend."""
    d.command("backtest", BacktestPlan(strategy="no_such_strategy", model_path=None))


def data_missing_training(d: Driver) -> None:
    d.command("train", TrainingPlan(symbols="ZZZZ"), "no_data")


def data_missing_backtest(d: Driver) -> None:
    d.command("backtest", BacktestPlan(strategy="v3_badsym", symbol="ZZZZ"), "no_data")


def ib_host_down(d: Driver) -> None:
    """The IB host service stops listening: the backend's call is refused."""
    health = f"{d.node.cfg.ib_url}/health"
    d.control(f"{d.node.cfg.ib_url}/_sim/outage",
              {"real_seconds": max(OUTAGE_MIN_S, d.node.cfg.real_s(30.0))})
    d.wait_until(lambda: d.client.plain("GET", health) is None)
    d.command("data_load", DataLoadPlan(symbol="GBPUSD"))
    d.wait_until(lambda: d.client.plain("GET", health) is not None)


def ib_gateway_down(d: Driver) -> None:
    """The IB Gateway goes down: the host service's connection loop is refused (its own
    ib.connect traces) and the backend's validation requests time out four times."""
    ib = d.node.cfg.ib_url
    d.control(f"{ib}/_sim/gateway", {"up": False})
    out = d.command("data_load", DataLoadPlan(symbol="USDJPY"))
    if out.operation_id is not None:  # until the backend's own timeouts gave up too
        d.node.sleep(140.0)
    d.control(f"{ib}/_sim/gateway", {"up": True})


def workers_busy(d: Driver) -> None:
    """Both backtest workers take a long backtest; a third finds none available (503)."""
    long = [threading.Thread(target=d.command, args=("backtest", BacktestPlan(
        symbol=s, simulation_s=60.0)), daemon=True) for s in ("MSFT", "SPY")]
    for t in long:
        t.start()
    d.wait_until(lambda: d.available("backtesting") == 0)
    d.command("backtest", BacktestPlan(symbol="NVDA"), follow=False)
    for t in long:
        t.join()


def no_workers(d: Driver) -> None:
    """The backend restarted; no worker has re-registered yet."""
    d.control(f"{d.api}/_sim/restart")
    d.command("backtest", BacktestPlan(symbol="SPY"), follow=False)
    d.wait_for_workers(2, 2)


def no_capable_workers(d: Driver) -> None:
    """Only training workers are registered when a backtest arrives."""
    d.control(f"{d.api}/_sim/forget", {"worker_type": "backtesting"})
    d.command("backtest", BacktestPlan(symbol="QQQ"), follow=False)
    d.wait_for_workers(2, 2)


def slow_training(d: Driver) -> None:
    d.command("train", TrainingPlan(**LONG_TRAINING, symbols="EURUSD"))


def cancelled_backtest(d: Driver) -> None:
    """A long backtest followed by the CLI; ``ktrdr cancel`` from another shell at 13 s."""
    out: list[Any] = []
    follower = threading.Thread(target=lambda: out.append(d.command(
        "backtest", BacktestPlan(symbol="AMD", simulation_s=60.0))), daemon=True)
    follower.start()
    d.node.sleep(13.0)
    running = [op for op, status in d.state()["operations"].items()
               if status == "running" and op.startswith("op_backtesting")]
    for op_id in running[-1:]:
        d.cancel(op_id)
    follower.join()


def worker_killed_training(d: Driver) -> None:
    """SIGKILL the training worker 33 s into a long training: the operation stays RUNNING,
    its health checks fail, it is removed, the orphan detector fails the operation; the
    worker's keeper brings a new process up later."""
    cfg = d.node.cfg
    out = d.command("train", TrainingPlan(**LONG_TRAINING), follow=False)
    if out.operation_id is None:
        return
    started = time.monotonic()
    d.node.sleep(33.0)
    # A SIGKILL loses what the worker had not exported yet; 33 s in, the real worker had
    # exported its data loading long before: whatever the speedup, wait for an export.
    d.node.stopping.wait(max(0.0, started + 2 * EXPORT_DELAY_S - time.monotonic()))
    worker = d.worker_of(out.operation_id)
    if worker is not None:
        d.control(f"{worker}/_sim/die")
    d.wait_until(lambda: d.operation_status(out.operation_id or "") == "failed",
                 cfg.real_s(cfg.removal_s + 4 * cfg.orphan_interval_s + cfg.orphan_timeout_s)
                 + 2 * cfg.health_interval_real_s + 10.0)
    d.wait_for_workers(2, 2, timeout_s=cfg.real_s(cfg.restart_after_s) + 60.0)


def stuck_training(d: Driver) -> None:
    """The training loop hangs (the worker still answers its health checks and holds the
    operation); the CLI does not follow (``--no-follow``)."""
    d.command("train", TrainingPlan(symbols="AAPL", hang=True), follow=False)


# Order matters: healthy trainings first, so "slow" has a baseline in the same cycle.
SCENARIOS: dict[str, Scenario] = {
    "healthy_backtest": healthy_backtest,
    "healthy_training": healthy_training,
    "healthy_data_load": healthy_data_load,
    "failed_backtest": failed_backtest,
    "invalid_input_training": invalid_input_training,
    "invalid_input_backtest": invalid_input_backtest,
    "invalid_input_strategy": invalid_input_strategy,
    "data_missing_training": data_missing_training,
    "data_missing_backtest": data_missing_backtest,
    "ib_host_down": ib_host_down,
    "ib_gateway_down": ib_gateway_down,
    "workers_busy": workers_busy,
    "no_workers": no_workers,
    "no_capable_workers": no_capable_workers,
    "slow_training": slow_training,
    "cancelled_backtest": cancelled_backtest,
    "worker_killed_training": worker_killed_training,
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
