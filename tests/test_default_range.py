"""Without ``from``/``to`` the list routes cover a sensible default (issue 11, item 14): a file
source's whole recorded span (the demo corpus is months old), a live Jaeger's look-back."""

from __future__ import annotations

import pytest
from api_support import make_settings
from opdiag.api.app import create_app
from opdiag.service import DiagnosisService
from opdiag.settings import Settings
from opdiag.sources.files import FileSource

pytest_plugins = ("api_fixtures",)


@pytest.fixture(scope="module")
def demo(demo_traces):
    settings = Settings.model_validate({"trace_paths": [str(demo_traces)]})
    service = DiagnosisService(FileSource([demo_traces]), settings)
    every = service.operations(0, 2**62)
    app = create_app(settings, service=service, source=service.source)
    return app.test_client(), every


def test_operations_without_a_range_lists_the_whole_corpus(demo):
    client, every = demo
    rows = client.get("/api/v1/operations").get_json()
    assert len(every) > 10
    assert [row["operation_id"] or row["trace_id"] for row in rows] == [d.key for d in every]


def test_verdict_counts_without_a_range_count_every_operation(demo):
    client, every = demo
    rows = client.get("/api/v1/verdict-counts").get_json()
    assert sum(row["count"] for row in rows) == len(every)
    counted = {v for row in rows if row["count"] for v in [row["verdict"]]}
    assert counted == {d.verdict for d in every}
    assert len({row["time"] for row in rows}) <= 101  # about 100 buckets over the span


def test_variables_and_simpod_without_a_range_see_the_corpus(demo):
    client, every = demo
    ids = client.get("/api/v1/variables/operation_ids").get_json()
    assert {row["value"] for row in ids} == {d.key for d in every}
    frames = client.post(
        "/simpod/query", json={"targets": [{"target": "operations", "refId": "A"}]}
    ).get_json()
    assert len(frames[0]["fields"][0]["values"]) == len(every)
    values = client.post("/simpod/tag-values", json={"key": "operation_type"}).get_json()
    assert {v["text"] for v in values} >= {"training", "backtesting", "data_load"}


def test_one_bound_keeps_the_lookback_for_the_other(demo):
    client, _ = demo
    assert client.get("/api/v1/operations", query_string={"from": "now-1h"}).get_json() == []


def test_a_live_source_defaults_to_the_lookback(client, service, settings):
    from opdiag.timeutil import wall_clock_us

    before = wall_clock_us()
    assert client.get("/api/v1/operations").status_code == 200
    after = wall_clock_us()
    call = next(args for name, args in service.calls if name == "operations")
    lookback = int(settings.jaeger.lookback_s * 1_000_000)
    assert before <= call["end_us"] <= after
    assert call["end_us"] - call["start_us"] == lookback


def test_a_file_source_span_does_not_depend_on_the_clock(demo_traces):
    settings = make_settings()
    from opdiag.api.queries import default_range

    source = FileSource([demo_traces])
    span = default_range(source, settings, now_us=0)
    traces = source.recent_traces(0, 2**62, 10**6)
    first = min(t.start_us for t in traces)
    assert span.start_us == first - first % 1000  # rows carry ms
    assert span.end_us == max(t.end_us for t in traces) + 1
