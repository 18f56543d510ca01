"""waitress answers some requests itself, before the app sees them: a body or header block
over its limits (413, 431), a request it cannot parse (400), a crash outside the app (500).
Its own answers are plain text; these classes make them the JSON error body of every other
answer (``{"error", "field"}``, see ``opdiag.api.errors``)."""

from __future__ import annotations

import json
import logging
from typing import Any

from waitress.channel import HTTPChannel
from waitress.task import ErrorTask

from opdiag.api.access_log import printable

log = logging.getLogger("opdiag.access")

# waitress error status -> (message, field)
_MESSAGES: dict[int, tuple[str, str | None]] = {
    400: ("bad request: the request could not be parsed", None),
    413: ("request body too large", "body"),
    431: ("request headers too large", "headers"),
}


def error_body(status: int) -> bytes:
    message, field = _MESSAGES.get(status, ("internal error", None))
    return json.dumps({"error": message, "field": field}).encode("utf-8")


class JsonErrorTask(ErrorTask):  # type: ignore[misc]
    """waitress' error answer with opdiag's JSON body; the connection still closes after it."""

    def execute(self) -> None:
        error = self.request.error
        status = int(getattr(error, "code", 500))
        body = error_body(status)
        self.status = f"{status} {getattr(error, 'reason', 'Error')}"
        self.response_headers.extend(
            [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
        )
        self.set_close_on_finish()
        self.content_length = len(body)
        # logged before the answer goes out: a client that has its answer may stop the
        # server (or a test its log capture) at once, and the line must not be lost
        log.info(
            '%s "%s %s" %d refused by the HTTP server: %s',
            _client(self.channel),
            # (a request line it could not parse leaves neither set)
            printable(getattr(self.request, "command", None) or "-"),
            printable(getattr(self.request, "path", None) or "-"),
            status,
            printable(str(getattr(error, "body", ""))),
        )
        self.write(body)


class JsonErrorChannel(HTTPChannel):  # type: ignore[misc]
    error_task_class = JsonErrorTask


def _client(channel: Any) -> str:
    addr = getattr(channel, "addr", None)
    return str(addr[0]) if isinstance(addr, tuple) and addr else "-"


def use_json_errors(server: Any) -> None:
    """Make a waitress server built by ``create_server`` answer its own errors in JSON."""
    server.channel_class = JsonErrorChannel
