"""Operation values made a group at a time give what making them all at once gives, and a
group nobody asks for is never made; ``Globs.known`` answers as the compiled globs do."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import pytest
from opdiag.diagnosis.bottleneck import Choice
from opdiag.diagnosis.facts import OperationFacts
from opdiag.diagnosis.neighbours import Worker, WorkerAssessment
from opdiag.diagnosis.op_values import declared_values, operation_values
from opdiag.diagnosis.result import Bottleneck
from opdiag.globs import _MAX_SEEN, Globs
from opdiag.model import Span

T0 = 1_763_800_000_000_000
DECLARED = {"symbol": ("data.symbol", "cli.args#kwargs.symbol"), "strategy": ("strategy",)}


def _span(span_id: str, attributes: dict[str, Any]) -> Span:
    return Span(
        trace_id="a" * 32,
        span_id=span_id,
        name="training.run",
        service="ktrdr-training-worker",
        start_us=T0,
        duration_us=5_000_000,
        attributes=attributes,
    )


class CountingAssessment(WorkerAssessment):
    """A worker assessment that counts how often its template values are made."""

    calls: list[str | None] = msgspec.field(default_factory=list)

    def values(self, operation_type: str | None) -> dict[str, Any]:
        self.calls.append(operation_type)
        return WorkerAssessment.values(self, operation_type)


def _assessment() -> CountingAssessment:
    worker = Worker("ktrdr-training-worker", "10.0.0.7:5004", True)
    return CountingAssessment(worker, True, last_seen_us=T0 + 5_000_000)


def _facts() -> OperationFacts:
    return OperationFacts(
        operation_id="op_training_20251122_101500_1a2b3c4d",
        operation_type="training",
        status="completed",
        finished=True,
        start_us=T0,
        end_us=T0 + 90_000_000,
        trace_count=2,
    )


def _choice() -> Choice:
    result = Bottleneck(
        trace_id="a" * 32,
        span_id="0" * 15 + "1",
        service="ktrdr-training-worker",
        span_name="training.run",
        self_time_ms=5000.0,
        share=0.42,
        duration_ms=5000.0,
    )
    return Choice(result=result)


VALUED = [
    _span("0" * 15 + "1", {"cli.args": '{"kwargs": {"symbol": "EURUSD"}}'}),
    _span("0" * 15 + "2", {"strategy": "mlp_v3", "data.symbol": "GBPUSD"}),
]


def _lazy(workers: WorkerAssessment) -> Any:
    return operation_values(
        _facts(),
        _choice(),
        "op_training_20251122_101500_1a2b3c4d",
        T0 + 100_000_000,
        workers=workers,
        valued=VALUED,
        declared=DECLARED,
    )


def test_full_is_the_base_with_the_worker_and_declared_values() -> None:
    workers = _assessment()
    full = _lazy(workers).full()
    expected_worker = WorkerAssessment.values(workers, "training")
    expected_declared = declared_values(VALUED, DECLARED)
    assert expected_worker["worker.on"] == " on ktrdr-training-worker at 10.0.0.7:5004"
    assert expected_declared == {"op:symbol": "EURUSD", "op:strategy": "mlp_v3"}  # first carrier
    assert {k: full[k] for k in expected_worker} == expected_worker
    assert {k: full[k] for k in expected_declared} == expected_declared
    assert full["minutes"] == "1.5"
    assert full["operation.id"] == "op_training_20251122_101500_1a2b3c4d"
    assert full["share"] == "42 %"
    base = set(full) - set(expected_worker) - set(expected_declared)
    assert not any(k.startswith(("worker.", "op:")) for k in base)


@pytest.mark.parametrize(
    "key",
    ["minutes", "operation.id", "worker.on", "worker.last_seen", "op:symbol", "op:missing", "x"],
)
def test_each_value_is_the_same_asked_first_or_last(key: str) -> None:
    full = _lazy(_assessment()).full()
    assert _lazy(_assessment()).get(key) == full.get(key)
    assert _lazy(_assessment()).get(key, "fallback") == full.get(key, "fallback")


def test_a_group_is_made_only_when_one_of_its_values_is_asked_for() -> None:
    workers = _assessment()
    values = _lazy(workers)
    assert values.get("minutes") == "1.5"
    assert values.get("op:symbol") == "EURUSD"
    assert workers.calls == []
    assert values.get("worker.type") == "training"
    assert values.get("worker.service") == "ktrdr-training-worker"
    values.full()
    assert workers.calls == ["training"]


def test_full_is_a_copy() -> None:
    values = _lazy(_assessment())
    first = values.full()
    first["minutes"] = "changed"
    assert values.full()["minutes"] == "1.5"
    assert values.get("minutes") == "1.5"


def test_known_answers_as_the_globs_and_stays_bounded() -> None:
    globs = Globs.of(("ktrdr-*-worker*", "backtest-?"))
    texts = ["ktrdr-training-worker-1", "ktrdr-backend", "backtest-1", "backtest-12"]
    texts += ["KTRDR-x-worker", ""]
    texts += [f"svc-{i}" for i in range(_MAX_SEEN + 10)]
    for text in texts * 2:
        assert globs.known(text) is globs(text)
    assert len(globs.seen) <= _MAX_SEEN
    assert globs == Globs.of(("ktrdr-*-worker*", "backtest-?"))  # the memo is no part of it
    assert hash(globs) == hash(dataclasses.replace(globs, seen={}))


def test_a_declared_value_in_json_nested_too_deep_comes_from_the_next_span() -> None:
    """A hostile ``cli.args`` nested deeper than the JSON parser goes reads as absent, as a
    rule's ``cli.args#…`` condition reads it (``conditions.json_field``), not as a crash."""
    deep = '{"kwargs": ' + "[" * 9000 + "]" * 9000 + "}"
    valued = [_span("0" * 15 + "1", {"cli.args": deep}), *VALUED[1:]]
    assert declared_values(valued, DECLARED) == declared_values(VALUED[1:], DECLARED)
    assert declared_values(valued, DECLARED)  # the other span still answers
