"""Parsing of the query parameters Grafana sends: time ranges, multi-value filters, limits.

Grafana interpolates ``${__from}``/``${__to}`` as epoch milliseconds, its raw range as
``now-6h``, and Infinity/simpod users type RFC 3339. Multi-value variables arrive
comma-separated (``${var:csv}``) or as lists (simpod scopedVars); ``All``/``$__all``/empty mean
"no filter". Every failure is an ``InputError`` naming the field, so the client gets a 400.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from werkzeug.routing import PathConverter

from opdiag import timeutil
from opdiag.errors import InputError
from opdiag.model import MAX_ID_CHARS, addressable
from opdiag.timeutil import TimeRange

# "All" as Grafana may send it; ``.*`` is the regex all-value a Prometheus-style variable
# carries (read as a verdict or a type it matched nothing: every row was filtered out)
ALL_VALUES = frozenset({"", "all", "$__all", "*", ".*", "__all"})
MAX_TEXT = MAX_ID_CHARS  # ids and filter values
_MAX_TIME_TEXT = 64


def parse_time_us(raw: Any, *, name: str, now_us: int, end: bool = False) -> int:
    """One point in time from epoch ms, RFC 3339 or Grafana's ``now-6h`` → epoch µs
    (``end``: it ends a range; see ``timeutil.parse_http_time``)."""
    if isinstance(raw, bool) or raw is None:
        raise InputError(f"{name}: expected a time", field=name)
    text = str(raw)
    if len(text) > _MAX_TIME_TEXT:
        raise InputError(f"{name}: time value too long", field=name)
    return timeutil.parse_http_time(text, name=name, now_us=now_us, end=end)


def parse_range(raw_from: Any, raw_to: Any, now_us: int, default_span_us: int) -> TimeRange:
    """``from``/``to`` with defaults (the last ``default_span_us`` up to now); from < to."""
    start_us, end_us = timeutil.resolve_range(
        raw_from,
        raw_to,
        clock=lambda: now_us,
        span_us=default_span_us,
        parse=parse_time_us,
        past_now_us=0,
    )
    return TimeRange(start_us=start_us, end_us=end_us)


def parse_interval_us(raw: Any, field: str = "interval") -> int:
    """A bucket width: ``5m``, ``30s`` or plain milliseconds; at least one second."""
    if isinstance(raw, bool) or raw is None or len(str(raw)) > _MAX_TIME_TEXT:
        raise InputError(f"{field}: expected an interval such as 5m or 60000", field=field)
    value = timeutil.parse_duration_us(str(raw), name=field)
    if value < timeutil.US_PER_S:
        raise InputError(f"{field}: must be at least 1s", field=field)
    return value


def parse_limit(raw: Any, maximum: int, field: str = "limit") -> int:
    """A positive row count, capped at ``maximum`` (settings.server.max_rows)."""
    if raw in (None, ""):
        return maximum
    if isinstance(raw, bool):
        raise InputError(f"{field}: expected a positive integer", field=field)
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise InputError(f"{field}: expected a positive integer", field=field) from None
    if value < 1:
        raise InputError(f"{field}: expected a positive integer", field=field)
    return min(value, maximum)


def parse_multi(raw: Any, field: str) -> list[str] | None:
    """Filter values: comma-separated text or a list; ``None`` means no filter at all."""
    if raw is None:
        return None
    items: Iterable[Any]
    if isinstance(raw, list | tuple):
        items = raw
    elif isinstance(raw, str):
        text = raw.strip()
        # Grafana's regex format of a multi-value variable: (a|b)
        if text.startswith("(") and text.endswith(")") and "|" in text:
            text = text[1:-1].replace("|", ",")
        items = text.split(",")
    else:
        items = [raw]
    values: list[str] = []
    for item in items:
        value = str(item).strip().strip("{}").strip()
        if len(value) > MAX_TEXT:
            raise InputError(f"{field}: value longer than {MAX_TEXT} characters", field=field)
        if value.lower() in ALL_VALUES:
            return None
        if value not in values:
            values.append(value)
    return values or None


# An operation or trace id: 1 to MAX_TEXT characters, no control characters, no space at
# either end (published in the OpenAPI document; the server also refuses what Python does not
# call printable).
IDENT_PATTERN = (
    r"^[^\x00-\x20\x7f-\x9f]"
    rf"(?:[^\x00-\x1f\x7f-\x9f]{{0,{MAX_TEXT - 2}}}[^\x00-\x20\x7f-\x9f])?$"
)


class IdentConverter(PathConverter):
    """The ``<ident:…>`` URL part: like ``path`` (an id may hold "/"), and any character,
    newlines included, so that ``parse_ident`` answers a bad id with a 400 naming it instead
    of the router with a 404."""

    regex = r"[^/][\s\S]*?"


def parse_ident(raw: str, field: str = "id") -> str:
    """An operation or trace id from a URL or a payload, as ``IDENT_PATTERN`` says
    (``model.addressable`` is that pattern and Python's printable, so it decides alone)."""
    if not addressable(raw):
        raise InputError(f"{field}: expected an operation id or trace id", field=field)
    return raw
