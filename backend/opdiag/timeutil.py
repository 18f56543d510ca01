"""Parsing of the times people and Grafana hand us, into integer epoch microseconds.

Two dialects exist at the edges: the CLI's ``--now`` (RFC 3339 or epoch *seconds*) and the
HTTP API's ``from``/``to``/``now`` parameters (epoch *milliseconds*, RFC 3339, or Grafana's
relative ``now``, ``now-6h``); an assistant's (MCP) times take either, seconds and
milliseconds told apart by magnitude (``parse_any_time``). All end up here so a bad value
always gets the same clear ``InputError`` naming the parameter, never a ``ValueError`` from
deep inside.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from opdiag.errors import InputError

US_PER_S = 1_000_000
US_PER_MS = 1_000
# The end of "all of time" for a search (files are finite: a time filter would only hide data).
ALL_END_US = 2**62

_UNITS_US: dict[str, int] = {
    "ms": US_PER_MS,
    "s": US_PER_S,
    "m": 60 * US_PER_S,
    "h": 3600 * US_PER_S,
    "d": 86400 * US_PER_S,
    "w": 7 * 86400 * US_PER_S,
}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_NUMBER_RE = re.compile(r"^[+-]?\d+(?:\.\d+)?$")
# Epoch values outside this range are almost surely a unit mix-up (ms given as s or vice versa).
_MIN_S = 0
_MAX_S = 253402300799  # 9999-12-31T23:59:59Z
MAX_EPOCH_MS = _MAX_S * 1000
# An RFC 3339 date-time (JSON Schema's ``date-time``) from 1970 on, as the HTTP API takes it.
RFC3339_PATTERN = (
    r"^(?:19[7-9][0-9]|[2-9][0-9]{3})-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(?:\.[0-9]{1,9})?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_RFC3339_RE = re.compile(RFC3339_PATTERN)

# Grafana's relative times. The offset of each unit has a bounded number of digits, so that
# every value the grammar allows lands between 1970 and 9999 (at most ~32 years back) and a
# client that generates values from the published pattern (``RELATIVE_TIME_PATTERN``, in the
# OpenAPI document) is never refused; anything longer is refused before any arithmetic.
_OFFSET_DIGITS: dict[str, int] = {"ms": 12, "s": 9, "m": 7, "h": 5, "d": 4, "w": 3}
_OFFSET = "|".join(
    rf"[0-9]{{1,{digits}}}(?:\.[0-9]{{1,3}})?{unit}" for unit, digits in _OFFSET_DIGITS.items()
)
RELATIVE_TIME_PATTERN = rf"^now(?:[+-](?:{_OFFSET}))?(?:/[smhdwMy])?$"
_RELATIVE_RE = re.compile(
    r"^now(?:([+-])([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w))?(?:/([smhdwMy]))?$"
)
# Epoch milliseconds in the HTTP API: digits only (what Grafana's ${__from} gives).
EPOCH_MS_RE = re.compile(r"^[0-9]{1,15}$")
_RELATIVE_BOUNDED_RE = re.compile(RELATIVE_TIME_PATTERN)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A closed-open range in epoch microseconds: a listing's range, or the window a lookup
    searches for an operation's spans."""

    start_us: int
    end_us: int


def wall_clock_us() -> int:
    """The real clock, read only at the edges (CLI, HTTP); everything inside takes ``now``."""
    return time.time_ns() // 1000


def parse_rfc3339(text: str, *, name: str = "time", numbers: str = "epoch seconds") -> int:
    """RFC 3339 / ISO 8601 with a zone (``Z`` or ``+hh:mm``) → epoch µs; naive times are UTC.
    ``numbers``: what else the caller reads as a time (the hint of the error)."""
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
            f"2025-11-22T10:15:00Z or {numbers})",
            field=name,
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    delta = parsed - datetime(1970, 1, 1, tzinfo=UTC)
    value = (delta.days * 86400 + delta.seconds) * US_PER_S + delta.microseconds
    _check_range(value, raw, name)
    return value


