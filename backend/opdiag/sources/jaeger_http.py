"""The one HTTP seam to Jaeger: a pooled ``httpx.Client`` with explicit timeouts and limits,
bounded retries with exponential backoff (connect errors and 5xx only), a global bound on
in-flight requests, an observer per call, and the translation of every transport failure
into opdiag's ``SourceUnavailableError`` / ``SourceTimeoutError``."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from opdiag.errors import (
    InputError,
    SourceTimeoutError,
    SourceUnavailableError,
    TraceFormatError,
)
from opdiag.settings import JaegerSettings
from opdiag.sources.rawbytes import has_surrogate_escape, repair_surrogates, text_bytes

Observer = Callable[[str, float, str], None]
Params = Mapping[str, str] | Sequence[tuple[str, str]] | None

# Outcome labels handed to the observer (bounded set: they become Prometheus label values).
OK = "ok"
NOT_FOUND = "not_found"
CLIENT_ERROR = "client_error"
SERVER_ERROR = "server_error"
TIMEOUT = "timeout"
UNREACHABLE = "unreachable"
ERROR = "error"

_MAX_BACKOFF_S = 5.0
_RETRYABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)


@dataclass(frozen=True, slots=True)
class Reply:
    """One answered request. Error bodies arrive as ``text/plain`` holding JSON (Go's
    ``http.Error``), and unknown paths as the UI's HTML with 200, so callers look at
    ``is_html`` before trusting a 200."""

    path: str
    status: int
    content_type: str
    body: bytes

    @property
    def is_html(self) -> bool:
        return "html" in self.content_type.lower() or self.body.lstrip()[:1] == b"<"

    def json(self) -> Any:
        """The decoded body; a truncated or non-JSON body names the endpoint."""
        if self.is_html:
            raise SourceUnavailableError(
                f"Jaeger answered HTML instead of JSON at {self.path} "
                "(endpoint absent: check the Jaeger URL, base path and API version)"
            )
        try:
            return orjson.loads(self._text())
        except orjson.JSONDecodeError as exc:
            raise SourceUnavailableError(
                f"Jaeger answered invalid JSON at {self.path}: {exc}"
            ) from None

    def _text(self) -> bytes:
        """The body as the file reader would see it: a gzip body (a proxy that compressed
        without saying so) inflated, lone surrogate escapes replaced by U+FFFD."""
        body = self.body
        try:
            body = text_bytes(body, self.path)
        except TraceFormatError as exc:
            raise SourceUnavailableError(f"Jaeger answered {exc.message}") from None
        return repair_surrogates(body) if has_surrogate_escape(body) else body

    def message(self) -> str:
        """The error text of a Jaeger error body (api_v3 or legacy envelope), else raw text."""
        try:
            doc = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict):
            err = doc.get("error")
            if isinstance(err, dict) and err.get("message"):
                return str(err["message"])
            errors = doc.get("errors")
            if isinstance(errors, list) and errors and isinstance(errors[0], dict):
                return "; ".join(str(e.get("msg", "")) for e in errors if isinstance(e, dict))
        if self.is_html:
            return "an HTML page"
        text = self.body.decode("utf-8", "replace").strip()
        return text[:300] or "(empty body)"


def _outcome(status: int) -> str:
    if status < 400:
        return OK
    if status == 404:
        return NOT_FOUND
    return CLIENT_ERROR if status < 500 else SERVER_ERROR


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return "connection refused" if "refused" in text.lower() else text


class JaegerHttp:
    """GET requests against one Jaeger base URL, safe to share between threads."""

    def __init__(
        self,
        settings: JaegerSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        observer: Observer | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not settings.url:
            raise InputError("no Jaeger URL configured", field="jaeger.url")
        self.url = settings.url.rstrip("/")
        self._settings = settings
        self._observer = observer
        self._sleep = sleep
        slots = max(1, settings.concurrency)
        self._slots = threading.BoundedSemaphore(slots)
        self._timeout = httpx.Timeout(
            settings.timeout_s,
            connect=settings.connect_timeout_s,
            pool=settings.timeout_s,
        )
        self.client = httpx.Client(
            base_url=self.url,
            timeout=self._timeout,
            limits=httpx.Limits(max_connections=slots, max_keepalive_connections=slots),
            transport=transport,
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )

    def close(self) -> None:
        self.client.close()

    def get(self, path: str, params: Params = None, *, label: str) -> Reply:
        """GET ``path``; retries connect errors and 5xx with exponential backoff, returns any
        other answer (including 4xx) for the caller to judge, raises opdiag errors."""
        attempts = max(0, self._settings.retries) + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._send(path, params, label)
            except _RETRYABLE as exc:
                if not last:
                    self._backoff(attempt)
                    continue
                if isinstance(exc, httpx.ConnectTimeout):
                    raise SourceTimeoutError(
                        f"Jaeger at {self.url} did not accept a connection within "
                        f"{self._settings.connect_timeout_s:g}s"
                    ) from None
                raise SourceUnavailableError(
                    f"cannot reach Jaeger at {self.url}: {_reason(exc)}"
                ) from None
            except httpx.TimeoutException:
                raise SourceTimeoutError(
                    f"Jaeger at {self.url} did not answer {path} within "
                    f"{self._settings.timeout_s:g}s"
                ) from None
            except httpx.HTTPError as exc:
                raise SourceUnavailableError(
                    f"cannot reach Jaeger at {self.url}: {_reason(exc)}"
                ) from None
            reply = Reply(
                path=path,
                status=response.status_code,
                content_type=response.headers.get("content-type", ""),
                body=response.content,
            )
            if reply.status >= 500:
                if not last:
                    self._backoff(attempt)
                    continue
                raise SourceUnavailableError(
                    f"Jaeger answered HTTP {reply.status} at {path} after {attempts} "
                    f"attempt(s): {reply.message()}"
                )
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, path: str, params: Params, label: str) -> httpx.Response:
        with self._slots:
            started = time.perf_counter()
            outcome = ERROR
            try:
                response = self.client.get(path, params=params)
                outcome = _outcome(response.status_code)
                return response
            except httpx.TimeoutException:
                outcome = TIMEOUT
                raise
            except (httpx.ConnectError, httpx.RemoteProtocolError):
                outcome = UNREACHABLE
                raise
            finally:
                self._observe(label, time.perf_counter() - started, outcome)

    def _observe(self, label: str, seconds: float, outcome: str) -> None:
        if self._observer is None:
            return
        # A metrics hook must never break a lookup.
        with contextlib.suppress(Exception):
            self._observer(label, seconds, outcome)

    def _backoff(self, attempt: int) -> None:
        self._sleep(min(_MAX_BACKOFF_S, self._settings.backoff_s * (2**attempt)))
