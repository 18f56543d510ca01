"""Rules that hold for every route: bearer auth, the JSON error shape, no traceback ever,
Jaeger failures as 502/504, 413 for oversized bodies, routing errors as JSON."""

from __future__ import annotations

import logging

import pytest
from api_support import (
    FAILED_ID,
    SOURCE_ERRORS,
    FakeService,
    make_settings,
)
from opdiag.api.app import create_app

TOKEN = "s3cret-token"
GET_ROUTES = [
    "/",
    f"/operations/{FAILED_ID}",
    "/api/v1/operations",
    f"/api/v1/operations/{FAILED_ID}",
    f"/api/v1/operations/{FAILED_ID}/flow",
    f"/api/v1/operations/{FAILED_ID}/findings",
    f"/api/v1/operations/{FAILED_ID}/solution",
    "/api/v1/verdict-counts",
    "/api/v1/variables/services",
    "/api/v1/openapi.json",
    "/metrics",
    "/simpod/",
]
POST_ROUTES = [
    ("/simpod/metrics", {"metric": ""}),
    ("/simpod/metric-payload-options", {"metric": "flow", "payload": {}, "name": "operation_id"}),
    ("/simpod/query", {"targets": [{"target": "operations", "refId": "A"}]}),
    ("/simpod/variable", {"payload": {"target": "services"}}),
    ("/simpod/tag-keys", {}),
    ("/simpod/tag-values", {"key": "service"}),
]
# Routes that ask the service (and so the trace source) for data.
SOURCE_ROUTES = [r for r in GET_ROUTES if r not in ("/api/v1/openapi.json", "/metrics", "/simpod/")]
SOURCE_POSTS = [(p, b) for p, b in POST_ROUTES if p not in ("/simpod/metrics", "/simpod/tag-keys")]
PAGE_ROUTES = {"/", f"/operations/{FAILED_ID}"}

pytest_plugins = ("api_fixtures",)


@pytest.fixture
def auth_client(service):
    flask_app = create_app(make_settings(auth_token=TOKEN), service=service, source=service.source)
    return flask_app.test_client()


def _call(test_client, route, body=None, headers=None):
    if body is None:
        return test_client.get(route, headers=headers or {})
    return test_client.post(route, json=body, headers=headers or {})


ALL = [(r, None) for r in GET_ROUTES] + POST_ROUTES
IDS = [r for r, _ in ALL]


@pytest.mark.parametrize(("route", "body"), ALL, ids=IDS)
@pytest.mark.parametrize(
    "header", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"bearer {TOKEN}x", "Bearer"]
)
def test_auth_refuses_without_the_token(auth_client, route, body, header):
    headers = {"Authorization": header} if header else {}
    response = _call(auth_client, route, body, headers)
    assert response.status_code == 401
    if route in PAGE_ROUTES:  # a browser is asked for the token (test_auth_reach)
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        assert response.mimetype == "text/html"
        return
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json() == {
        "error": "missing or invalid bearer token",
        "field": "Authorization",
    }


@pytest.mark.parametrize(("route", "body"), ALL, ids=IDS)
def test_auth_accepts_the_token(auth_client, route, body):
    response = _call(auth_client, route, body, {"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200


@pytest.mark.parametrize("route", ["/healthz", "/readyz"])
def test_probes_stay_open_with_auth(auth_client, route):
    assert auth_client.get(route).status_code == 200


@pytest.mark.parametrize(("route", "body"), ALL, ids=IDS)
def test_no_auth_configured_means_open(client, route, body):
    assert _call(client, route, body).status_code == 200


@pytest.mark.parametrize("error_status", SOURCE_ERRORS, ids=["unavailable", "timeout"])
@pytest.mark.parametrize(
    ("route", "body"),
    [(r, None) for r in SOURCE_ROUTES] + SOURCE_POSTS,
    ids=SOURCE_ROUTES + [p for p, _ in SOURCE_POSTS],
)
def test_source_failure_is_502_or_504_with_message(client, service, route, body, error_status):
    error, status = error_status
    service.raise_error = error
    response = _call(client, route, body)
    assert response.status_code == status
    if route in PAGE_ROUTES:  # people read pages: the same message, as an HTML page
        assert response.mimetype == "text/html"
        assert error.message in response.get_data(as_text=True)
        return
    assert response.mimetype == "application/json"
    assert response.get_json()["error"] == error.message


@pytest.mark.parametrize(
    ("route", "body"),
    [(r, None) for r in SOURCE_ROUTES] + SOURCE_POSTS,
    ids=SOURCE_ROUTES + [p for p, _ in SOURCE_POSTS],
)
def test_unexpected_error_is_500_without_traceback(client, service, route, body, caplog):
    service.raise_error = RuntimeError("secret internals at /etc/opdiag line 42")
    with caplog.at_level(logging.ERROR, logger="opdiag.api"):
        response = _call(client, route, body)
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal error", "field": None}
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "secret internals" not in text
    assert "secret internals" in caplog.text  # logged for the operator


def test_body_over_the_limit_is_413(service):
    flask_app = create_app(
        make_settings(max_request_bytes=1000), service=service, source=service.source
    )
    response = flask_app.test_client().post(
        "/simpod/query", data="{" + " " * 2000 + "}", content_type="application/json"
    )
    assert response.status_code == 413
    assert response.get_json() == {"error": "request body too large", "field": "body"}


def test_wrong_method_is_405_json(client):
    response = client.post("/api/v1/operations")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method not allowed"
    assert "GET" in response.headers["Allow"]


def test_unknown_path_is_404_json(client):
    response = client.get("/api/v2/nothing")
    assert response.status_code == 404
    assert response.get_json() == {"error": "not found", "field": None}


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '"text"'])
def test_bad_json_body_is_400(client, body):
    response = client.post("/simpod/query", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["field"] == "body"


def test_errors_are_not_cached(client):
    assert client.get("/api/v1/operations/nope").headers["Cache-Control"] == "no-store"


def test_fake_service_is_used(service: FakeService, client):
    client.get(f"/api/v1/operations/{FAILED_ID}")
    assert service.calls[-1][0] == "diagnose"
