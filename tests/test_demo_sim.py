"""The simulator's building blocks: clock, ids, attribute mapping, HTTP propagation, encoding."""

from __future__ import annotations

import base64
import random

import pytest
from ktrdr_sim import instrument as ins
from ktrdr_sim.clock import NS_PER_S, SimClock
from ktrdr_sim.encode import to_otlp_json
from ktrdr_sim.http import REFUSED, TIMED_OUT, Target, request
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


def test_sim_clock_runs_background_work_beside_the_caller_in_time_order() -> None:
    clock = SimClock(T0)
    seen: list[tuple[str, int]] = []

    def worker(name: str, seconds: float) -> None:
        clock.sleep(seconds)
        seen.append((name, clock.now_ns()))

    def main() -> None:
        slow = clock.background(lambda: worker("slow", 10))
        clock.background(lambda: worker("fast", 5))
        assert clock.now_ns() == T0  # starting work takes no time
        clock.sleep(1)
        seen.append(("main", clock.now_ns()))
        assert clock.join(slow)
        seen.append(("joined", clock.now_ns()))

    clock.run(main)
    assert seen == [("main", T0 + NS_PER_S), ("fast", T0 + 5 * NS_PER_S),
                    ("slow", T0 + 10 * NS_PER_S), ("joined", T0 + 10 * NS_PER_S)]


def test_sim_clock_join_times_out_while_the_work_goes_on() -> None:
    clock = SimClock(T0)
    done: list[int] = []

    def main() -> None:
        job = clock.background(lambda: (clock.sleep(30), done.append(clock.now_ns())))
        assert not clock.join(job, timeout_s=5)
        assert clock.now_ns() == T0 + 5 * NS_PER_S and not done
        clock.sleep(60)

    clock.run(main)
    assert done == [T0 + 30 * NS_PER_S]


def test_killed_or_unfinished_work_never_ends_its_spans() -> None:
    """A SIGKILLed process, or work still running when the recording stops, exports nothing
    that was still open; what had ended is kept."""
    clock = SimClock(T0)
    exporter = InMemorySpanExporter()
    ids = SeededIdGenerator(random.Random(1))

    def factory(resource):
        provider = TracerProvider(resource=resource, id_generator=ids)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider

    world = World(clock, factory, random.Random(1))
    worker = world.spawn("ktrdr-training-worker-0000abcd")

    def training() -> None:
        with ins.span(world, worker, "training.data_loading", None):
            clock.sleep(1)
        with ins.span(world, worker, "never.ends", None):
            clock.sleep(3600)

    def forever() -> None:
        with ins.span(world, worker, "endless.loop", None):
            while True:
                clock.sleep(10)

    def main() -> None:
        world.run_in(worker, training)
        clock.background(forever)
        clock.sleep(5)
        world.kill(worker)
        assert not worker.alive
        clock.sleep(20)

    clock.run(main)
    assert [s.name for s in exporter.get_finished_spans()] == ["training.data_loading"]


def test_recordings_are_deterministic() -> None:
    def record() -> list[tuple[str, int]]:
        clock = SimClock(T0)
        rng = random.Random(5)
        seen: list[tuple[str, int]] = []

        def actor(name: str) -> None:
            for _ in range(20):
                clock.sleep(rng.random())
                seen.append((name, clock.now_ns()))

        def main() -> None:
            jobs = [clock.background(lambda n=n: actor(n)) for n in "abc"]
            for job in jobs:
                clock.join(job)

        clock.run(main)
        return seen

    assert record() == record()


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


def test_the_backend_sends_three_asgi_events_and_a_5xx_start_is_error() -> None:
    world, exporter = make_world()
    cli = world.spawn("ktrdr-cli")
    api = world.spawn("ktrdr-api", host="127.0.0.1", port=8000, body_sends=2)
    status = request(world, cli, None, "POST",
                     Target(api, "http://127.0.0.1:8000", "/api/v1/backtests/start",
                            "/api/v1/backtests/start"), handler=lambda _c: 503)
    assert status == 503
    sends = [s for s in exporter.get_finished_spans()
             if s.name == "POST /api/v1/backtests/start http send"]
    assert [s.attributes["asgi.event.type"] for s in sends] == [
        "http.response.start", "http.response.body", "http.response.body"]
    assert sends[0].attributes["http.status_code"] == 503
    assert sends[0].status.status_code is StatusCode.ERROR
    assert sends[1].status.status_code is StatusCode.UNSET


def test_a_dead_process_refuses_and_a_slow_one_times_out() -> None:
    world, exporter = make_world()
    api = world.spawn("ktrdr-api", host="127.0.0.1", port=8000)
    host = world.spawn("ktrdr-ib-host-service", host="localhost", port=5001)
    target = Target(host, "http://localhost:5001", "/data/validate", "/data/validate")
    answers: list[int | None] = []

    def slow(_ctx) -> int:
        world.clock.sleep(100)
        return 200

    def main() -> None:
        answers.append(request(world, api, None, "POST", target, handler=slow,
                               read_timeout_s=30))
        world.kill(host)
        answers.append(request(world, api, None, "POST", target, handler=slow))

    assert isinstance(world.clock, SimClock)
    world.clock.run(main)
    assert answers == [TIMED_OUT, REFUSED]
    clients = [s for s in exporter.get_finished_spans() if s.name == "POST"]
    assert [s.status.description for s in clients] == [
        "ReadTimeout: ", "ConnectError: All connection attempts failed"]
    assert [s.events[0].attributes["exception.type"] for s in clients] == [
        "httpx.ReadTimeout", "httpx.ConnectError"]
    # the server never answered the first request (it was killed): no server span exported
    assert not [s for s in exporter.get_finished_spans() if s.name == "POST /data/validate"]