def _check_range(epoch_us: int, raw: str, name: str) -> None:
    """Times before 1970 or after 9999 are bad input, whatever form they were given in."""
    if not _MIN_S * US_PER_S <= epoch_us <= (_MAX_S + 1) * US_PER_S - 1:
        raise InputError(f"{name}: {raw!r} is out of range (1970 to 9999)", field=name)


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
        return _bounded_us(value * plain_unit_us, raw, name)
    match = _DURATION_RE.match(raw)
    if not match:
        raise InputError(
            f"{name}: cannot parse {raw!r} as a duration (use e.g. 30s, 5m, 1h, 3d or {plain})",
            field=name,
        )
    value_us = _bounded_us(float(match.group(1)) * _UNITS_US[match.group(2)], raw, name)
    if value_us <= 0:
        raise InputError(f"{name}: must be positive, got {raw!r}", field=name)
    return value_us


_MAX_DURATION_US = 100 * 366 * 86_400 * US_PER_S  # a century


def _bounded_us(value_us: float, raw: str, name: str) -> int:
    if not value_us <= _MAX_DURATION_US:  # inf and NaN too
        raise InputError(f"{name}: {raw[:40]!r} is longer than a century", field=name)
    return round(value_us)


def parse_lookback_s(text: str, *, name: str) -> float:
    """A look-back: ``6h``, ``3d``, ``90m`` or plain seconds, as seconds."""
    return parse_duration_us(text, name=name, plain_unit_us=US_PER_S) / US_PER_S


def parse_http_time(text: str, *, name: str, now_us: int, end: bool = False) -> int:
    """An HTTP time parameter → epoch µs: epoch ms, RFC 3339, ``now`` or ``now-6h``.

    Grafana sends ``${__from}``/``${__to}`` as epoch ms; people type RFC 3339 or relative times.
    ``end``: the time ends a range, so a rounded one (``now/d``) is the end of its unit, as
    Grafana reads ``to=now/d`` ("Today": from the start of the day to its end).
    """
    raw = text
    if not raw:
        raise InputError(f"{name}: empty time", field=name)
    if EPOCH_MS_RE.fullmatch(raw):
        return _epoch(raw, US_PER_MS, name)
    match = _RELATIVE_RE.fullmatch(raw)
    if match:
        if not _RELATIVE_BOUNDED_RE.fullmatch(raw):
            raise InputError(f"{name}: relative time {raw!r} reaches too far", field=name)
        sign, amount, unit, round_to = match.groups()
        value = now_us
        if sign is not None:
            offset = round(float(amount) * _UNITS_US[unit])
            value = now_us - offset if sign == "-" else now_us + offset
        _check_range(value, raw, name)
        if not round_to:
            return value
        start = _round_down(value, round_to)
        return _next_unit(start, round_to) if end else start
    if raw.startswith("now"):
        raise InputError(
            f"{name}: cannot parse {raw!r} as a relative time (use e.g. now, now-6h, now-30m)",
            field=name,
        )
    if not _RFC3339_RE.fullmatch(raw):
        raise InputError(
            f"{name}: cannot parse {raw!r} as a time (use epoch ms, RFC 3339 like "
            "2025-11-22T10:15:00Z, or now-6h)",
            field=name,
        )
    return parse_rfc3339(raw, name=name, numbers="epoch ms, or now-6h")


# An epoch number below this is seconds, from it on milliseconds: as seconds it would be past
# the year 5138, as milliseconds before 1974, and no clock opdiag is given is either.
EPOCH_MS_FROM = 10**11
# The clocks an assistant may give: outside them a time is a unit mix-up (ms read as s gave
# 1970-01-21), not a moment anyone's traces hold.
FIRST_CLOCK_US = 946_684_800 * US_PER_S  # 2000-01-01T00:00:00Z
END_CLOCK_US = 7_258_118_400 * US_PER_S  # 2200-01-01T00:00:00Z
_MAX_TEXT = 64
TIME_FORMS = (
    "RFC 3339 / ISO 8601 (2026-12-04T15:50:00Z; no zone: UTC), epoch seconds or epoch "
    f"milliseconds (a number below {EPOCH_MS_FROM} is seconds, from it on milliseconds), "
    "or relative (now, now-6h); from 2000 to 2199"
)


