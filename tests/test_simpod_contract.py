"""Contract tests of the simpod JSON datasource protocol: the requests the plugin sends and
our answers, both validated with jsonschema against the plugin's own openapi.yaml (its two
documented defects fixed in memory by ``api_support.simpod_openapi``)."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest
from api_support import (
    FAILED_ID,
    SLOW_ID,
    TRACE_FAILED,
    simpod_openapi,
    simpod_request_schema,
    simpod_response_schema,
)
from opdiag.api.schemas import ROW_MODELS

DOC = simpod_openapi()
FIELD_TYPES = {"time", "number", "string", "boolean", "other"}

pytest_plugins = ("api_fixtures",)


def grafana_query(*targets: dict[str, Any], scoped: dict[str, Any] | None = None) -> dict:
    """A /query body as Grafana 11+ posts it through the plugin, extra keys and all."""
    return {
        "app": "dashboard",
        "requestId": "Q123",
        "timezone": "browser",
        "panelId": 4,
        "dashboardUID": "opdiag-operations",
        "range": {
            "from": "2025-11-23T16:00:00.000Z",
            "to": "2025-11-24T16:00:00.000Z",
            "raw": {"from": "now-24h", "to": "now"},
        },
        "rangeRaw": {"from": "now-24h", "to": "now"},
        "interval": "1m",
        "intervalMs": 60000,
        "maxDataPoints": 1200,
        "targets": list(targets),
        "scopedVars": {
            "__interval": {"text": "1m", "value": "1m"},
            "__interval_ms": {"text": "60000", "value": 60000},
            **(scoped or {}),
        },
        "startTime": 1764000000000,
        "liveStreaming": False,
        "filters": [],
    }


def post(client, path: str, body: dict[str, Any]) -> Any:
    """Validate the request against the plugin's schema, post it, validate the answer."""
    if "requestBody" in DOC["paths"][path]["post"]:
        jsonschema.validate(body, simpod_request_schema(DOC, path))
    response = client.post(f"/simpod{path}", json=body)
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    jsonschema.validate(data, simpod_response_schema(DOC, path))
    return data


def assert_grafana_accepts_frames(frames: list[dict[str, Any]]) -> None:
    """What Grafana's toDataFrame needs from a frame (a port of its checks)."""
    for frame in frames:
        assert isinstance(frame["refId"], str) and frame["refId"]
        lengths = {len(f["values"]) for f in frame["fields"]}
        assert len(lengths) <= 1, "all fields must have equal length"
        for f in frame["fields"]:
            assert f["type"] in FIELD_TYPES
            for value in f["values"]:
                if f["type"] in ("time", "number"):
                    assert isinstance(value, int | float) and not isinstance(value, bool)
                elif f["type"] == "boolean":
                    assert isinstance(value, bool)
                else:
                    assert isinstance(value, str)


def fields_of(frame: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in frame["fields"]}


def test_test_connection(client):
    response = client.get("/simpod/")
    assert response.status_code == 200
    jsonschema.validate(response.get_json(), simpod_response_schema(DOC, "/", "get"))


def test_metrics_lists_every_row_kind_with_payloads(client):
    data = post(client, "/metrics", {"metric": "", "payload": {}})
    assert [m["value"] for m in data] == [
        "operations",
        "diagnosis",
        "flow",
        "findings",
        "solution",
        "comparison",
        "verdict_counts",
        "annotations",
    ]
    payloads = {m["value"]: {p["name"] for p in m["payloads"]} for m in data}
    assert payloads["operations"] == {"type", "verdict", "service", "limit", "now"}
    assert payloads["annotations"] == {"type", "verdict", "service", "limit", "now"}
    assert {"operation_id"} <= payloads["flow"]
    assert {"type", "verdict", "service", "interval"} <= payloads["verdict_counts"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("operation_id", {FAILED_ID, SLOW_ID}),
        ("type", {"backtesting", "training"}),
        ("verdict", {"healthy", "slow", "failed", "stuck", "service_unreachable"}),
    ],
)
def test_metric_payload_options(client, name, expected):
    data = post(client, "/metric-payload-options", {"metric": "flow", "payload": {}, "name": name})
    assert expected <= {o["value"] for o in data}


@pytest.mark.parametrize("kind", list(ROW_MODELS)[:6])
def test_query_every_kind_answers_typed_frames(client, kind):
    ident = SLOW_ID if kind == "comparison" else FAILED_ID  # the one with a comparison
    target = {"refId": "B", "target": kind, "payload": {"operation_id": ident}}
    frames = post(client, "/query", grafana_query(target))
    assert_grafana_accepts_frames(frames)
    (frame,) = frames
    assert frame["refId"] == "B"
    assert [f["name"] for f in frame["fields"]] == list(ROW_MODELS[kind].model_fields)
    assert frame["fields"][0]["values"], "rows expected"


