"""Hostile requests (issue 11, items 8 and 9): out-of-range times, JSON nested past any
sense, values of the wrong type, lone surrogates, too many targets. Every one is a 400 naming
the field (or exit 2 on the CLI), never a 500 or a traceback."""

from __future__ import annotations

import json

import pytest
from api_support import FAILED_ID, make_settings
from opdiag.api.app import create_app
from opdiag.cli.main import main
from opdiag.errors import InputError
from opdiag.timeutil import parse_http_time, parse_now

pytest_plugins = ("api_fixtures",)

NOW_US = 1_764_000_000_000_000
OUT_OF_RANGE = [
    "now-99999999999w/M",
    "now-99999999999w",
    "now+99999999999w/d",
    "now-9999999999999999999999999999w/M",
    "now-" + "9" * 400 + "s",
    "now-60y",  # not a unit of an offset
    "now-100000d",  # before 1970
    "0001-01-01T00:00:00Z",
    "-5",
]


@pytest.mark.parametrize("text", OUT_OF_RANGE)
def test_out_of_range_times_are_input_errors(text):
    with pytest.raises(InputError) as info:
        parse_http_time(text, name="from", now_us=NOW_US)
    assert info.value.field == "from"


def test_now_before_1970_is_an_input_error():
    with pytest.raises(InputError):
        parse_now("1969-12-31T23:59:59Z")


@pytest.mark.parametrize("text", OUT_OF_RANGE[:4])
def test_rest_routes_answer_400_for_out_of_range_times(client, text):
    for route in ("/api/v1/operations", "/api/v1/verdict-counts", "/api/v1/variables/services"):
        for name in ("from", "to"):
            response = client.get(route, query_string={name: text})
            assert response.status_code == 400, (route, name, response.data)
            assert response.get_json()["field"] == name
    response = client.get(f"/api/v1/operations/{FAILED_ID}", query_string={"now": text})
    assert response.status_code == 400
    assert response.get_json()["field"] == "now"


@pytest.mark.parametrize("text", OUT_OF_RANGE[:4])
def test_simpod_answers_400_for_out_of_range_times(client, text):
    for target in ("operations", "verdict_counts"):
        body = {"targets": [{"target": target, "refId": "A"}], "range": {"raw": {"from": text}}}
        response = client.post("/simpod/query", json=body)
        assert response.status_code == 400, response.data
        assert response.get_json()["field"] == "range.from"
    body = {"payload": {"target": "services"}, "range": {"from": text, "to": "now"}}
    assert client.post("/simpod/variable", json=body).status_code == 400
    target = {"target": "flow", "refId": "A", "payload": {"operation_id": FAILED_ID, "now": text}}
    response = client.post("/simpod/query", json={"targets": [target]})
    assert response.status_code == 400
    assert response.get_json()["field"] == "targets[0].payload.now"


@pytest.mark.parametrize("text", OUT_OF_RANGE[:4])
def test_index_page_answers_400_for_out_of_range_times(client, text):
    response = client.get("/", query_string={"from": text})
    assert response.status_code == 400
    assert response.mimetype == "text/html"


@pytest.mark.parametrize("flag", ["--from", "--to", "--now"])
def test_cli_exits_2_for_out_of_range_times(capsys, demo_traces, flag):
    status = main(["operations", "--traces", str(demo_traces), flag, "now-99999999999w/M"])
    err = capsys.readouterr().err
    assert status == 2, err
    assert flag in err
    assert "Traceback" not in err and "internal error" not in err


def test_cli_diagnose_exits_2_for_an_out_of_range_now(capsys, demo_traces):
    status = main(["diagnose", "x", "--traces", str(demo_traces), "--now", "99999999999999"])
    assert status == 2
    assert "--now" in capsys.readouterr().err


# -- item 9: simpod bodies ------------------------------------------------------------------


def _raw_post(client, path, text):
    return client.post(path, data=text.encode("utf-8"), content_type="application/json")


@pytest.mark.parametrize("opening,closing", [("[", "]"), ('{"a":', "}")])
def test_a_body_nested_100k_deep_is_400(client, opening, closing):
    for path in ("/simpod/query", "/simpod/variable", "/simpod/tag-values"):
        response = _raw_post(client, path, opening * 100_000 + "1" + closing * 100_000)
        assert response.status_code == 400, (path, response.data[:200])
        assert response.get_json()["field"] == "body"


