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

from bisect import bisect_left
from collections.abc import Sequence
from urllib.parse import urlsplit

import msgspec

from opdiag.model import CLIENT, Span, Trace, failed, url_of

CallKey = tuple[str, str, str, str]
# per call: the calls' starts (in start order) and, from each, the first that succeeded
_Calls = tuple[list[int], list[Span | None]]


class Retry(msgspec.Struct, frozen=True):
    """A failed attempt and what made it good: the later identical call that succeeded
    (``how="retry"``), or for a status poll the operation's completion (``"completed"``)
    or the first sign of life of the service it polled (``"answered"``)."""

    failed: Span
    retry: Span
    how: str = "retry"


def call_key(span: Span) -> CallKey | None:
    """What makes two client spans the same call: service, name, method, URL without the
    query (None: a span without a URL is not recognised as a repeatable call)."""
    url = url_of(span)
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    attrs = span.attributes
    method = attrs.get("http.method") or attrs.get("http.request.method") or ""
    where = f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"
    return (span.service, span.name, str(method).upper(), where)


def retries(trace: Trace, walk: Sequence[tuple[Span, int]]) -> list[Retry]:
    """Every failed client call of ``walk`` (spans of ``trace``) that a later identical call
    from the same parent made good, oldest first. Each parent's calls are grouped by call
    once, so ten thousand failed polls under one command cost a lookup each, not a scan."""
    out: list[Retry] = []
    by_parent: dict[str | None, dict[CallKey, _Calls]] = {}
    for span, _ in walk:
        if span.kind != CLIENT or not failed(span):
            continue
        key = call_key(span)
        if key is None:
            continue
        parent = span.parent_id
        calls = by_parent.get(parent)
        if calls is None:
            siblings = trace.roots if parent is None else trace.children.get(parent, ())
            calls = by_parent[parent] = _calls_of(siblings)
        found = calls.get(key)
        if found is None:
            continue
        starts, next_good = found
        i = bisect_left(starts, span.start_us + span.duration_us)
        if i < len(next_good) and (good := next_good[i]) is not None:
            out.append(Retry(span, good))
    return out


def _calls_of(siblings: Sequence[Span]) -> dict[CallKey, _Calls]:
    grouped: dict[CallKey, list[Span]] = {}
    for other in siblings:
        if other.kind == CLIENT and (key := call_key(other)) is not None:
            grouped.setdefault(key, []).append(other)
    out: dict[CallKey, _Calls] = {}
    for key, calls in grouped.items():
        calls.sort(key=lambda s: s.start_us)
        next_good: list[Span | None] = [None] * len(calls)
        good: Span | None = None
        for i in range(len(calls) - 1, -1, -1):
            if not failed(calls[i]):
                good = calls[i]
            next_good[i] = good
        out[key] = ([c.start_us for c in calls], next_good)
    return out
