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
