"""Does one span satisfy a rule's ``match``? Cheap checks first, so a 100 000-span trace
costs a few dict lookups per span and rule; the per-span context (depth, ancestors, error
chain, bottleneck) is computed by the engine in its single walk and handed in."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import msgspec

from opdiag.diagnosis.conditions import (
    ATTRIBUTE_OPERATORS,
    attribute,
    compare_attributes,
    evaluate,
    missing,
)
from opdiag.diagnosis.rules import SpanMatch
from opdiag.model import Span, http_status, url_path

_EXC_ATTRS = ("exception.type", "error.type")


class SpanContext(msgspec.Struct):
    """What the engine knows about a span beyond the span itself."""

    depth: int = 0
    # ``match.within`` pattern tuples satisfied by the span or one of its ancestors
    within: frozenset[tuple[str, ...]] = frozenset()
    error_chain: bool = False  # an error span, or an ancestor of one
    error_origin: bool = False  # an error span with no error below it
    bottleneck: bool = False
    share: float = 0.0
    # ``id()`` of the nested ``without_descendant``/``without_child`` matches that some
    # descendant / direct child of the span satisfies (precomputed once per trace)
    descendants: frozenset[int] = frozenset()
    children: frozenset[int] = frozenset()


class ExceptionInfo(msgspec.Struct, frozen=True):
    type: str
    message: str


def exceptions_of(span: Span) -> list[ExceptionInfo]:
    """Exceptions recorded on a span: exception events first (where OTel puts them), then the
    ``exception.type``/``error.type`` attributes some exporters set instead."""
    out: list[ExceptionInfo] = []
    for event in span.events:
        attrs = event.attributes
        if event.name == "exception" or "exception.type" in attrs:
            out.append(
                ExceptionInfo(
                    str(attrs.get("exception.type", "")), str(attrs.get("exception.message", ""))
                )
            )
    for key in _EXC_ATTRS:
        value = span.attributes.get(key)
        if value:
            out.append(ExceptionInfo(str(value), str(span.attributes.get("exception.message", ""))))
    return out


def type_matches(m: SpanMatch, exc_type: str) -> bool:
    """``ConnectError`` matches ``httpx.ConnectError``: globs are tried on the full name and on
    the last dotted part (remembered per type: a trace holds a few types many times)."""
    assert m.exceptions is not None
    known = m.exceptions.known
    return known(exc_type) or known(exc_type.rsplit(".", 1)[-1])


def _exception_match(
    m: SpanMatch, span: Span, excs: list[ExceptionInfo]
) -> tuple[bool, ExceptionInfo | None]:
    if m.exceptions is not None:
        excs = [e for e in excs if type_matches(m, e.type)]
        if not excs:
            return False, None
    if m.exception_message is not None:
        pattern = m.exception_message
        hits = [e for e in excs if pattern.search(e.message[:10_000])]
        if not hits:
            if m.exceptions is None and pattern.search(span.status_message[:10_000]):
                return True, excs[0] if excs else None
            return False, None
        excs = hits
    return True, (excs[0] if excs else None)


def match_span(m: SpanMatch, span: Span, ctx: SpanContext) -> tuple[bool, ExceptionInfo | None]:
    """Evaluate ``m`` on ``span``; return whether it holds and the exception it matched on (or
    the span's first exception, for evidence)."""
    if not matches_context(m, ctx):
        return False, None
    return match_own(m, span)


def matches_context(m: SpanMatch, ctx: SpanContext) -> bool:
    """The part of ``m`` that the engine's walk decides (error chain, bottleneck, ancestors,
    descendants)."""
    if m.error_chain is not None and ctx.error_chain is not m.error_chain:
        return False
    if m.error_origin is not None and ctx.error_origin is not m.error_origin:
        return False
    if m.bottleneck is not None and ctx.bottleneck is not m.bottleneck:
        return False
    if m.within is not None and m.within.patterns not in ctx.within:
        return False
    if m.without_descendant is not None and id(m.without_descendant) in ctx.descendants:
        return False
    if m.without_child is not None and id(m.without_child) in ctx.children:
        return False
    return all(evaluate(cond, ctx.share) for cond in m.bottleneck_share)


def decided_by_span(m: SpanMatch) -> bool:
    """Does the span alone decide ``m``: none of the part ``matches_context`` decides (what a
    rule that counts the operation's spans one by one may use: ``out_of``, ``only_errors``)."""
    return (
        m.within is None
        and m.error_chain is None
        and m.error_origin is None
        and m.bottleneck is None
        and not m.bottleneck_share
        and m.without_descendant is None
        and m.without_child is None
    )


def match_own(
    m: SpanMatch, span: Span, excs: list[ExceptionInfo] | None = None
) -> tuple[bool, ExceptionInfo | None]:
    """The part of ``m`` that the span alone decides; with the exception it matched on.
    ``excs``: ``exceptions_of(span)`` when the caller tries several matches on the span."""
    if m.kinds and span.kind not in m.kinds:
        return False, None
    if m.error is not None and span.error is not m.error:
        return False, None
    if m.statuses and span.status not in m.statuses:
        return False, None
    attrs = span.attributes
    if m.required and not m.may_hold_on(attrs):
        return False, None
    if m.names is not None and not m.names(span.name):
        return False, None
    if m.services is not None and not m.services(span.service):
        return False, None
    if m.http_no_status or m.http_status:  # before the attributes: cheaper than a regex
        status = http_status(span)
        if m.http_no_status:
            if status is not None:
                return False, None
        elif status is None or not any(r.low <= status <= r.high for r in m.http_status):
            return False, None
    nothing = missing()
    for cond in m.attributes:
        if cond.op in ATTRIBUTE_OPERATORS:
            if not compare_attributes(cond, attrs):
                return False, None
        else:
            key = cond.key
            value = attrs.get(key, nothing) if "#" not in key else attribute(attrs, key)
            if not evaluate(cond, value):
                return False, None
    duration_ms = span.duration_us / 1000
    for cond in m.duration_ms:
        if not evaluate(cond, duration_ms):
            return False, None
    if m.exceptions is not None or m.exception_message is not None:
        return _exception_match(m, span, exceptions_of(span) if excs is None else excs)
    if not (span.events or span.error):
        return True, None
    if excs is None:
        excs = exceptions_of(span)
    return True, (excs[0] if excs else None)


def target_of(url: str) -> str | None:
    """``http://host.docker.internal:5001/data/historical`` → ``http://host.docker.internal:5001``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def route_param(span: Span) -> str | None:
    """What the span's path gives the first parameter of its route: ``op_x`` for
    ``/api/v1/operations/op_x`` served by ``/api/v1/operations/{operation_id}`` (a server
    span's ``http.route`` and its target or URL). None without a route, a parameter, or a
    path of the route's shape."""
    route = span.attributes.get("http.route")
    if not isinstance(route, str) or "{" not in route:
        return None
    path = url_path(span)
    if not path:
        return None
    wanted, given = route.strip("/").split("/"), path.strip("/").split("/")
    if len(wanted) != len(given):
        return None
    for pattern, segment in zip(wanted, given, strict=True):
        if pattern.startswith("{") and pattern.endswith("}"):
            return unquote(segment) or None
        if pattern != segment:
            return None
    return None


def span_values(span: Span, exc: ExceptionInfo | None) -> dict[str, Any]:
    """The built-in evidence a span offers to templates (see templates.PLACEHOLDERS)."""
    attrs = span.attributes
    url = attrs.get("http.url") or attrs.get("url.full")
    values: dict[str, Any] = {
        "span.name": span.name,
        "span.id": span.span_id,
        "span.kind": span.kind,
        "service": span.service,
        "trace.id": span.trace_id,
        "duration_ms": round(span.duration_us / 1000, 3),
        "http.status": http_status(span),
        "http.method": attrs.get("http.method") or attrs.get("http.request.method"),
    }
    if url is not None:
        values["http.url"] = str(url)
        values["target"] = target_of(str(url))
    param = route_param(span)
    if param is not None:
        values["route.param"] = param
    if exc is not None:
        values["exception.type"] = exc.type or None
        values["exception.message"] = exc.message or None
    return values
