"""Optional bearer-token auth: when ``settings.server.auth_token`` is set, every route but the
probes needs ``Authorization: Bearer <token>``. Grafana sends it from the datasource's custom
header (Infinity / simpod); Kubernetes-style probes stay open."""

from __future__ import annotations

import hmac

from flask import Flask, Response, request

from opdiag.api.errors import error_response

OPEN_PATHS = frozenset({"/healthz", "/readyz"})


def _token_matches(header: str, token: str) -> bool:
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))


def init_auth(app: Flask, token: str | None) -> None:
    """Register the check only when a token is configured (no cost otherwise)."""
    if not token:
        return

    @app.before_request
    def _require_token() -> Response | None:
        if request.path in OPEN_PATHS:
            return None
        if _token_matches(request.headers.get("Authorization", ""), token):
            return None
        response = error_response(401, "missing or invalid bearer token", "Authorization")
        response.headers["WWW-Authenticate"] = 'Bearer realm="opdiag"'
        return response
