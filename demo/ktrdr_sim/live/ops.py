"""KTRDR's OperationsService spans on a live process, and the plans sent over the wire.

Same spans, scopes and attributes as the recorder's ``Ktrdr.create_operation``/``transition``/
``phase``; the difference is that cancellation arrives from another process (an Event) instead
of a precomputed instant, and each transition also updates this process's metrics.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from opentelemetry.context import Context

from ktrdr_sim import instrument as ins
from ktrdr_sim import scenarios as corpus
from ktrdr_sim.flows import BacktestPlan, DataLoadPlan, Plan, TrainingPlan
from ktrdr_sim.ktrdr import TERMINAL, Fault
from ktrdr_sim.live.node import Node


def _no_data(plan: Plan) -> Fault:
    if isinstance(plan, TrainingPlan):
        return corpus.no_data("training.data_loading", plan.symbols.split(",")[0])
    return corpus.no_data("backtest.data_loading", plan.symbol)


# Faults a plan can name; the exceptions and stack traces are the corpus scenarios'.
FAULTS: dict[str, Callable[[Plan], Fault]] = {
    "feature_compute_error": lambda _plan: corpus.feature_failure(),
    "no_data": _no_data,
}
PLANS = {"backtesting": BacktestPlan, "training": TrainingPlan, "data_load": DataLoadPlan}
_LOCAL_ONLY = {"fault", "follow", "propagate_to_worker", "via_curl"}


def plan_to_wire(plan: Plan, fault: str = "") -> dict[str, Any]:
    """The plan as JSON (the fault by name; CLI-side knobs stay with the CLI)."""
    data = {k: v for k, v in asdict(plan).items() if k not in _LOCAL_ONLY}
    data["fault"] = fault
    return data


def plan_from_wire(operation_type: str, data: dict[str, Any]) -> Plan:
    """Rebuild a plan; unknown keys are ignored, an unknown fault name is an error."""
    cls = PLANS[operation_type]
    names = {f.name for f in fields(cls)} - _LOCAL_ONLY
    kwargs: dict[str, Any] = {k: v for k, v in data.items() if k in names}
    fault_name = str(data.get("fault") or "")
    if fault_name and fault_name not in FAULTS:
        raise ValueError(f"unknown fault {fault_name!r}")
    plan = cls(**kwargs)
    if fault_name and not isinstance(plan, DataLoadPlan):
        plan.fault = FAULTS[fault_name](plan)
    return plan


@dataclass(slots=True)
class LiveOperation:
    """An operation this process runs (status, start instant, cancellation)."""

    operation_id: str
    operation_type: str
    status: str = "pending"
    started_ns: int | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


def create_operation(node: Node, parent: Context, op: LiveOperation, *, with_id_on_create: bool,
                     symbol: str, timeframe: str) -> None:
    """``operations.create`` with its ``operation.register`` child; counts it as active. As
    recorded, every operation is registered with ``operation.is_backend_local=false``."""
    kwargs = {"operation_id": op.operation_id} if with_id_on_create else {}
    with ins.span(node.world, node.proc, "operations.create", parent,
                  attributes=ins.service_attributes("operations.create", **kwargs)) as (sp, ctx):
        with ins.span(node.world, node.proc, "operation.register", ctx, attributes={
                "operation.id": op.operation_id, "data.symbol": symbol,
                "data.timeframe": timeframe, "operation.type": op.operation_type,
                "operation.status": "pending", "operation.is_backend_local": False}) as (
                rsp, _):
            ins.mark_ok(rsp)
        ins.mark_ok(sp)
    node.metrics.apply(("created", op.operation_type))


def transition(node: Node, parent: Context | None, op: LiveOperation, to_status: str, *,
               from_status: str | None = None, **extra: str | int | bool) -> None:
    """``operation.state_transition``; a terminal one is counted with its duration."""
    attrs: dict[str, str | int | bool] = {
        "operation.id": op.operation_id, "operation.from_status": from_status or op.status,
        "operation.to_status": to_status}
    attrs.update(extra)
    with ins.span(node.world, node.proc, "operation.state_transition", parent,
                  attributes=attrs) as (sp, _):
        ins.mark_ok(sp)
    now = node.clock.now_ns()
    was_terminal = op.terminal
    op.status = to_status
    if to_status == "running":
        op.started_ns = now
    elif to_status in TERMINAL and not was_terminal:
        seconds = None if op.started_ns is None else (now - op.started_ns) / 1e9
        node.metrics.apply(("terminal", op.operation_type, to_status, seconds))


def phase(node: Node, parent: Context, op: LiveOperation, name: str, *, scope: str,
          attributes: dict[str, str | int], seconds: float, fault: Fault | None,
          after: dict[str, str | int] | None = None) -> str:
    """A worker phase span: ``ok``, ``failed`` (exception recorded) or ``cancelled``."""
    with ins.span(node.world, node.proc, name, parent, scope=scope,
                  attributes=attributes) as (sp, _):
        if fault is not None and fault.phase == name:
            node.sleep(seconds)
            ins.record_error(node.world, sp, fault.exc, fault.stacktrace)
            return "failed"
        if not quiet(node, op, seconds):
            return "cancelled"
        for key, value in (after or {}).items():
            sp.set_attribute(key, value)
    return "ok"


def quiet(node: Node, op: LiveOperation, seconds: float) -> bool:
    """Uninstrumented work; False when cancelled (or the process stops) meanwhile."""
    if op.cancelled.wait(node.cfg.real_s(seconds)):
        return False
    return not node.stopping.is_set()
