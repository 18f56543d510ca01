"""JaegerSource against the loopback replay Jaeger: detection, dialects, finding operations
across services, merging, ids, Jaeger's quirks, failures, concurrency, pooling, observer."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opdiag.devtools.replay_jaeger import Fault, ReplayJaeger
from opdiag.errors import SourceTimeoutError, SourceUnavailableError
from opdiag.settings import JaegerSettings
from opdiag.sources.jaeger import JaegerSource

DATA = Path(__file__).parent / "data" / "jaeger_replay"
T0 = 1_764_000_000  # seconds; every replayed span starts within 40 minutes of it
NOW = T0 + 3600
OP1 = "op_backtesting_20251124_160000_1a2b"
OP2 = "op_training_20251124_161000_3c4d"
OP_LEGACY = "op_legacy_20251124_003"
CLI_TRACE = "a1" * 16
DISPATCH_TRACE = "b2" * 16
TRAINING_TRACE = "c3" * 16
LEGACY_TRACE = "00000000000000001234abcd5678ef90"
WORKER1 = "ktrdr-backtest-worker-1a2b3c4d"

Replays = Callable[..., ReplayJaeger]
Sources = Callable[..., JaegerSource]


@pytest.fixture
def replay() -> Iterator[Replays]:
    started: list[ReplayJaeger] = []

    def make(*args: Any, **kwargs: Any) -> ReplayJaeger:
        server = ReplayJaeger(*(args or (DATA,)), **kwargs).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def source() -> Iterator[Sources]:
    opened: list[JaegerSource] = []

    def make(server: ReplayJaeger, **overrides: Any) -> JaegerSource:
        observer = overrides.pop("observer", None)
        settings = JaegerSettings(
            url=server.url, **{"backoff_s": 0.0, "timeout_s": 5.0, **overrides}
        )
        src = JaegerSource(settings, observer=observer, clock=lambda: NOW)
        opened.append(src)
        return src

    yield make
    for src in opened:
        src.close()


def ids(traces: list[Any]) -> list[str]:
    return [t.trace_id for t in traces]


def searched_services(server: ReplayJaeger) -> list[str]:
    out = []
    for _, path, query in server.calls:
        if path in {"/api/v3/traces", "/api/traces"}:
            for key in ("query.serviceName", "query.service_name", "service"):
                if key in query:
                    out.append(query[key][0])
    return sorted(out)


# --------------------------------------------------------------------------- detection


def test_v2_20_detects_api_v3_with_camel_case_and_remembers(replay: Replays, source: Sources):
    server = replay(flavor="v2.20")
    src = source(server)
    assert src.describe().endswith("(API not detected yet)")
    assert src.api == "v3"
    assert "api_v3, v2.20.0" in src.describe()
    src.traces_for(OP1)
    src.traces_for(OP2)
    paths = server.paths()
    assert paths.count("/") == 1  # the version was read once
    assert "/api/services" not in paths  # no legacy probe when api_v3 suffices
    searches = [q for _, p, q in server.calls if p == "/api/v3/traces"]
    assert searches
    for query in searches:
        assert {"query.serviceName", "query.startTimeMin", "query.startTimeMax"} <= set(query)
        assert query["query.attributes"][0].startswith('{"operation.id":')
        assert not any("_" in key.removeprefix("query.") for key in query)


def test_v1_has_no_api_v3_html_200_means_absent_then_legacy(replay: Replays, source: Sources):
    server = replay(flavor="v1")
    src = source(server)
    assert src.api == "legacy"
    assert server.paths()[:2] == ["/api/v3/services", "/api/services"]
    found = src.traces_for(OP1)
    assert ids(found) == [CLI_TRACE, DISPATCH_TRACE]
    searches = [q for _, p, q in server.calls if p == "/api/traces"]
    assert searches
    for query in searches:
        assert query["tag"] == [f"operation.id:{OP1}"]
        assert {"service", "start", "end", "limit"} <= set(query)
        assert int(query["end"][0]) - int(query["start"][0]) >= 6 * 3600 * 1_000_000


def test_v2_18_auto_prefers_legacy_because_attributes_are_ignored(replay: Replays, source: Sources):
    server = replay(flavor="v2.18")
    src = source(server)
    assert src.api == "legacy"
    assert ids(src.traces_for(OP2)) == [TRAINING_TRACE]


def test_v2_18_forced_v3_speaks_snake_case_and_filters_client_side(
    replay: Replays, source: Sources
):
    server = replay(flavor="v2.18")
    src = source(server, api="v3")
    found = src.traces_for(OP1)
    # The server ignored query.attributes and answered every trace of each service; only
    # traces where a span of the searched service holds the id survive.
    assert ids(found) == [CLI_TRACE, DISPATCH_TRACE]
    searches = [q for _, p, q in server.calls if p == "/api/v3/traces"]
    for query in searches:
        assert {"query.service_name", "query.start_time_min", "query.start_time_max"} <= set(query)
        assert "query.serviceName" not in query


def test_forced_legacy_skips_detection(replay: Replays, source: Sources):
    server = replay(flavor="v2.20")
    src = source(server, api="legacy")
    assert src.api == "legacy"
    assert ids(src.traces_for(OP_LEGACY)) == [LEGACY_TRACE]
    assert "/api/v3/services" not in server.paths()
    assert "/" not in server.paths()


def test_html_for_everything_is_not_a_jaeger(replay: Replays, source: Sources):
    server = replay(faults=["html"])
    src = source(server)
    with pytest.raises(SourceUnavailableError, match="neither /api/v3/services nor /api/services"):
        src.check()


# --------------------------------------------------------------------------- finding operations


@pytest.mark.parametrize("flavor", ["v2.20", "v1"])
def test_operation_found_across_services_and_merged_by_trace(
    replay: Replays, source: Sources, flavor: str
):
    server = replay(flavor=flavor)
    src = source(server)
    found = src.traces_for(OP1)
    assert ids(found) == [CLI_TRACE, DISPATCH_TRACE]
    dispatch = found[1]
    # the whole trace comes back, backend spans without operation.id included
    assert dispatch.services() == ["ktrdr-api", WORKER1]
    assert len(dispatch.spans) == 6
    # every service matching the patterns was searched, random-suffix workers included,
    # and the billing service (no pattern) never was
    assert searched_services(server) == [
        "ktrdr-api",
        WORKER1,
        "ktrdr-backtest-worker-cafe0001",
        "ktrdr-cli",
        "ktrdr-training-worker-deadbeef",
    ]


def test_random_suffix_worker_found_only_by_listing_services(replay: Replays, source: Sources):
    server = replay()
    narrow = source(server, service_patterns=["ktrdr-api", "ktrdr-cli"])
    assert narrow.traces_for(OP2) == []  # the backend's spans do not carry operation.id
    wide = source(server)
    found = wide.traces_for(OP2)
    assert ids(found) == [TRAINING_TRACE]
    assert "ktrdr-training-worker-deadbeef" in found[0].services()


def test_unknown_operation_is_empty_not_an_error(replay: Replays, source: Sources):
    calls: list[tuple[str, float, str]] = []
    server = replay()
    src = source(server, observer=lambda *a: calls.append(a))
    assert src.traces_for("op_does_not_exist") == []
    assert ("/api/v3/traces", "not_found") in {(label, outcome) for label, _, outcome in calls}


@pytest.mark.parametrize("flavor", ["v2.20", "v1"])
@pytest.mark.parametrize(
    "ident", ["1234abcd5678ef90", LEGACY_TRACE, LEGACY_TRACE.upper(), " 1234abcd5678ef90 "]
)
def test_trace_id_16_or_32_hex(replay: Replays, source: Sources, flavor: str, ident: str):
    server = replay(flavor=flavor)
    src = source(server)
    found = src.traces_for(ident)
    assert ids(found) == [LEGACY_TRACE]
    by_id = [p for p in server.paths() if p.startswith(("/api/v3/traces/", "/api/traces/"))]
    assert by_id and by_id[0].endswith("/" + LEGACY_TRACE)


@pytest.mark.parametrize("flavor", ["v2.20", "v1"])
def test_unknown_trace_id_is_empty(replay: Replays, source: Sources, flavor: str):
    server = replay(flavor=flavor)
    assert source(server).traces_for("ffffffffffffffff") == []


@pytest.mark.parametrize("flavor", ["v2.20", "v1"])
def test_elasticsearch_values_are_regex_escaped(replay: Replays, source: Sources, flavor: str):
    server = replay(flavor=flavor, storage="elasticsearch")
    escaped = source(server, storage="elasticsearch")
    assert ids(escaped.traces_for("op_regex.1")) == ["e5" * 16]
    # Control: a client that does not know the storage sends the raw value and the regex '.'
    # also matches op_regexX1, which is exactly the bug the escaping prevents.
    naive = source(server, storage="memory")
    assert sorted(ids(naive.traces_for("op_regex.1"))) == ["e5" * 16, "f6" * 16]


def test_exact_storage_matches_literally(replay: Replays, source: Sources):
    server = replay(storage="memory")
    assert ids(source(server).traces_for("op_regex.1")) == ["e5" * 16]


@pytest.mark.parametrize("flavor", ["v2.20", "v1"])
def test_recent_traces_newest_first_and_bounded(replay: Replays, source: Sources, flavor: str):
    server = replay(flavor=flavor)
    src = source(server)
    window = ((T0 - 60) * 1_000_000, (T0 + 3600) * 1_000_000)
    everything = src.recent_traces(*window)
    starts = [t.start_us for t in everything]
    assert starts == sorted(starts, reverse=True)
    assert set(ids(everything)) == {
        CLI_TRACE,
        DISPATCH_TRACE,
        TRAINING_TRACE,
        "e5" * 16,
        "f6" * 16,
        LEGACY_TRACE,
    }  # not the billing-service trace, nor the health check (d4…): searches skip noise names
    assert ids(src.recent_traces(*window, limit=2)) == [LEGACY_TRACE, "f6" * 16]
    narrow = src.recent_traces((T0 + 500) * 1_000_000, (T0 + 950) * 1_000_000)
    assert ids(narrow) == [TRAINING_TRACE]


def test_recent_traces_respect_search_limit(replay: Replays, source: Sources):
    server = replay()
    src = source(server, search_limit=1, live_depth=1)
    found = src.recent_traces((T0 - 60) * 1_000_000, (T0 + 3600) * 1_000_000, limit=500)
    assert ids(found) == [LEGACY_TRACE]
    depths = {q["query.searchDepth"][0] for _, p, q in server.calls if p == "/api/v3/traces"}
    assert depths == {"1"}


def test_recent_traces_cut_to_search_limit_from_a_deeper_live_window(
    replay: Replays, source: Sources
):
    server = replay()
    src = source(server, search_limit=1, live_depth=50)
    found = src.recent_traces((T0 - 60) * 1_000_000, (T0 + 3600) * 1_000_000, limit=500)
    assert ids(found) == [LEGACY_TRACE]


def test_window_outside_the_live_window_is_searched_exactly(replay: Replays, source: Sources):
    server = replay()
    src = source(server, lookback_s=60.0)  # the live window no longer reaches T0
    window = ((T0 - 60) * 1_000_000, (T0 + 3600) * 1_000_000)
    assert len(src.recent_traces(*window)) == 6  # every trace but the health check
    starts = {q["query.startTimeMin"][0] for _, p, q in server.calls if p == "/api/v3/traces"}
    assert starts == {"2025-11-24T15:59:00.000000Z"}  # T0 - 60 s, already on a 10 s step


def test_all_services_and_check(replay: Replays, source: Sources):
    server = replay()
    src = source(server)
    src.check()
    assert "billing-service" in src.all_services()
    assert WORKER1 in src.all_services()


# --------------------------------------------------------------------------- failures


def test_connection_refused(replay: Replays, source: Sources):
    server = replay(faults=["refuse"])
    src = source(server, retries=1)
    with pytest.raises(SourceUnavailableError) as info:
        src.traces_for(OP1)
    assert str(info.value) == f"cannot reach Jaeger at {server.url}: connection refused"
    assert info.value.exit_code == 4
    assert info.value.http_status == 502
    assert not isinstance(info.value, SourceTimeoutError)


def test_slow_answer_times_out(replay: Replays, source: Sources):
    server = replay(faults=[Fault("slow", seconds=3.0)])
    src = source(server, timeout_s=0.3, retries=2)
    with pytest.raises(SourceTimeoutError) as info:
        src.check()
    assert info.value.http_status == 504
    assert "did not answer /api/v3/services within 0.3s" in str(info.value)
    assert server.paths() == ["/api/v3/services"]  # a read timeout is not retried


def test_server_errors_are_retried_then_succeed(replay: Replays, source: Sources):
    server = replay(faults=[Fault("http500", times=2, path="/api/v3/traces")])
    src = source(server, retries=2)
    assert ids(src.traces_for(OP2)) == [TRAINING_TRACE]
    searches = server.paths().count("/api/v3/traces")
    assert searches == 5 + 2  # five matching services, two retried answers


def test_server_errors_exhaust_retries(replay: Replays, source: Sources):
    server = replay(faults=[Fault("http500", path="/api/v3/services")])
    src = source(server, retries=2, api="v3")
    with pytest.raises(SourceUnavailableError) as info:
        src.all_services()
    message = str(info.value)
    assert "HTTP 500 at /api/v3/services after 3 attempt(s)" in message
    assert "storage unavailable" in message  # Jaeger's own message, from a text/plain body
    assert server.paths().count("/api/v3/services") == 3


def test_truncated_json_names_the_endpoint(replay: Replays, source: Sources):
    server = replay(faults=[Fault("truncated", path="/api/v3/traces")])
    src = source(server)
    with pytest.raises(
        SourceUnavailableError, match=r"^Jaeger answered invalid JSON at /api/v3/traces: "
    ):
        src.traces_for(OP2)


def test_html_from_a_data_endpoint_is_an_error_not_data(replay: Replays, source: Sources):
    server = replay()
    src = source(server)
    assert src.api == "v3"
    server.set_faults([Fault("html", path="/api/v3/traces")])
    with pytest.raises(SourceUnavailableError, match="HTML instead of JSON at /api/v3/traces"):
        src.traces_for(OP2)


# --------------------------------------------------------------------------- resources


def _many_workers(count: int) -> list[dict[str, Any]]:
    """One trace per worker service, each with a random-looking suffix, same operation."""
    docs = []
    for n in range(count):
        start_ns = (T0 + n) * 1_000_000_000
        docs.append(
            {
                "resourceSpans": [
                    {
                        "resource": {
                            "attributes": [
                                {
                                    "key": "service.name",
                                    "value": {"stringValue": f"ktrdr-backtest-worker-{n:08x}"},
                                }
                            ]
                        },
                        "scopeSpans": [
                            {
                                "scope": {},
                                "spans": [
                                    {
                                        "traceId": f"{n + 1:032x}",
                                        "spanId": f"{n + 1:016x}",
                                        "name": "operations.create",
                                        "startTimeUnixNano": str(start_ns),
                                        "endTimeUnixNano": str(start_ns + 1000),
                                        "attributes": [
                                            {
                                                "key": "operation.id",
                                                "value": {"stringValue": "op_many"},
                                            }
                                        ],
                                    }
                                ],
                            }
                        ],
                    }
                ]
            }
        )
    return docs


@pytest.mark.parametrize("concurrency", [1, 3])
def test_fan_out_is_concurrent_but_bounded(replay: Replays, source: Sources, concurrency: int):
    server = replay(_many_workers(12), latency_s=0.1)
    src = source(server, concurrency=concurrency)
    found = src.traces_for("op_many")
    assert len(found) == 12
    assert server.max_in_flight <= concurrency
    if concurrency > 1:
        assert server.max_in_flight > 1  # the searches really ran side by side
    assert server.connections <= concurrency  # the pool reuses its connections


def test_one_pooled_client_reused_across_lookups(replay: Replays, source: Sources):
    server = replay()
    src = source(server, concurrency=1)
    client = src.client
    for _ in range(3):
        src.traces_for(OP1)
        src.recent_traces(T0 * 1_000_000, (T0 + 60) * 1_000_000)
    assert src.client is client
    assert len(server.calls) > 20
    assert server.connections == 1


def test_observer_sees_every_call(replay: Replays, source: Sources):
    seen: list[tuple[str, float, str]] = []
    server = replay()
    src = source(server, observer=lambda *args: seen.append(args))
    src.traces_for(OP1)
    src.traces_for("1234abcd5678ef90")
    assert len(seen) == len(server.calls)
    labels = {label for label, _, _ in seen}
    assert labels == {"/api/v3/services", "/", "/api/v3/traces", "/api/v3/traces/{id}"}
    assert all(seconds >= 0 for _, seconds, _ in seen)
    assert {outcome for _, _, outcome in seen} <= {"ok", "not_found"}


def test_observer_failure_does_not_break_lookups(replay: Replays, source: Sources):
    def broken(label: str, seconds: float, outcome: str) -> None:
        raise RuntimeError("metrics are down")

    server = replay()
    assert ids(source(server, observer=broken).traces_for(OP2)) == [TRAINING_TRACE]


def test_observer_records_refused_connections(replay: Replays, source: Sources):
    seen: list[tuple[str, float, str]] = []
    server = replay(faults=["refuse"])
    src = source(server, retries=2, observer=lambda *args: seen.append(args))
    with pytest.raises(SourceUnavailableError):
        src.check()
    assert [(label, outcome) for label, _, outcome in seen] == [
        ("/api/v3/services", "unreachable")
    ] * 3


def test_context_manager_closes_the_client(replay: Replays):
    server = replay()
    with JaegerSource(JaegerSettings(url=server.url), clock=lambda: NOW) as src:
        assert src.api == "v3"
    assert src.client.is_closed


def _otlp(service: str, trace_id: str, span_id: str, op: str, offset_s: int) -> dict[str, Any]:
    start_ns = (T0 + offset_s) * 1_000_000_000
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": f"{service}.work",
                                "startTimeUnixNano": str(start_ns),
                                "endTimeUnixNano": str(start_ns + 1000),
                                "attributes": [
                                    {"key": "operation.id", "value": {"stringValue": op}}
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }


@pytest.mark.parametrize("flavor", ["v2.20", "v1"])
def test_trace_found_in_two_services_is_returned_once(
    replay: Replays, source: Sources, flavor: str
):
    shared = "5e" * 16
    server = replay(
        [
            _otlp("ktrdr-cli", shared, "1" * 16, "op_shared", 0),
            _otlp("ktrdr-backtest-worker-0badf00d", shared, "2" * 16, "op_shared", 1),
            _otlp("ktrdr-backtest-worker-0badf00d", "6f" * 16, "3" * 16, "op_shared", 2),
        ],
        flavor=flavor,
    )
    found = source(server).traces_for("op_shared")
    assert ids(found) == [shared, "6f" * 16]
    assert len(found[0].spans) == 2  # both services answered the whole trace; kept once
    assert found[0].services() == ["ktrdr-backtest-worker-0badf00d", "ktrdr-cli"]


def test_in_flight_bound_holds_across_concurrent_callers(replay: Replays, source: Sources):
    server = replay(_many_workers(4), latency_s=0.05)
    src = source(server, concurrency=2)
    src.check()  # detect once, before the callers race
    errors: list[BaseException] = []

    def lookup() -> None:
        try:
            assert len(src.traces_for("op_many")) == 4
        except BaseException as exc:  # surfaced below; a thread must not swallow it
            errors.append(exc)

    threads = [threading.Thread(target=lookup) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert server.max_in_flight <= 2
