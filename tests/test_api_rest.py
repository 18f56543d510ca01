"""The Infinity REST API: every route answers rows of its pydantic model, filters and ranges
reach the service parsed, bad parameters get a 400 naming the field."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from api_support import (
    FAILED_ID,
    NOW_MS,
    SLOW_ID,
    TRACE_FAILED,
    make_settings,
)
from opdiag.api.app import create_app
from opdiag.api.schemas import (
    AnnotationRow,
    ComparisonRow,
    DiagnosisRow,
    FindingRow,
    FlowRow,
    OperationRow,
    SolutionRow,
    VariableRow,
    VerdictCountRow,
)
from opdiag.timeutil import TimeRange
from pydantic import BaseModel

RANGE = f"from={NOW_MS - 86_400_000}&to={NOW_MS}"
ROUTES: list[tuple[str, type[BaseModel]]] = [
    (f"/api/v1/operations?{RANGE}", OperationRow),
    (f"/api/v1/operations/{FAILED_ID}", DiagnosisRow),
    (f"/api/v1/operations/{FAILED_ID}/flow", FlowRow),
    (f"/api/v1/operations/{FAILED_ID}/findings", FindingRow),
    (f"/api/v1/operations/{FAILED_ID}/solution", SolutionRow),
    (f"/api/v1/operations/{SLOW_ID}/comparison", ComparisonRow),
    (f"/api/v1/verdict-counts?{RANGE}&interval=1h", VerdictCountRow),
    (f"/api/v1/variables/services?{RANGE}", VariableRow),
    (f"/api/v1/variables/operation_ids?{RANGE}", VariableRow),
]
_JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool}

pytest_plugins = ("api_fixtures",)


@pytest.mark.parametrize(("url", "model"), ROUTES, ids=[u for u, _ in ROUTES])
def test_route_answers_rows_of_its_model(client, url, model):
    response = client.get(url)
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "application/json"
    rows = response.get_json()
    assert isinstance(rows, list) and rows
    properties = model.model_json_schema()["properties"]
    for row in rows:
        assert set(row) == set(properties)
        for name, value in row.items():
            expected = _JSON_TYPES[properties[name]["type"]]
            assert isinstance(value, expected) and not (
                expected is not bool and isinstance(value, bool)
            ), (name, value)
        model.model_validate(row, strict=True)


def test_operations_newest_first_with_links(client):
    rows = client.get(f"/api/v1/operations?{RANGE}").get_json()
    assert [r["operation_id"] for r in rows] == [SLOW_ID, FAILED_ID]
    failed = rows[1]
    assert failed["trace_id"] == TRACE_FAILED
    assert failed["jaeger_url"].endswith(f"/trace/{TRACE_FAILED}?uiFind=00000000000000c3")
    assert failed["diagnosis_url"].split("?")[0].endswith(f"/operations/{FAILED_ID}")
    assert "?from=" in failed["diagnosis_url"]  # the page is searched over the operation's time


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("type=training", {"operation_types": ["training"]}),
        ("type=training,backtesting", {"operation_types": ["training", "backtesting"]}),
        ("type=All", {"operation_types": None}),
        ("type=%24__all", {"operation_types": None}),
        ("type=", {"operation_types": None}),
        ("verdict=slow&service=ktrdr-api", {"verdicts": ["slow"], "services": ["ktrdr-api"]}),
        ("verdict=%7Bslow,failed%7D", {"verdicts": ["slow", "failed"]}),
    ],
)
def test_filters_reach_the_service_parsed(client, service, query, expected):
    assert client.get(f"/api/v1/operations?{RANGE}&{query}").status_code == 200
    name, call = service.calls[-1]
    assert name == "operations"
    for key, value in expected.items():
        assert call[key] == value


def test_filters_filter(client):
    rows = client.get(f"/api/v1/operations?{RANGE}&verdict=slow").get_json()
    assert [r["operation_id"] for r in rows] == [SLOW_ID]


@pytest.mark.parametrize(
    ("query", "start_ms", "end_ms"),
    [
        (f"from={NOW_MS - 1000}&to={NOW_MS}", NOW_MS - 1000, NOW_MS),
        ("from=2025-11-24T15:00:00Z&to=2025-11-24T16:00:00Z", NOW_MS - 3_600_000, NOW_MS),
    ],
)
def test_time_range_formats(client, service, query, start_ms, end_ms):
    assert client.get(f"/api/v1/operations?{query}").status_code == 200
    call = service.calls[-1][1]
    assert (call["start_us"], call["end_us"]) == (start_ms * 1000, end_ms * 1000)


def test_relative_range(client, service):
    assert client.get("/api/v1/operations?from=now-6h&to=now").status_code == 200
    call = service.calls[-1][1]
    assert call["end_us"] - call["start_us"] == 6 * 3600 * 1_000_000


def test_limit_is_bounded_by_max_rows(service):
    settings = make_settings(max_rows=1)
    flask_app = create_app(settings, service=service, source=service.source)
    rows = flask_app.test_client().get(f"/api/v1/operations?{RANGE}&limit=500").get_json()
    assert len(rows) == 1
    assert service.calls[-1][1]["limit"] == 1


def test_now_parameter_reaches_diagnose(client, service):
    client.get(f"/api/v1/operations/{FAILED_ID}?now=2025-11-24T16:00:00Z")
    assert service.calls[-1] == (
        "diagnose",
        {"ident": FAILED_ID, "now_us": NOW_MS * 1000, "window": None},  # no range: none
    )


@pytest.mark.parametrize("suffix", ["", "/flow", "/findings", "/solution"])
def test_the_range_is_where_one_operation_is_searched(client, service, suffix):
    """The Operation Diagnosis dashboard sends its time range; the service searches it."""
    url = f"/api/v1/operations/{FAILED_ID}{suffix}"
    assert client.get(f"{url}?from=1764000000000&to=1764003600000").status_code == 200
    assert service.calls[-1][1]["window"] == TimeRange(1764000000000000, 1764003600000000)
    assert client.get(f"{url}?from=now-2d").status_code == 200
    window = service.calls[-1][1]["window"]
    assert window.end_us - window.start_us == 2 * 86_400_000_000
    assert client.get(f"{url}?from=1764003600000&to=1764000000000").status_code == 400
    assert client.get(f"{url}?to=yesterday").get_json()["field"] == "to"


def test_trace_id_finds_the_operation(client):
    rows = client.get(f"/api/v1/operations/{TRACE_FAILED}").get_json()
    assert rows[0]["operation_id"] == FAILED_ID


def test_verdict_counts_interval_reaches_service(client, service):
    client.get(f"/api/v1/verdict-counts?{RANGE}&interval=5m")
    assert service.calls[0] == (
        "verdict_counts",
        {"bucket_us": 300_000_000, "operation_types": None, "verdicts": None, "services": None},
    )


def test_verdict_counts_interval_in_ms(client, service):
    client.get(f"/api/v1/verdict-counts?from={NOW_MS - 3_600_000}&to={NOW_MS}&interval=60000")
    assert service.calls[0][1]["bucket_us"] == 60_000_000


def test_verdict_counts_bucket_count_is_bounded(client, service):
    client.get(f"/api/v1/verdict-counts?{RANGE}&interval=1s")
    assert service.calls[0][1]["bucket_us"] == 86_400_000  # one day / 1000 buckets


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("/api/v1/operations?from=yesterday", "from"),
        ("/api/v1/operations?to=12:00", "to"),
        (f"/api/v1/operations?from={NOW_MS}&to={NOW_MS - 1}", "from"),
        ("/api/v1/operations?limit=ten", "limit"),
        ("/api/v1/operations?limit=0", "limit"),
        ("/api/v1/operations?verdict=" + "x" * 600, "verdict"),
        ("/api/v1/operations?verdict=nope", "verdict"),
        ("/api/v1/verdict-counts?verdict=healthy,helthy", "verdict"),
        ("/api/v1/verdict-counts?interval=soon", "interval"),
        ("/api/v1/verdict-counts?interval=10ms", "interval"),
        ("/api/v1/variables/colours", "name"),
        (f"/api/v1/operations/{FAILED_ID}?now=tomorrow", "now"),
        ("/api/v1/operations/" + quote("bad\x01id"), "id"),
    ],
)
def test_bad_parameter_is_400_naming_the_field(client, query, field):
    response = client.get(query)
    assert response.status_code == 400
    body = response.get_json()
    assert body["field"] == field
    assert isinstance(body["error"], str) and body["error"]


def test_unknown_id_is_404(client):
    response = client.get("/api/v1/operations/op_does_not_exist/flow")
    assert response.status_code == 404
    assert "op_does_not_exist" in response.get_json()["error"]


def test_openapi_document_is_generated_from_the_models(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {
        "/api/v1/operations",
        "/api/v1/operations/{ident}",
        "/api/v1/operations/{ident}/flow",
        "/api/v1/operations/{ident}/findings",
        "/api/v1/operations/{ident}/solution",
        "/api/v1/operations/{ident}/comparison",
        "/api/v1/verdict-counts",
        "/api/v1/variables/{name}",
        "/api/v1/annotations",
    }
    schemas = doc["components"]["schemas"]
    for model in (
        OperationRow,
        DiagnosisRow,
        FlowRow,
        FindingRow,
        SolutionRow,
        ComparisonRow,
        VerdictCountRow,
        VariableRow,
        AnnotationRow,
    ):
        assert schemas[model.__name__]["properties"].keys() == model.model_fields.keys()
        assert schemas[model.__name__]["required"] == list(model.model_fields)
    item = doc["paths"]["/api/v1/operations"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]["items"]
    assert item == {"$ref": "#/components/schemas/OperationRow"}
    params = {p["name"] for p in doc["paths"]["/api/v1/operations"]["get"]["parameters"]}
    assert params == {"from", "to", "type", "verdict", "service", "limit", "now"}


def test_finding_evidence_cells_hold_no_python_reprs():
    """The Findings panel shows ``evidence`` as text: the other rules that fired are named
    with their verdicts, a list or map value is JSON; no ``{'rule_id': …}`` reprs."""
    from opdiag.render.rows import evidence_text

    evidence = {
        "exception.type": "httpx.ConnectError",
        "also": [
            {"rule_id": "connection-error", "verdict": "service_unreachable", "span_id": "ab"},
            {"rule_id": "slow-poll", "verdict": None},
        ],
        "attr:ib.hosts": ["a", {"port": 4002}],
    }
    text = evidence_text(evidence)
    assert text == (
        'also=connection-error (service_unreachable); slow-poll (advisory), '
        'attr:ib.hosts=["a",{"port":4002}], exception.type=httpx.ConnectError'
    )
