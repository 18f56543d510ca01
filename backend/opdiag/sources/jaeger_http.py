"""The one HTTP seam to Jaeger: a pooled ``httpx.Client`` with explicit timeouts and limits,
an overall deadline and a size cap per call (answers are streamed and counted), bounded
retries with exponential backoff (connect errors and 5xx only), a global bound on in-flight
requests, an observer per call, and the translation of every transport failure into opdiag's
``SourceUnavailableError`` / ``SourceTimeoutError``."""

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
from opdiag.sources.budget import Budget, BudgetSpent, BudgetSpentError
from opdiag.sources.budget import current as current_budget
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


class _DeadlineExceeded(Exception):
    """The call's overall deadline passed (reported as ``SourceTimeoutError``)."""


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


def _closed(exc: Exception) -> bool:
    """A protocol error that is a connection closed before an answer (a restart, a proxy
    dropping it), not an answer in another protocol."""
    text = str(exc).lower()
    return "disconnected" in text or "closed" in text or "without sending" in text


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
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not settings.url:
            raise InputError("no Jaeger URL configured", field="jaeger.url")
        self.url = settings.url.rstrip("/")
        self._settings = settings
        self._observer = observer
        self._sleep = sleep
        self._monotonic = monotonic
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
        other answer (including 4xx) for the caller to judge, raises opdiag errors.

        The whole call — waiting for a connection slot, every attempt, every byte of the
        answer, the backoff between attempts — ends within ``deadline_s`` (give or take one
        read timeout), or raises ``SourceTimeoutError`` (504): a Jaeger that sends its answer
        a byte at a time never trips a read timeout. An answer longer than
        ``max_answer_bytes`` is refused while it streams, before it is decoded (502)."""
        now = self._monotonic()
        deadline = now + self._settings.deadline_s
        budget = current_budget()
        if budget is not None:  # the request's own bound over all its calls
            try:
                deadline = min(deadline, budget.start_call(now, self._settings.budget_s))
            except BudgetSpent:
                raise self._spent(budget) from None
        attempts = max(0, self._settings.retries) + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                reply = self._send(path, params, label, deadline)
            except _RETRYABLE as exc:
                if not last and self._backoff(attempt, deadline):
                    continue
                if isinstance(exc, httpx.ConnectTimeout):
                    raise SourceTimeoutError(
                        f"Jaeger at {self.url} did not accept a connection within "
                        f"{self._settings.connect_timeout_s:g}s"
                    ) from None
                if isinstance(exc, httpx.RemoteProtocolError) and not _closed(exc):
                    # it answered, but not in HTTP: another service on that port?
                    raise SourceUnavailableError(
                        f"{self.url} answered {path} with something that is not HTTP "
                        f"(is it Jaeger's query/UI address?): {_reason(exc)[:120]}"
                    ) from None
                raise SourceUnavailableError(
                    f"cannot reach Jaeger at {self.url}: {_reason(exc)}"
                ) from None
            except _DeadlineExceeded:
                raise self._late(path, budget, deadline) from None
            except httpx.TimeoutException:
                if self._monotonic() >= deadline:
                    raise self._late(path, budget, deadline) from None
                raise SourceTimeoutError(
                    f"Jaeger at {self.url} did not answer {path} within "
                    f"{self._settings.timeout_s:g}s"
                ) from None
            except httpx.HTTPError as exc:
                raise SourceUnavailableError(
                    f"cannot reach Jaeger at {self.url}: {_reason(exc)}"
                ) from None
            except httpx.InvalidURL as exc:  # an id or filter no URL holds (thousands long)
                raise InputError(f"cannot ask Jaeger for {path[:80]}: {exc}") from None
            if reply.status >= 500:
                if not last and self._backoff(attempt, deadline):
                    continue
                raise SourceUnavailableError(
                    f"Jaeger answered HTTP {reply.status} at {path} after {attempt + 1} "
                    f"attempt(s): {reply.message()}"
                )
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    def _late(self, path: str, budget: Budget | None, deadline: float) -> SourceTimeoutError:
        if budget is not None and deadline == budget.ends:
            return self._spent(budget)
        return SourceTimeoutError(
            f"Jaeger at {self.url} did not finish answering {path} within "
            f"{self._settings.deadline_s:g}s (jaeger.deadline_s)"
        )

    def _spent(self, budget: Budget) -> BudgetSpentError:
        return BudgetSpentError(
            f"Jaeger at {self.url} is too slow for this request: its {budget.calls} "
            f"call(s) used the {budget.seconds or 0:g}s it may spend on Jaeger in all "
            "(jaeger.budget_s); narrow the time range or raise jaeger.budget_s",
            budget,
        )

    def _send(self, path: str, params: Params, label: str, deadline: float) -> Reply:
        """One attempt, its answer read whole within the deadline and the size cap."""
        remaining = deadline - self._monotonic()
        if remaining <= 0 or not self._slots.acquire(timeout=remaining):
            raise _DeadlineExceeded
        try:
            started = time.perf_counter()
            outcome = ERROR
            try:
                reply = self._read(path, params, deadline)
                outcome = _outcome(reply.status)
                return reply
            except (httpx.TimeoutException, _DeadlineExceeded):
                outcome = TIMEOUT
                raise
            except (httpx.ConnectError, httpx.RemoteProtocolError):
                outcome = UNREACHABLE
                raise
            finally:
                self._observe(label, time.perf_counter() - started, outcome)
        finally:
            self._slots.release()

    def _read(self, path: str, params: Params, deadline: float) -> Reply:
        """Stream the answer: no read may wait past the deadline, and the bytes are counted
        as they come (a declared length over the cap is refused before any is read)."""
        remaining = max(0.001, deadline - self._monotonic())
        timeout = httpx.Timeout(
            min(self._settings.timeout_s, remaining),
            connect=min(self._settings.connect_timeout_s, remaining),
        )
        cap = self._settings.max_answer_bytes
        with self.client.stream("GET", path, params=params, timeout=timeout) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                raise self._too_large(path)
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > cap:
                    raise self._too_large(path)
                chunks.append(chunk)
                if self._monotonic() >= deadline:
                    raise _DeadlineExceeded
            return Reply(
                path=path,
                status=response.status_code,
                content_type=response.headers.get("content-type", ""),
                body=b"".join(chunks),
            )

    def _too_large(self, path: str) -> SourceUnavailableError:
        return SourceUnavailableError(
            f"Jaeger's answer at {path} is larger than {self._settings.max_answer_bytes} "
            "bytes (jaeger.max_answer_bytes): narrow the time range, or raise the cap"
        )

    def _observe(self, label: str, seconds: float, outcome: str) -> None:
        if self._observer is None:
            return
        # A metrics hook must never break a lookup.
        with contextlib.suppress(Exception):
            self._observer(label, seconds, outcome)

    def _backoff(self, attempt: int, deadline: float) -> bool:
        """Sleep before the next attempt; False (no sleep) when it would end past the
        deadline, so the caller reports the last failure instead."""
        pause = min(_MAX_BACKOFF_S, self._settings.backoff_s * (2**attempt))
        if self._monotonic() + pause >= deadline:
            return False
        self._sleep(pause)
        return True