def parse_any_time(value: str | float, *, name: str, now_us: int, end: bool = False) -> int:
    """A time an assistant gives (MCP): what the CLI takes (RFC 3339 / ISO 8601, epoch
    seconds), what the HTTP API takes (epoch ms, ``now-6h``), and JSON numbers. Seconds and
    milliseconds are told apart by magnitude (``EPOCH_MS_FROM``), so neither is misread as the
    other; a time outside 2000..2199 is refused as a unit mix-up, naming ``name``.
    ``end``: as ``parse_http_time``."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InputError(f"{name}: expected a time ({TIME_FORMS})", field=name)
    if not isinstance(value, str):
        if not math.isfinite(value):
            raise InputError(f"{name}: {value!r} is not a time", field=name)
        return _epoch_by_magnitude(value, repr(value), name)
    raw = value.strip()
    if len(raw) > _MAX_TEXT:
        raise InputError(f"{name}: time value too long", field=name)
    if not raw:
        raise InputError(f"{name}: empty time", field=name)
    if _NUMBER_RE.fullmatch(raw):
        return _epoch_by_magnitude(float(raw), raw, name)  # finite by the pattern
    if raw.startswith("now"):
        value_us = parse_http_time(raw, name=name, now_us=now_us, end=end)
    else:
        value_us = parse_rfc3339(raw, name=name, numbers="epoch seconds or ms, or now-6h")
    return _plausible_clock(value_us, raw, name, "")


class TimeParser(Protocol):
    """How one way in reads a time it was given (the CLI's, the API's, the assistant's)."""

    def __call__(self, raw: Any, *, name: str, now_us: int, end: bool = False) -> int: ...


def resolve_range(
    raw_from: Any,
    raw_to: Any,
    *,
    clock: Callable[[], int],
    span_us: int,
    parse: TimeParser,
    names: tuple[str, str] = ("from", "to"),
    whole: Callable[[], tuple[int, int]] | None = None,
    past_now_us: int = 1,
) -> tuple[int, int]:
    """The time range a listing covers, the same rule for every way in. Neither end named:
    ``whole()`` (a recording: all of it), else the last ``span_us`` up to now. ``to``: named,
    or ``past_now_us`` after now (ranges are half-open: 1 takes in what starts at now; the
    HTTP API's 0 is Grafana's ``to=now``). ``from``: named, or one span before ``to``.
    Relative times count from ``clock()``, asked only when needed (a file source's clock
    reads every file). Each way in keeps its own parser and names."""
    named_from, named_to = raw_from not in (None, ""), raw_to not in (None, "")
    if whole is not None and not named_from and not named_to:
        return whole()
    now_us = clock()
    end_us = now_us + past_now_us
    if named_to:
        end_us = parse(raw_to, name=names[1], now_us=now_us, end=True)
    start_us = parse(raw_from, name=names[0], now_us=now_us) if named_from else end_us - span_us
    if start_us >= end_us:
        raise InputError(f"{names[0]}: must be before {names[1]!r}", field=names[0])
    return start_us, end_us


def _epoch_by_magnitude(number: float, raw: str, name: str) -> int:
    """Epoch seconds below ``EPOCH_MS_FROM``, milliseconds from it on, as epoch µs."""
    unit_us, unit = (US_PER_S, "seconds") if abs(number) < EPOCH_MS_FROM else (US_PER_MS, "ms")
    value_us = number * unit_us
    if not value_us < END_CLOCK_US:  # checked as a float: 1e300 has no int to round to
        value_us = END_CLOCK_US
    return _plausible_clock(round(value_us), raw, name, f" read as epoch {unit}")


def _plausible_clock(value_us: int, raw: str, name: str, read_as: str) -> int:
    """``value_us`` when it is in 2000..2199, else an ``InputError`` saying what it read as."""
    if FIRST_CLOCK_US <= value_us < END_CLOCK_US:
        return value_us
    if value_us >= END_CLOCK_US:
        when = "past 2199" + (" (epoch µs or ns?)" if read_as else "")
    else:
        when = f"{format_rfc3339(value_us) if value_us >= 0 else 'before 1970'}, before 2000"
    raise InputError(
        f"{name}: {raw!r}{read_as} is {when}; give RFC 3339, epoch seconds or epoch "
        "milliseconds of 2000..2199",
        field=name,
    )


def _round_down(epoch_us: int, unit: str) -> int:
    """Grafana's ``now/d`` etc.: the start of the unit (UTC); ``to`` takes the next one."""
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


def _next_unit(start_us: int, unit: str) -> int:
    """The start of the unit after the one starting at ``start_us`` (a range's end)."""
    if unit in ("s", "m", "h", "d"):
        return start_us + _UNITS_US[unit]
    moment = datetime.fromtimestamp(start_us / US_PER_S, tz=UTC)
    if unit == "w":
        after = moment + timedelta(days=7)
    elif unit == "M":
        year, month = divmod(moment.month, 12)
        after = moment.replace(year=moment.year + year, month=month + 1)
    else:  # "y"
        after = moment.replace(year=moment.year + 1)
    return int(after.timestamp()) * US_PER_S


def format_rfc3339(epoch_us: int) -> str:
    """Epoch µs → ``2025-11-22T10:15:00Z`` (seconds precision, for people); a time past the
    years RFC 3339 writes (a window reaching past ``now`` at the end of 9999) is shown at
    their bound."""
    clock = clock_hms(epoch_us)
    if clock is None:
        epoch_us = min(max(epoch_us, FIRST_RFC3339_US), LAST_RFC3339_US)
        return datetime.fromtimestamp(epoch_us // US_PER_S, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{_date_text(epoch_us // _US_PER_DAY)}T{clock}Z"


# the first and last moments RFC 3339 (and ``datetime``) can write
FIRST_RFC3339_US = -62_135_596_800 * US_PER_S  # 0001-01-01T00:00:00Z
LAST_RFC3339_US = 253_402_300_800 * US_PER_S - 1  # 9999-12-31T23:59:59.999999Z


# Below 2**33 s (the year 2242) ``epoch_us / US_PER_S`` is within half a µs of the exact
# value, so ``datetime.fromtimestamp`` rounds it back to ``epoch_us``: whole seconds taken by
# integer arithmetic are the ones it shows. (A listing formats a time per row; strftime
# cost more than the rest of the row.)
_EXACT_US = 2**33 * US_PER_S
_US_PER_DAY = 86_400 * US_PER_S


def clock_hms(epoch_us: int) -> str | None:
    """``HH:MM:SS`` (UTC) of ``epoch_us`` as ``strftime("%H:%M:%S")`` gives it; None for a
    value it is not known to agree with there (not an int, negative, past 2242)."""
    if epoch_us.__class__ is not int or not 0 <= epoch_us < _EXACT_US:
        return None
    minute, second = divmod(epoch_us // US_PER_S % 86_400, 60)
    return _HH_MM[minute] + _SS[second]


_HH_MM = tuple(f"{m // 60:02d}:{m % 60:02d}:" for m in range(24 * 60))
_SS = tuple(f"{s:02d}" for s in range(60))


@functools.lru_cache(maxsize=256)
def _date_text(day: int) -> str:
    """``YYYY-MM-DD`` of a day since the epoch (a listing spans a few)."""
    return datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%d")


def format_duration(ms: float | None) -> str:
    """Short human duration: 850ms, 12.3s, 4m05s, 2h03m."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
