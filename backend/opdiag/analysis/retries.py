"""Failed calls that a retry made good: a client call that failed, followed by the same call
from the same caller that succeeded.

KTRDR's CLI retries a dispatch the backend answered with a 500 or a 503, and its ``--follow``
polls again after a poll timed out. When a later attempt succeeds, the operation did not fail
on the first one: the attempt's error spans (the CLI's call, the backend's answer, the
backend's call to a dead worker) are history, not the operation's outcome. The same call is
the same caller (parent span, service), the same span name, method and URL (scheme, host,
port and path; the query may differ); the retry starts once the failed attempt has ended and
is itself neither in error nor answered >= 400. A different URL is not a retry (a dispatch
sent to another worker is a new decision of the backend's, judged on its own).

Pure: a trace and its walk in, the retried attempts out (``model.below`` gives the spans
under one).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

import msgspec

from opdiag.model import CLIENT, Span, Trace, http_status


class Retry(msgspec.Struct, frozen=True):
    """A failed attempt and what made it good: the later identical call that succeeded
    (``how="retry"``), or for a status poll the operation's completion (``"completed"``)
    or the first sign of life of the service it polled (``"answered"``)."""

    failed: Span
    retry: Span
    how: str = "retry"


def _call_key(span: Span) -> tuple[str, str, str, str] | None:
    """What makes two client spans the same call: service, name, method, URL without the
    query (None: a span without a URL is not recognised as a repeatable call)."""
    attrs = span.attributes
    url = attrs.get("http.url") or attrs.get("url.full")
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    method = attrs.get("http.method") or attrs.get("http.request.method") or ""
    where = f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"
    return (span.service, span.name, str(method).upper(), where)


def _failed(span: Span) -> bool:
    if span.error:
        return True
    status = http_status(span)
    return status is not None and status >= 400


def retries(trace: Trace, walk: Sequence[tuple[Span, int]]) -> list[Retry]:
    """Every failed client call of ``walk`` (spans of ``trace``) that a later identical call
    from the same parent made good, oldest first."""
    out: list[Retry] = []
    for span, _ in walk:
        if span.kind != CLIENT or not _failed(span):
            continue
        key = _call_key(span)
        if key is None:
            continue
        parent = span.parent_id
        siblings = trace.roots if parent is None else trace.children.get(parent, ())
        ended = span.start_us + span.duration_us
        for other in siblings:  # in start order
            if other.start_us < ended or other is span or other.kind != CLIENT:
                continue
            if _call_key(other) == key and not _failed(other):
                out.append(Retry(span, other))
                break
    return out
