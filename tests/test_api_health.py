"""Probes and opdiag's own Prometheus metrics."""

from __future__ import annotations

import pytest
from api_support import (
    FAILED_ID,
    SOURCE_ERRORS,
)
from opdiag.api.app import create_app
from opdiag.api.metrics import EXTENSION as METRICS_EXTENSION
from prometheus_client.parser import text_string_to_metric_families

pytest_plugins = ("api_fixtures",)


def _samples(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_healthz_is_200(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_healthz_ignores_a_dead_source(client, service):
    service.source.error = SOURCE_ERRORS[0][0]
    assert client.get("/healthz").status_code == 200


def test_readyz_ready(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}  # details only with a token


@pytest.mark.parametrize("error_status", SOURCE_ERRORS, ids=["unavailable", "timeout"])
def test_readyz_503_with_reason_in_the_log(client, service, error_status, caplog):
    service.source.error = error_status[0]
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable"}
    assert error_status[0].message in caplog.text


def test_readyz_unexpected_check_failure_is_503_without_details(client, service):
    service.source.error = RuntimeError("socket internals")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "socket internals" not in response.get_data(as_text=True)


def test_request_counts_and_latency_per_route_and_status(client):
    client.get(f"/api/v1/operations/{FAILED_ID}")
    client.get(f"/api/v1/operations/{FAILED_ID}")
    client.get("/api/v1/operations/unknown-id")
    samples = _samples(client)
    route = "/api/v1/operations/<ident:ident>"
    ok = (("method", "GET"), ("route", route), ("status", "200"))
    missing = (("method", "GET"), ("route", route), ("status", "404"))
    assert samples[("opdiag_http_requests_total", ok)] == 2
    assert samples[("opdiag_http_requests_total", missing)] == 1
    count = samples[
        ("opdiag_http_request_duration_seconds_count", (("method", "GET"), ("route", route)))
    ]
    assert count == 3


def test_unmatched_paths_share_one_label(client):
    client.get("/random/a")
    client.get("/random/b")
    samples = _samples(client)
    key = (("method", "GET"), ("route", "unmatched"), ("status", "404"))
    assert samples[("opdiag_http_requests_total", key)] == 2


def test_cache_hits_and_misses_from_the_service(client, service):
    service.cache_hits, service.cache_misses = 7, 4
    samples = _samples(client)
    assert samples[("opdiag_cache_lookups_total", (("result", "hit"),))] == 7
    assert samples[("opdiag_cache_lookups_total", (("result", "miss"),))] == 4


def test_jaeger_observer_feeds_latency_histogram(app, client):
    metrics = app.extensions[METRICS_EXTENSION]
    metrics.observe_jaeger("/api/v3/traces", 0.03, "ok")
    metrics.observe_jaeger("/api/v3/traces", 0.2, "ok")
    metrics.observe_jaeger("/api/v3/services", 3.0, "timeout")
    samples = _samples(client)
    labels = (("endpoint", "/api/v3/traces"), ("outcome", "ok"))
    assert samples[("opdiag_jaeger_request_duration_seconds_count", labels)] == 2
    assert samples[("opdiag_jaeger_request_duration_seconds_sum", labels)] == pytest.approx(0.23)
    timeout = (("endpoint", "/api/v3/services"), ("outcome", "timeout"))
    assert samples[("opdiag_jaeger_request_duration_seconds_count", timeout)] == 1


def test_each_app_has_its_own_registry(settings, service):
    first = create_app(settings, service=service, source=service.source).test_client()
    second = create_app(settings, service=service, source=service.source).test_client()
    first.get("/healthz")
    first.get("/healthz")
    key = (
        "opdiag_http_requests_total",
        (("method", "GET"), ("route", "/healthz"), ("status", "200")),
    )
    assert _samples(first)[key] == 2
    assert key not in _samples(second)


def test_jaeger_cache_counters_are_exported(settings, service):
    stats = {
        "services": {"hits": 5, "misses": 1, "joined": 0},
        "searches": {"hits": 9, "misses": 3, "joined": 2},
    }
    service.source.cache_stats = lambda: stats  # what JaegerSource.cache_stats() returns
    client = create_app(settings, service=service, source=service.source).test_client()
    samples = _samples(client)
    name = "opdiag_jaeger_cache_lookups_total"
    assert samples[(name, (("cache", "searches"), ("result", "hit")))] == 9
    assert samples[(name, (("cache", "searches"), ("result", "joined")))] == 2
    assert samples[(name, (("cache", "services"), ("result", "miss")))] == 1


def test_no_jaeger_cache_counters_without_a_jaeger_source(client):
    assert not [key for key in _samples(client) if key[0].startswith("opdiag_jaeger_cache")]


def test_readyz_is_503_while_the_watcher_cannot_write_its_store(app, client, caplog):
    """The lists are read from the verdict store: while every write fails they serve stale
    rows, so the replica is not ready (it said ready)."""
    from types import SimpleNamespace

    from opdiag.api.state import EXTENSION

    state = app.extensions[EXTENSION]
    state.watcher = SimpleNamespace(last_error_stage="store", last_error="disk I/O error")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "the verdict store failed: disk I/O error" in caplog.text
    state.watcher = SimpleNamespace(last_error_stage="source", last_error="Jaeger down")
    assert client.get("/readyz").status_code == 200  # the source check speaks for that
    state.watcher = SimpleNamespace(last_error_stage=None, last_error=None)
    assert client.get("/readyz").status_code == 200