def test_a_string_payload_nested_deep_is_400(client):
    target = {"target": "operations", "refId": "A", "payload": "[" * 5000 + "]" * 5000}
    response = client.post("/simpod/query", json={"targets": [target]})
    assert response.status_code == 400
    assert response.get_json()["field"] == "targets[0].payload"


@pytest.mark.parametrize("key", [["service"], {"a": 1}, 5, None, True])
def test_tag_values_with_a_key_that_is_not_text_is_400(client, key):
    response = client.post("/simpod/tag-values", json={"key": key})
    assert response.status_code == 400
    assert response.get_json()["field"] == "key"


@pytest.mark.parametrize(
    "text",
    [
        '{"targets": [{"target": "operations", "refId": "\\ud800"}]}',
        '{"targets": [{"target": "operations", "refId": "A\\udc00"}]}',
        '{"targets": [{"target": "operations", "refId": "A", "payload": {"type": "\\ud83d"}}]}',
    ],
)
def test_a_lone_surrogate_anywhere_in_the_body_is_400(client, text):
    response = _raw_post(client, "/simpod/query", text)
    assert response.status_code == 400, response.data[:300]
    assert response.get_json()["field"] == "body"
    assert "surrogate" in response.get_json()["error"]


@pytest.mark.parametrize("ref_id", [["A"], {"x": 1}])
def test_a_ref_id_that_is_not_text_is_400(client, ref_id):
    target = {"target": "operations", "refId": ref_id}
    response = client.post("/simpod/query", json={"targets": [target]})
    assert response.status_code == 400
    assert response.get_json()["field"] == "targets[0].refId"


def test_the_number_of_targets_is_capped(service):
    app = create_app(
        make_settings(max_targets=3), service=service, source=service.source
    )
    client = app.test_client()
    targets = [{"target": "operations", "refId": f"R{i}"} for i in range(4)]
    response = client.post("/simpod/query", json={"targets": targets})
    assert response.status_code == 400
    body = response.get_json()
    assert body["field"] == "targets" and "3" in body["error"]
    assert not [c for c in service.calls if c[0] == "operations"]  # refused before any work
    response = client.post("/simpod/query", json={"targets": targets[:3]})
    assert response.status_code == 200
    assert [frame["refId"] for frame in response.get_json()] == ["R0", "R1", "R2"]


def test_max_targets_is_a_setting_with_an_env_var():
    from opdiag.settings import load_settings

    assert load_settings(environ={"OPDIAG_MAX_TARGETS": "7"}).server.max_targets == 7
    assert load_settings(environ={}).server.max_targets >= 26  # Grafana's A..Z fit


def test_tag_values_still_answers_for_a_text_key(client):
    response = client.post("/simpod/tag-values", json={"key": "verdict"})
    assert response.status_code == 200
    assert {"text": "healthy"} in response.get_json()
    assert json.loads(response.data)  # plain JSON


# Found by fuzzing the API: both answered 500.
@pytest.mark.parametrize("key", [{}, ["verdict"], {"a": 1}, 5, None])
@pytest.mark.parametrize("target", ["operations", "annotations"])
def test_an_ad_hoc_filter_key_that_is_not_text_is_400(client, key, target):
    body = {"targets": [{"target": target}], "filters": [{"key": key}]}
    response = client.post("/simpod/query", json=body)
    assert response.status_code == 400, response.data
    assert response.get_json()["field"] == "filters[0].key"


@pytest.mark.parametrize("to", ["now", "2026-11-24T08:46:00Z"])
def test_the_index_page_with_only_an_end_answers(to):
    """Over a file source the default span reaches before 1970: the page starts at 1970."""
    client = create_app(make_settings()).test_client()
    response = client.get("/", query_string={"to": to})
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "text/html"
    assert b"year" not in response.data and b"internal error" not in response.data
    assert b"all recorded time" in response.data and b"ms after 1970" not in response.data


def test_a_time_no_calendar_holds_shows_as_milliseconds():
    from opdiag.web.filters import utc

    assert utc(1_764_000_000_000) == "2025-11-24 16:00:00"
    assert utc(-2**62 // 1000) == f"{-2**62 // 1000} ms after 1970"
    assert utc(2**62) == f"{2**62} ms after 1970"
