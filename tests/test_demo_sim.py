"""The simulator's building blocks: clock, ids, attribute mapping, HTTP propagation, encoding."""

from __future__ import annotations

import base64
import random

import pytest
from ktrdr_sim import instrument as ins
from ktrdr_sim.clock import NS_PER_S, SimClock
from ktrdr_sim.encode import to_otlp_json
from ktrdr_sim.http import Target, request
from ktrdr_sim.ids import SeededIdGenerator
from ktrdr_sim.runtime import World, ktrdr_resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

T0 = 1_700_000_000 * NS_PER_S


def make_world(seed: int = 7) -> tuple[World, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    ids = SeededIdGenerator(random.Random(seed))

    def factory(resource):
        provider = TracerProvider(resource=resource, id_generator=ids)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider

    return World(SimClock(T0), factory, random.Random(seed)), exporter


def test_sim_clock_background_runs_on_a_forked_timeline() -> None:
    clock = SimClock(T0)
    seen: list[int] = []
    job = clock.background(lambda: (clock.sleep(10), seen.append(clock.now_ns())))
    assert seen == [T0 + 10 * NS_PER_S]
    assert clock.now_ns() == T0  # the caller continues from where it started the work
    clock.sleep(1)
    clock.join(job)
    assert clock.now_ns() == T0 + 10 * NS_PER_S


def test_service_attributes_map_keywords_and_stringify_everything() -> None:
    attrs = ins.service_attributes("workers.select", operation_id="op_x", symbol=None,
                                   **{"worker.total_workers": 4})
    assert attrs == {"service.method": "workers.select", "operation.id": "op_x",
                     "data.symbol": "None", "worker.total_workers": "4"}


def test_resource_ignores_the_recording_machines_otel_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "host.name=my-laptop")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "leaked")
    attrs = dict(ktrdr_resource("ktrdr-api").attributes)
    assert attrs["service.name"] == "ktrdr-api"
    assert "host.name" not in attrs
    assert attrs["telemetry.sdk.version"] == "1.38.0"


def test_seeded_ids_are_reproducible() -> None:
    a = SeededIdGenerator(random.Random(3))
    b = SeededIdGenerator(random.Random(3))
    assert [a.generate_trace_id(), a.generate_span_id()] == [
        b.generate_trace_id(), b.generate_span_id()]


def _call(propagate: bool, server_up: bool = True):
    world, exporter = make_world()
    cli = world.spawn("ktrdr-cli")
    api = world.spawn("ktrdr-api", host="backend", port=8000)
    with ins.span(world, cli, "cli.test", None) as (_, ctx):
        status = request(world, cli, ctx, "POST",
                         Target(api if server_up else None, "http://backend:8000",
                                "/api/v1/things/{id}", "/api/v1/things/1"),
                         handler=lambda _c: 201, propagate=propagate)
    return status, {s.name: s for s in exporter.get_finished_spans()}


def test_w3c_context_crosses_processes_when_propagated() -> None:
    status, spans = _call(propagate=True)
    assert status == 201
    client, server = spans["POST"], spans["POST /api/v1/things/{id}"]
    assert server.context.trace_id == client.context.trace_id
    assert server.parent is not None and server.parent.span_id == client.context.span_id
    assert server.parent.is_remote
    assert server.attributes["http.route"] == "/api/v1/things/{id}"
    assert server.attributes["http.target"] == "/api/v1/things/1"
    assert "POST /api/v1/things/{id} http receive" in spans
    assert "POST /api/v1/things/{id} http send" in spans


def test_broken_propagation_starts_a_new_trace() -> None:
    _, spans = _call(propagate=False)
    assert spans["POST /api/v1/things/{id}"].context.trace_id != spans["POST"].context.trace_id
    assert spans["POST /api/v1/things/{id}"].parent is None


def test_refused_connection_is_an_exception_event_without_status() -> None:
    status, spans = _call(propagate=True, server_up=False)
    assert status is None
    client = spans["POST"]
    assert client.status.status_code is StatusCode.ERROR
    assert "http.status_code" not in client.attributes
    (event,) = client.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "httpx.ConnectError"
    assert not any(k.startswith("exception.") for k in client.attributes)


def test_encoding_writes_hex_ids_not_protobufs_base64() -> None:
    _, spans = _call(propagate=True)
    server = spans["POST /api/v1/things/{id}"]
    doc = to_otlp_json(list(spans.values()))
    encoded = {s["name"]: s for rs in doc["resourceSpans"] for ss in rs["scopeSpans"]
               for s in ss["spans"]}
    out = encoded["POST /api/v1/things/{id}"]
    assert out["traceId"] == format(server.context.trace_id, "032x")
    assert out["spanId"] == format(server.context.span_id, "016x")
    assert out["parentSpanId"] == format(server.parent.span_id, "016x")
    assert out["traceId"] != base64.b64encode(server.context.trace_id.to_bytes(16, "big")).decode()
    assert out["kind"] == 2
    assert {a["key"]: a["value"] for a in out["attributes"]}["http.status_code"] == {
        "intValue": "201"}