def test_operations_frame_types_and_links(client, settings):
    frames = post(client, "/query", grafana_query({"refId": "A", "target": "operations"}))
    fields = fields_of(frames[0])
    assert fields["time"]["type"] == "time"
    assert all(isinstance(v, int) and v > 1e12 for v in fields["time"]["values"])  # epoch ms
    assert fields["duration_ms"]["type"] == "number"
    assert fields["duration_ms"]["config"]["unit"] == "ms"
    assert fields["finished"]["type"] == "boolean"
    assert fields["operation_id"]["values"] == [SLOW_ID, FAILED_ID]
    op_links = fields["operation_id"]["config"]["links"]
    dashboard = op_links[0]["url"]
    assert dashboard.startswith(f"/d/{settings.links.diagnosis_dashboard_uid}?")
    assert "var-operation_id=${__value.raw:percentencode}" in dashboard
    assert "${__url_time_range}" in dashboard  # keeps the time range
    assert op_links[1]["url"] == "${__data.fields.diagnosis_url}"  # the row's own page
    trace_link, trace_page = fields["trace_id"]["config"]["links"]
    assert trace_page["url"] == "${__data.fields.diagnosis_url}"
    assert trace_link["url"] == ""
    assert trace_link["internal"] == {
        "datasourceUid": settings.links.jaeger_datasource_uid,
        "datasourceName": "Jaeger",
        "query": {"query": "${__value.raw}"},
    }


def test_string_payload_equals_object_payload(client):
    as_object = {"refId": "A", "target": "flow", "payload": {"operation_id": FAILED_ID}}
    as_string = {**as_object, "payload": json.dumps({"operation_id": FAILED_ID})}
    first = post(client, "/query", grafana_query(as_object))
    # A string payload is what code mode sends; the plugin's schema says object, so only
    # the answer is validated here.
    response = client.post("/simpod/query", json=grafana_query(as_string))
    assert response.status_code == 200
    assert response.get_json() == first


def test_hidden_targets_are_skipped(client, service):
    body = grafana_query(
        {"refId": "A", "target": "operations", "hide": True},
        {"refId": "B", "target": "findings", "payload": {"operation_id": FAILED_ID}},
    )
    frames = post(client, "/query", body)
    assert [f["refId"] for f in frames] == ["B"]
    assert [name for name, _ in service.calls] == ["diagnose"]


def test_operation_id_from_scoped_vars(client):
    body = grafana_query(
        {"refId": "A", "target": "diagnosis", "payload": {}},
        scoped={"operation_id": {"text": SLOW_ID, "value": SLOW_ID, "selected": False}},
    )
    frames = post(client, "/query", body)
    assert fields_of(frames[0])["operation_id"]["values"] == [SLOW_ID]


def test_filters_from_scoped_vars_multi_and_all(client, service):
    body = grafana_query(
        {"refId": "A", "target": "operations"},
        scoped={
            "operation_type": {"text": "All", "value": ["$__all"]},
            "verdict": {"text": "slow + failed", "value": ["slow", "failed"]},
        },
    )
    post(client, "/query", body)
    call = service.calls[-1][1]
    assert call["operation_types"] is None
    assert call["verdicts"] == ["slow", "failed"]
    # a Prometheus-style variable's regex all-value is "All" too, not a verdict named .*
    body = grafana_query(
        {"refId": "A", "target": "operations"}, scoped={"verdict": {"text": "All", "value": ".*"}}
    )
    post(client, "/query", body)
    assert service.calls[-1][1]["verdicts"] is None


def test_payload_filters_win_over_scoped_vars(client, service):
    body = grafana_query(
        {"refId": "A", "target": "operations", "payload": {"verdict": "slow"}},
        scoped={"verdict": {"text": "failed", "value": "failed"}},
    )
    frames = post(client, "/query", body)
    assert fields_of(frames[0])["operation_id"]["values"] == [SLOW_ID]


def test_adhoc_filters(client, service):
    body = grafana_query({"refId": "A", "target": "operations"})
    body["filters"] = [{"key": "verdict", "operator": "=", "value": "service_unreachable"}]
    frames = post(client, "/query", body)
    assert fields_of(frames[0])["operation_id"]["values"] == [FAILED_ID]


def test_range_from_request(client, service):
    post(client, "/query", grafana_query({"refId": "A", "target": "operations"}))
    call = service.calls[-1][1]
    assert call["end_us"] - call["start_us"] == 86_400 * 1_000_000
    assert call["end_us"] == 1_764_000_000_000_000


