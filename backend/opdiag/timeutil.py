"""Parsing of the times people and Grafana hand us, into integer epoch microseconds.

Two dialects exist at the edges: the CLI's ``--now`` (RFC 3339 or epoch *seconds*) and the
HTTP API's ``from``/``to``/``now`` parameters (epoch *milliseconds*, RFC 3339, or Grafana's
relative ``now``, ``now-6h``). Both end up here so a bad value always gets the same clear
``InputError`` naming the parameter, never a ``ValueError`` from deep inside.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from opdiag.errors import InputError

US_PER_S = 1_000_000
US_PER_MS = 1_000

_UNITS_US: dict[str, int] = {
    "ms": US_PER_MS,
    "s": US_PER_S,
    "m": 60 * US_PER_S,
    "h": 3600 * US_PER_S,
    "d": 86400 * US_PER_S,
    "w": 7 * 86400 * US_PER_S,
}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_RELATIVE_RE = re.compile(
    r"^now(?:\s*([+-])\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w))?(?:/([smhdwMy]))?$"
)
_NUMBER_RE = re.compile(r"^[+-]?\d+(?:\.\d+)?$")
# Epoch values outside this range are almost surely a unit mix-up (ms given as s or vice versa).
_MIN_S = 0
_MAX_S = 253402300799  # 9999-12-31T23:59:59Z


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A closed-open range in epoch microseconds: a listing's range, or the window a lookup
    searches for an operation's spans."""

    start_us: int
    end_us: int


def wall_clock_us() -> int:
    """The real clock, read only at the edges (CLI, HTTP); everything inside takes ``now``."""
    return time.time_ns() // 1000


def parse_rfc3339(text: str, *, name: str = "time") -> int:
    """RFC 3339 / ISO 8601 with a zone (``Z`` or ``+hh:mm``) → epoch µs; naive times are UTC."""
    raw = text.strip()
    if not raw:
        raise InputError(f"{name}: empty time", field=name)
    candidate = raw[:-1] + "+00:00" if raw[-1] in "zZ" else raw
    candidate = candidate.replace(" ", "T", 1) if "T" not in candidate else candidate
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        raise InputError(
            f"{name}: cannot parse {raw!r} as a time (use RFC 3339 like "
            "2025-11-22T10:15:00Z or epoch seconds)",
            field=name,
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    delta = parsed - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * US_PER_S + delta.microseconds


def _epoch(text: str, unit_us: int, name: str) -> int:
    value = float(text)  # callers matched _NUMBER_RE: finite by construction
    seconds = value * unit_us / US_PER_S
    if not _MIN_S <= seconds <= _MAX_S:
        raise InputError(f"{name}: {text!r} is out of range for an epoch time", field=name)
    return round(value * unit_us)


def parse_now(text: str, *, name: str = "--now") -> int:
    """The CLI's ``--now``: RFC 3339 or epoch seconds (fractions allowed) → epoch µs."""
    raw = text.strip()
    if _NUMBER_RE.match(raw):
        return _epoch(raw, US_PER_S, name)
    return parse_rfc3339(raw, name=name)


def parse_duration_us(
    text: str, *, name: str = "interval", plain_unit_us: int = US_PER_MS
) -> int:
    """``5m``, ``30s``, ``1h``, ``3d`` or a plain number of ``plain_unit_us`` (milliseconds
    by default: Grafana's ``$__interval_ms``; seconds for a look-back)."""
    raw = text.strip()
    plain = "milliseconds" if plain_unit_us == US_PER_MS else "seconds"
    if _NUMBER_RE.match(raw):
        value = float(raw)
        if value <= 0:
            raise InputError(f"{name}: must be positive, got {raw!r}", field=name)
        return round(value * plain_unit_us)
    match = _DURATION_RE.match(raw)
    if not match:
        raise InputError(
            f"{name}: cannot parse {raw!r} as a duration (use e.g. 30s, 5m, 1h, 3d or {plain})",
            field=name,
        )
    value_us = round(float(match.group(1)) * _UNITS_US[match.group(2)])
    if value_us <= 0:
        raise InputError(f"{name}: must be positive, got {raw!r}", field=name)
    return value_us


def parse_lookback_s(text: str, *, name: str) -> float:
    """A look-back: ``6h``, ``3d``, ``90m`` or plain seconds, as seconds."""
    return parse_duration_us(text, name=name, plain_unit_us=US_PER_S) / US_PER_S


def parse_http_time(text: str, *, name: str, now_us: int) -> int:
    """An HTTP time parameter → epoch µs: epoch ms, RFC 3339, ``now`` or ``now-6h``.

    Grafana sends ``${__from}``/``${__to}`` as epoch ms; people type RFC 3339 or relative times.
    """
    raw = text.strip()
    if not raw:
        raise InputError(f"{name}: empty time", field=name)
    if _NUMBER_RE.match(raw):
        return _epoch(raw, US_PER_MS, name)
    match = _RELATIVE_RE.match(raw)
    if match:
        sign, amount, unit, round_to = match.groups()
        value = now_us
        if sign is not None:
            offset = round(float(amount) * _UNITS_US[unit])
            value = now_us - offset if sign == "-" else now_us + offset
        return _round_down(value, round_to) if round_to else value
    if raw.startswith("now"):
        raise InputError(
            f"{name}: cannot parse {raw!r} as a relative time (use e.g. now, now-6h, now-30m)",
            field=name,
        )
    return parse_rfc3339(raw, name=name)


def _round_down(epoch_us: int, unit: str) -> int:
    """Grafana's ``now/d`` etc.: the start of the unit (UTC), for ``from`` and ``to`` alike."""
    if unit in ("s", "m", "h", "d"):
        step = _UNITS_US[unit]
        return epoch_us - epoch_us % step
    moment = datetime.fromtimestamp(epoch_us / US_PER_S, tz=UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "w":  # ISO weeks start on Monday
        day = day - timedelta(days=day.weekday())
    elif unit == "M":
        day = day.replace(day=1)
    else:  # "y"
        day = day.replace(month=1, day=1)
    return int(day.timestamp()) * US_PER_S


def format_rfc3339(epoch_us: int) -> str:
    """Epoch µs → ``2025-11-22T10:15:00Z`` (seconds precision, for people)."""
    return datetime.fromtimestamp(epoch_us / US_PER_S, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
