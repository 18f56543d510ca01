"""One access-log line per request on the ``opdiag.access`` logger:
``127.0.0.1 "GET /api/v1/operations?limit=1" 200 12.3 ms 1234 B``. The path and query come
from the client, so characters that could forge a log line are escaped. Answers waitress
gives on its own are logged by ``opdiag.api.waitress_errors``."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

log = logging.getLogger("opdiag.access")


def printable(text: str) -> str:
    """``text`` with control characters, quotes and backslashes escaped."""
    out = []
    for char in text:
        if char in '"\\' or not char.isprintable():
            out.append(char.encode("unicode_escape").decode("ascii") if char != '"' else '\\"')
        else:
            out.append(char)
    return "".join(out)


def init_access_log(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.opdiag_access_started = time.perf_counter()

    @app.after_request
    def _log(response: Response) -> Response:
        started = g.get("opdiag_access_started")
        elapsed_ms = (time.perf_counter() - started) * 1000 if started is not None else 0.0
        target = request.full_path.removesuffix("?") if request.query_string else request.path
        log.info(
            '%s "%s %s" %d %.1f ms %s B',
            request.remote_addr or "-",
            printable(request.method),
            printable(target),
            response.status_code,
            elapsed_ms,
            response.headers.get("Content-Length", "-"),
        )
        return response