def test_verdict_counts_use_payload_interval(client, service):
    target = {"refId": "A", "target": "verdict_counts", "payload": {"interval": "1h"}}
    frames = post(client, "/query", grafana_query(target))
    assert service.calls[0][1]["bucket_us"] == 3_600_000_000
    assert fields_of(frames[0])["time"]["type"] == "time"


def test_targets_without_target_are_dropped_and_empty_is_fine(client):
    # The plugin drops such targets itself (the schema requires ``target``); be lenient.
    response = client.post("/simpod/query", json=grafana_query({"refId": "A"}))
    assert response.status_code == 200 and response.get_json() == []
    assert post(client, "/query", grafana_query()) == []


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b["targets"].append({"refId": "Z", "target": "colours"}), "targets[1].target"),
        (
            lambda b: b["targets"].append({"refId": "Z", "target": "flow"}),
            "targets[1].payload.operation_id",
        ),
        (
            lambda b: b["targets"].append({"refId": "Z", "target": "flow", "payload": "{oops"}),
            "targets[1].payload",
        ),
        (lambda b: b["range"].update({"from": "not a time"}), "range.from"),
        (lambda b: b.update({"targets": "operations"}), "targets"),
        (
            lambda b: b["filters"].append({"key": "colour", "operator": "=", "value": "x"}),
            "filters[0].key",
        ),
        (
            lambda b: b["filters"].append({"key": "verdict", "operator": "=~", "value": "x"}),
            "filters[0].operator",
        ),
        (  # a typo would answer "no such operations"
            lambda b: b["targets"][0].update({"payload": {"verdict": "helthy"}}),
            "payload.verdict",
        ),
        (
            lambda b: b["targets"].append(
                {"refId": "Z", "target": "flow", "payload": {"operation_id": {"a": 1}}}
            ),
            "targets[1].payload.operation_id",
        ),
        (
            lambda b: (
                b["targets"].append({"refId": "Z", "target": "verdict_counts"}),
                b.update({"intervalMs": "soon"}),
            ),
            "intervalMs",
        ),
    ],
)
def test_bad_query_is_400_naming_the_field(client, mutate, field):
    body = copy.deepcopy(grafana_query({"refId": "A", "target": "operations"}))
    mutate(body)
    response = client.post("/simpod/query", json=body)
    assert response.status_code == 400
    assert response.get_json()["field"] == field


def test_unknown_operation_is_404_json(client):
    target = {"refId": "A", "target": "flow", "payload": {"operation_id": "op_nope"}}
    response = client.post("/simpod/query", json=grafana_query(target))
    assert response.status_code == 404
    assert "op_nope" in response.get_json()["error"]


@pytest.mark.parametrize(
    "payload",
    [{"target": "services"}, {"target": '{"target": "services"}'}],
    ids=["string-format", "json-format"],
)
def test_variable(client, payload):
    body = {
        "payload": payload,
        "range": {
            "from": "2025-11-23T16:00:00Z",
            "to": "2025-11-24T16:00:00Z",
            "raw": {"from": "now-24h", "to": "now"},
        },
    }
    data = post(client, "/variable", body)
    assert {"ktrdr-api", "ktrdr-ib-host-service"} <= {v["__value"] for v in data}
    assert all(v["__text"] == v["__value"] for v in data)


def test_unknown_variable_is_400(client):
    response = client.post("/simpod/variable", json={"payload": {"target": "colours"}})
    assert response.status_code == 400
    assert response.get_json()["field"] == "payload.target"


def test_tag_keys_and_values(client):
    keys = post(client, "/tag-keys", {})
    assert {k["text"] for k in keys} == {"operation_type", "verdict", "service"}
    values = post(client, "/tag-values", {"key": "operation_type"})
    assert {v["text"] for v in values} == {"backtesting", "training"}


def test_tag_values_unknown_key_is_400(client):
    response = client.post("/simpod/tag-values", json={"key": "colour"})
    assert response.status_code == 400
    assert response.get_json()["field"] == "key"


def test_patched_schema_really_differs_from_the_reference():
    """The two fixes are needed: our frames fail the unpatched /query schema."""
    import yaml
    from api_support import SIMPOD_OPENAPI, _with_components

    raw = yaml.safe_load(SIMPOD_OPENAPI.read_text(encoding="utf-8"))
    schema = _with_components(
        raw["paths"]["/query"]["post"]["responses"]["200"]["content"]["application/json"]["schema"],
        raw,
    )
    frame = {"refId": "A", "fields": [{"name": "x", "type": "number", "values": [1]}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([frame], schema)
    jsonschema.validate([frame], simpod_response_schema(DOC, "/query"))
    table = {"type": "table", "columns": [{"text": "a"}], "rows": [[1]]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([table], schema)
    jsonschema.validate([table], simpod_response_schema(DOC, "/query"))
    assert TRACE_FAILED  # fixture data in use
