"""Optional token auth. With ``settings.server.auth_token`` set:

- the API (REST, simpod, OpenAPI) needs ``Authorization: Bearer <token>``, which Grafana
  sends from the datasource's custom header;
- the HTML pages (``/``, ``/operations/<id>``), opened by a browser from Grafana's links,
  accept the same bearer token or HTTP Basic auth with the token as the password (any user
  name): without either they answer an HTML 401 with a Basic challenge, so the browser asks
  once and then sends it with every request to opdiag. ``server.open_pages`` serves them
  without a token (behind a single-sign-on proxy, on a trusted network);
- ``/metrics`` needs the token too (Prometheus sends it from ``authorization.credentials_file``
  in the generated scrape config), unless ``server.open_metrics``;
- the probes ``/healthz`` and ``/readyz`` stay open; ``/readyz`` says more only to a request
  that carries the token (see ``opdiag.api.health``).
"""

from __future__ import annotations

import base64
import binascii
import hmac

from flask import Flask, Response, current_app, request

from opdiag.api.errors import error_response

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
METRICS_PATH = "/metrics"
PAGE_ENDPOINTS = frozenset({"pages.index", "pages.operation"})
EXTENSION = "opdiag.auth"


def _secret_matches(given: bytes, token: str) -> bool:
    return hmac.compare_digest(given, token.encode("utf-8"))


def _header_bytes(value: str) -> bytes:
    """What the client sent in a header: WSGI hands header values over decoded as latin-1,
    so their bytes are recovered that way (UTF-8 for a token like "s3cret-tök")."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:  # not from a WSGI header (a test, a caller's own string)
        return value.encode("utf-8")


def token_in(header: str, token: str) -> bool:
    """``Bearer <token>``, or ``Basic`` credentials whose password is the token."""
    scheme, _, given = header.partition(" ")
    given = given.strip()
    if scheme.lower() == "bearer":
        return _secret_matches(_header_bytes(given), token)
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(given, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    _, sep, password = decoded.partition(":")
    return bool(sep) and _secret_matches(password.encode("utf-8"), token)


def authenticated() -> bool:
    """Does the current request carry the configured token? (False when none is set.)"""
    token = current_app.extensions.get(EXTENSION)
    return bool(token) and token_in(request.headers.get("Authorization", ""), token)


def _is_page() -> bool:
    return request.endpoint in PAGE_ENDPOINTS


def _page_challenge() -> Response:
    from opdiag.web.pages import unauthorised_page

    response = unauthorised_page()
    response.headers["WWW-Authenticate"] = 'Basic realm="opdiag", charset="UTF-8"'
    return response


def init_auth(app: Flask, token: str | None, *, open_pages: bool, open_metrics: bool) -> None:
    """Register the check only when a token is configured (no cost otherwise)."""
    app.extensions[EXTENSION] = token or None
    if not token:
        return

    @app.before_request
    def _require_token() -> Response | None:
        path = request.path
        if path in OPEN_PATHS or (open_metrics and path == METRICS_PATH):
            return None
        page = _is_page()
        if page and open_pages:
            return None
        if token_in(request.headers.get("Authorization", ""), token):
            return None
        if page:
            return _page_challenge()
        response = error_response(401, "missing or invalid bearer token", "Authorization")
        response.headers["WWW-Authenticate"] = 'Bearer realm="opdiag"'
        return response
