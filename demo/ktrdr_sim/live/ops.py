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
from ktrdr_sim.flows import BacktestPlan, DataLoadPlan, TrainingPlan
from ktrdr_sim.ktrdr import TERMINAL, Fault
from ktrdr_sim.live.node import Node

# Faults a plan can name; the exceptions and stack traces are the corpus scenarios'.
FAULTS: dict[str, Callable[[], Fault]] = {
    "feature_compute_error": corpus.feature_failure,
    "bad_date_range": corpus.bad_date_range,
    "no_local_data": corpus.no_local_data,
    "file_not_found": corpus.missing_file,
}
PLANS = {"backtesting": BacktestPlan, "training": TrainingPlan, "data_load": DataLoadPlan}
_LOCAL_ONLY = {"fault", "follow", "propagate_to_worker", "cancel_after_s",
               "cancellation_reason"}


def plan_to_wire(plan: BacktestPlan | TrainingPlan | DataLoadPlan, fault: str = ""
                 ) -> dict[str, Any]:
    """The plan as JSON (the fault by name; CLI-side knobs stay with the CLI)."""
    data = {k: v for k, v in asdict(plan).items() if k not in _LOCAL_ONLY}
    data["fault"] = fault
    return data


def plan_from_wire(operation_type: str, data: dict[str, Any]
                   ) -> BacktestPlan | TrainingPlan | DataLoadPlan:
    """Rebuild a plan; unknown keys are ignored, an unknown fault name is an error."""
    cls = PLANS[operation_type]
    names = {f.name for f in fields(cls)} - _LOCAL_ONLY
    kwargs: dict[str, Any] = {k: v for k, v in data.items() if k in names}
    fault_name = str(data.get("fault") or "")
    if fault_name and hasattr(cls, "fault"):
        if fault_name not in FAULTS:
            raise ValueError(f"unknown fault {fault_name!r}")
        kwargs["fault"] = FAULTS[fault_name]()
    return cls(**kwargs)


@dataclass(slots=True)
class LiveOperation:
    """An operation this process runs (status, start instant, cancellation)."""

    operation_id: str
    operation_type: str
    status: str = "pending"
    started_ns: int | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    cancellation_reason: str = ""

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


def create_operation(node: Node, parent: Context, op: LiveOperation, *, with_id_on_create: bool,
                     is_backend_local: bool, symbol: str, timeframe: str) -> None:
    """``operations.create`` with its ``operation.register`` child; counts it as active."""
    kwargs = {"operation_id": op.operation_id} if with_id_on_create else {}
    with ins.span(node.world, node.proc, "operations.create", parent,
                  attributes=ins.service_attributes("operations.create", **kwargs)) as (sp, ctx):
        with ins.span(node.world, node.proc, "operation.register", ctx,
                      scope=ins.OPERATIONS_SERVICE, attributes={
                          "operation.id": op.operation_id, "data.symbol": symbol,
                          "data.timeframe": timeframe, "operation.type": op.operation_type,
                          "operation.status": "pending",
                          "operation.is_backend_local": is_backend_local}):
            pass
        ins.mark_ok(sp)
    node.metrics.apply(("created", op.operation_type))


def transition(node: Node, parent: Context, op: LiveOperation, to_status: str,
               **extra: str | int | bool) -> None:
    """``operation.state_transition``; a terminal one is counted with its duration."""
    attrs: dict[str, str | int | bool] = {
        "operation.id": op.operation_id, "operation.from_status": op.status,
        "operation.to_status": to_status}
    attrs.update(extra)
    with ins.span(node.world, node.proc, "operation.state_transition", parent,
                  scope=ins.OPERATIONS_SERVICE, attributes=attrs):
        pass
    now = node.clock.now_ns()
    op.status = to_status
    if to_status == "running":
        op.started_ns = now
    elif to_status in TERMINAL:
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
            ins.record_error(node.world, sp, fault.exc, fault.stacktrace,
                             status_message=f"{type(fault.exc).__name__}: {fault.exc}")
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
