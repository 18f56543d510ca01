"""JSON-RPC answers the MCP SDK does not give over stdio, for ``opdiag mcp``.

The SDK drops a line it cannot read as a message without a word (a line that is not JSON,
``params`` that are not an object), so the client waits for an answer that never comes, and
answers ``params`` its schema refuses with "Invalid request parameters" and empty data. JSON-RPC
2.0 asks for a parse error (-32700, id null) and an invalid request (-32600); a client, or the
assistant behind it, fixes a request faster when the answer says what is wrong.

``ExplainedReadStream`` wraps the transport's read stream and answers each unreadable line;
``explain_invalid_params`` is a server middleware that names the params at fault.

The SDK also ends the session as soon as stdin ends, cancelling the requests still running: a
client that writes its requests and closes its end (``opdiag mcp < requests.jsonl``) got the
answers of the quick ones only. The read stream reports the end of input once every request
it passed on has been answered (``Pending``, told by ``AnsweredWriteStream``), or cancelled.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import anyio
from pydantic import ValidationError

log = logging.getLogger(__name__)

PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS = -32700, -32600, -32602
MAX_PROBLEMS = 8
_MAX_TEXT = 200
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return _JSON_TYPES.get(type(value), "a number")


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def problems(exc: ValidationError, prefix: str = "params") -> list[dict[str, str]]:
    """``exc``'s errors as ``{"field", "problem"}`` (pydantic's text, never the input)."""
    out = []
    for error in exc.errors()[:MAX_PROBLEMS]:
        loc = tuple(str(part) for part in error.get("loc", ()))
        path = ".".join(loc if loc[:1] == (prefix,) else (prefix, *loc))
        out.append({"field": _cut(path), "problem": _cut(str(error.get("msg", "invalid")))})
    return out


# --- lines that are not messages ---------------------------------------------------------------


def _request_id(message: dict[str, Any]) -> str | int | None:
    """The id JSON-RPC lets a reply carry: a string or an integer (not a boolean)."""
    ident = message.get("id")
    return ident if isinstance(ident, str | int) and not isinstance(ident, bool) else None


def _message_of(exc: ValidationError) -> Any:
    """The JSON value a line held, as the errors of its validation carry it: a field missing
    at the top of a message type names the whole object; a value of the wrong type is it."""
    for error in exc.errors():
        loc = error.get("loc", ())
        if error.get("type") == "missing" and len(loc) == 2:
            return error.get("input")
        if error.get("type") == "model_type" and len(loc) == 1:
            return error.get("input")
    return None


def _as_request(exc: ValidationError) -> list[dict[str, str]]:
    """What is wrong with a line read as a request (the member of the message union)."""
    mine = [e for e in exc.errors() if e.get("loc", ())[:1] == ("JSONRPCRequest",)]
    return [
        {"field": _cut(".".join(str(p) for p in e["loc"][1:]) or "message"),
         "problem": _cut(str(e.get("msg", "invalid")))}
        for e in mine[:MAX_PROBLEMS]
    ]


def reply_to_unreadable(exc: Exception) -> dict[str, Any] | None:
    """The JSON-RPC error a line the transport could not read gets (``{"code", "message",
    "data"}`` and the id it goes to, as ``{"id", "error"}``), or None for one that gets no
    reply: a notification (no id) or a response, which JSON-RPC never answers."""
    if not isinstance(exc, ValidationError):
        return _error(None, INVALID_REQUEST, "Invalid Request: the line could not be read")
    first = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":
        why = _cut(str(first.get("ctx", {}).get("error", "not JSON")))
        return _error(None, PARSE_ERROR, f"Parse error: the line is not JSON ({why})")
    message = _message_of(exc)
    if not isinstance(message, dict):
        what = "a batch (an array), which MCP does not take" if isinstance(message, list) else (
            _json_type(message)
        )
        text = f"Invalid Request: a message is an object, not {what}"
        return _error(None, INVALID_REQUEST, text)
    ident = _request_id(message)
    if "method" not in message and ("result" in message or "error" in message):
        return None  # a response that did not validate: nothing to answer
    if "id" not in message and isinstance(message.get("method"), str):
        return None  # a notification
    method, params = message.get("method"), message.get("params")
    if isinstance(method, str) and "params" in message and not isinstance(params, dict):
        problem = f"must be an object, not {_json_type(params)}"
        text = f"Invalid params of {_cut(method)}: params {problem}"
        return _error(ident, INVALID_PARAMS, text, [{"field": "params", "problem": problem}])
    found = _as_request(exc)
    said = "; ".join(f"{p['field']}: {p['problem']}" for p in found[:3])
    text = f"Invalid Request: {said or 'not a JSON-RPC 2.0 request'}"
    return _error(ident, INVALID_REQUEST, text, found)


def _error(
    ident: str | int | None, code: int, message: str, data: Any = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data:
        error["data"] = data
    return {"id": ident, "error": error}


# How long the end of input waits for the answers still owed (a tool call's own Jaeger
# budget ends it sooner): past it, what is left is cancelled as before.
ANSWER_WAIT_S = 300.0


class Pending:
    """The ids of requests read and not yet answered."""

    def __init__(self) -> None:
        self.ids: set[Any] = set()
        self._changed = anyio.Event()

    def add(self, ident: Any) -> None:
        self.ids.add(ident)

    def done(self, ident: Any) -> None:
        if ident in self.ids:
            self.ids.discard(ident)
            self._changed.set()
            self._changed = anyio.Event()

    async def drained(self, limit_s: float) -> None:
        """Return once none is owed, or after ``limit_s``."""
        with anyio.move_on_after(limit_s):
            while self.ids:
                await self._changed.wait()
        if self.ids:
            log.warning("input ended with %d request(s) unanswered after %.0f s",
                        len(self.ids), limit_s)


class _Wrapped:
    """A transport stream wrapped: closing it closes the one inside, also as a context
    manager, as the SDK's streams do."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class AnsweredWriteStream(_Wrapped):
    """The transport's write stream, telling ``pending`` which requests got their answer.
    Duck-types the SDK's ``WriteStream``."""

    def __init__(self, inner: Any, pending: Pending) -> None:
        super().__init__(inner)
        self._pending = pending

    async def send(self, item: Any) -> None:
        await self._inner.send(item)
        message = getattr(item, "message", None)
        if _is_answer(message):
            self._pending.done(message.id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _is_answer(message: Any) -> bool:
    from mcp_types import JSONRPCError, JSONRPCResponse

    return isinstance(message, JSONRPCResponse | JSONRPCError)


def _note(message: Any, pending: Pending) -> None:
    """A request is owed an answer; a cancellation (``notifications/cancelled``) of one is
    not answered (MCP says so)."""
    from mcp_types import JSONRPCNotification, JSONRPCRequest

    if isinstance(message, JSONRPCRequest):
        pending.add(message.id)
    elif isinstance(message, JSONRPCNotification) and message.method == "notifications/cancelled":
        params = message.params if isinstance(message.params, dict) else {}
        pending.done(params.get("requestId"))


class ExplainedReadStream(_Wrapped):
    """The transport's read stream of messages (or the exceptions of lines it could not
    read), passing messages on and answering each unreadable line on ``write`` as JSON-RPC
    asks; with ``pending``, its end waits for the answers owed. Duck-types the SDK's
    ``ReadStream`` (``last_context`` included)."""

    def __init__(self, inner: Any, write: Any, pending: Pending | None = None) -> None:
        super().__init__(inner)
        self._write = write
        self._pending = pending

    @property
    def last_context(self) -> Any:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> Any:
        while True:
            try:
                item = await self._inner.receive()
            except anyio.EndOfStream:
                if self._pending is not None:
                    await self._pending.drained(ANSWER_WAIT_S)
                raise
            if not isinstance(item, Exception):
                if self._pending is not None:
                    _note(getattr(item, "message", None), self._pending)
                return item
            await self._answer(item)

    async def _answer(self, exc: Exception) -> None:
        from mcp.shared.message import SessionMessage
        from mcp_types import ErrorData, JSONRPCError

        reply = reply_to_unreadable(exc)
        if reply is None:
            log.debug("unreadable message needs no reply: %r", exc)
            return
        error = JSONRPCError(jsonrpc="2.0", id=reply["id"], error=ErrorData(**reply["error"]))
        try:
            await self._write.send(SessionMessage(error))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            log.debug("no reply to an unreadable line: the connection is closing")

    def __aiter__(self) -> ExplainedReadStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None


# --- params a request's schema refuses ----------------------------------------------------------


async def explain_invalid_params(ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
    """Server middleware: params the method's schema refuses (missing, not an object, a
    field of the wrong type) answer -32602 naming the fields and what is wrong with each,
    where the SDK said "Invalid request parameters" with empty data."""
    from mcp.shared.exceptions import MCPError

    try:
        return await call_next(ctx)
    except ValidationError as exc:
        found = problems(exc)
        said = "; ".join(f"{p['field']}: {p['problem']}" for p in found[:3])
        if ctx.params is None:
            said = "params missing"
        raise MCPError(
            code=INVALID_PARAMS,
            message=f"Invalid params of {_cut(str(ctx.method))}: {said or 'refused'}",
            data=found,
        ) from None
