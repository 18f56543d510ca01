"""The one place where failures become HTTP answers: ``{"error": message, "field": …}``.

opdiag errors carry their status (400/404/502/504); routing errors keep theirs (404/405/413)
but answer JSON; anything else is logged with its traceback on the server and answered with a
bare 500 — a client never sees a stack trace.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from opdiag.errors import OpdiagError

log = logging.getLogger("opdiag.api")


def error_response(status: int, message: str, field: str | None = None) -> Response:
    """The JSON error body every route answers with (see ``schemas.ErrorBody``)."""
    body: dict[str, str | None] = {"error": message, "field": field}
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _on_opdiag_error(exc: OpdiagError) -> Response:
    status = int(getattr(exc, "http_status", 500))
    if status >= 500:
        log.warning("trace source problem: %s", exc.message)
    return error_response(status, exc.message, getattr(exc, "field", None))


def _on_too_large(exc: RequestEntityTooLarge) -> Response:
    return error_response(413, "request body too large", "body")


def _on_http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    message = exc.name.lower() if exc.name else "error"
    response = error_response(status, message)
    if status == 405 and exc.response is None:
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
    return response


def _on_unexpected(exc: Exception) -> Response:
    log.exception("unhandled error while serving a request", exc_info=exc)
    return error_response(500, "internal error")


def register_error_handlers(app: Flask) -> None:
    """Install the handlers; the order of specificity is Flask's (most specific class wins)."""
    app.register_error_handler(OpdiagError, _on_opdiag_error)
    app.register_error_handler(RequestEntityTooLarge, _on_too_large)
    app.register_error_handler(HTTPException, _on_http_error)
    app.register_error_handler(Exception, _on_unexpected)
