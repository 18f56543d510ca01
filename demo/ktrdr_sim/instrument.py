"""KTRDR's own instrumentation, re-created on the SDK: service spans, attribute mapping, errors.

Mirrors ``ktrdr/monitoring/service_telemetry.py``: keyword arguments are mapped through
``ATTRIBUTE_MAPPING`` and *every* value goes through ``str()`` (so counts become strings and
``None`` becomes ``"None"``); exceptions become span events via ``record_exception``. Every
KTRDR span the recording saw, operation bookkeeping included, is in the one scope
``ktrdr.monitoring.service_telemetry``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from ktrdr_sim.clock import Unwound
from ktrdr_sim.runtime import Process, World

SERVICE_TELEMETRY = "ktrdr.monitoring.service_telemetry"
WORKER_REGISTRY = "ktrdr.api.services.worker_registry"  # the documented (design-era) dialect
BACKTEST_ENGINE = "ktrdr.backtesting.engine"
TRAINING_PIPELINE = "ktrdr.training.training_pipeline"
CLI_TELEMETRY = "ktrdr.cli.telemetry"
IB_CONNECTION = "ib.connection"
IB_FETCHER = "ib.data_fetcher"

ATTRIBUTE_MAPPING = {
    "symbol": "data.symbol",
    "timeframe": "data.timeframe",
    "strategy": "training.strategy",
    "epochs": "training.epochs",
    "batch_size": "training.batch_size",
    "model_id": "model.id",
    "operation_id": "operation.id",
    "start_date": "data.start_date",
    "end_date": "data.end_date",
}


def service_attributes(method: str | None = None, **kwargs: Any) -> dict[str, str]:
    """``create_service_span``'s attributes: mapped keys, unmapped kept, all values ``str()``."""
    attrs: dict[str, str] = {}
    if method is not None:
        attrs["service.method"] = method
    for key, value in kwargs.items():
        attrs[ATTRIBUTE_MAPPING.get(key, key)] = str(value)
    return attrs


@contextmanager
def span(
    world: World,
    proc: Process,
    name: str,
    parent: Context | None,
    *,
    scope: str = SERVICE_TELEMETRY,
    scope_version: str | None = None,
    schema_url: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Iterator[tuple[Span, Context]]:
    """A span from ``proc`` started and ended at the injected clock's instants.

    Yields the span and a context holding it, for children (including children that will
    start after this span ended: KTRDR's background tasks inherit the request context). A span
    whose process is killed, or still open when the recording stops, never ends and so is
    never exported.
    """
    tracer = proc.tracer(scope, scope_version, schema_url)
    sp = tracer.start_span(
        name,
        context=parent if parent is not None else Context(),
        kind=kind,
        attributes=dict(attributes or {}),
        start_time=world.clock.now_ns() + proc.skew_ns,
    )
    try:
        yield sp, trace.set_span_in_context(sp, Context())
    except (Unwound, GeneratorExit):
        raise
    except BaseException:
        sp.end(end_time=world.clock.now_ns() + proc.skew_ns)
        raise
    sp.end(end_time=world.clock.now_ns() + proc.skew_ns)


def traceback_text(frames: list[tuple[str, int, str, str]], exc_type: str, message: str) -> str:
    """A Python traceback with fixed in-container paths (no machine-dependent values)."""
    lines = ["Traceback (most recent call last):\n"]
    for path, line, func, code in frames:
        lines.append(f'  File "{path}", line {line}, in {func}\n    {code}\n')
    lines.append(f"{exc_type}: {message}\n" if message else f"{exc_type}\n")
    return "".join(lines)


def record_error(
    world: World,
    sp: Span,
    exc: BaseException,
    stacktrace: str,
    *,
    events: int = 1,
    status_message: str | None = None,
    skew_ns: int = 0,
) -> None:
    """``record_exception`` (an event, not attributes) plus status ERROR, at the clock's now.

    As recorded: ``exception.escaped`` is ``False`` and the status message is
    ``"<Type>: <message>"``. Spans whose exception passes through both KTRDR's handler and
    the SDK's ``start_as_current_span`` carry the event twice (``events=2``).
    """
    for _ in range(events):
        sp.record_exception(
            exc,
            attributes={"exception.stacktrace": stacktrace},
            timestamp=world.clock.now_ns() + skew_ns,
            escaped=False,
        )
    message = status_message if status_message is not None else (
        f"{type(exc).__name__}: {exc}")
    sp.set_status(Status(StatusCode.ERROR, message))


def mark_ok(sp: Span) -> None:
    """``trace_service_method`` sets status OK on success."""
    sp.set_status(Status(StatusCode.OK))
