"""Comparison operators with type coercion, for attribute and operation-fact conditions.

Real KTRDR data is loosely typed (worker counts are the *strings* ``"4"``, ``error`` is a bool
in one span and a message in another), so the rule's value decides the type: a numeric rule
value compares numerically against ``"4"`` and ``4`` alike, a bool rule value accepts ``true``
and ``"true"``, a string rule value compares against the text form. A value that does not
coerce simply does not match; it never raises.

``gt_attr``/``gte_attr``/``lt_attr``/``lte_attr`` compare two attributes of the same span
(``data.start_date: {gt_attr: data.end_date}``): numerically when both are numbers, in time
order when both are ISO 8601 dates or times, else not at all.

A key ``name#a.b`` reads field ``a.b`` of the JSON text the attribute ``name`` holds (KTRDR's
CLI spans carry the command's arguments as one JSON text, ``cli.args``).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import msgspec

from opdiag.diagnosis.patterns import compile_pattern

ATTRIBUTE_OPERATORS: frozenset[str] = frozenset({"gt_attr", "gte_attr", "lt_attr", "lte_attr"})
OPERATORS: frozenset[str] = frozenset(
    {"eq", "ne", "in", "regex", "gt", "gte", "lt", "lte", "exists", "absent"}
) | ATTRIBUTE_OPERATORS
_MAX_TIME_TEXT = 64
_NUMERIC_OPS = frozenset({"gt", "gte", "lt", "lte"})
_MAX_REGEX_INPUT = 10_000
_BOOL_TEXT = {"true": True, "false": False}

_MISSING = object()


class Condition(msgspec.Struct, frozen=True):
    """``key op value``; ``value`` is already checked and (for ``regex``) compiled."""

    key: str
    op: str
    value: Any
    line: int = 0


def check_operand(op: str, value: Any, *, vetted: bool = False) -> Any:
    """Validate a rule-side operand at load time; return it in its evaluated form.
    ``vetted``: the bundled pack's (a ``regex`` stays on ``re``; see ``patterns``).

    Raises ``ValueError`` with the reason (the loader adds file and line).
    """
    if op not in OPERATORS:
        raise ValueError(f"unknown operator '{op}'")
    if op in _NUMERIC_OPS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"operator '{op}' needs a number, got {value!r}")
        try:
            return float(value)
        except OverflowError:
            raise ValueError(f"operator '{op}' needs a number a float holds") from None
    if op == "regex":
        if not isinstance(value, str):
            raise ValueError("operator 'regex' needs a string")
        return compile_pattern(value, vetted=vetted)
    if op in ATTRIBUTE_OPERATORS:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"operator '{op}' needs the key of another attribute")
        return value.strip()
    if op in ("exists", "absent"):
        if not isinstance(value, bool):
            raise ValueError(f"operator '{op}' takes true or false")
        return value
    if op == "in":
        if not isinstance(value, list) or not value:
            raise ValueError("operator 'in' needs a non-empty list")
        for item in value:
            _check_scalar(item)
        return tuple(value)
    _check_scalar(value)
    return value


def _check_scalar(value: Any) -> None:
    if not isinstance(value, str | int | float | bool):
        raise ValueError(f"comparison value must be a string, number or bool, got {value!r}")


def as_number(value: Any) -> float | None:
    """``4``, ``4.0`` and ``"4"`` are numbers; bools, NaN and junk are not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            num = float(value)
        except OverflowError:  # an int beyond any float: not a number to compare
            return None
    elif isinstance(value, str):
        try:
            num = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return None if math.isnan(num) else num


def as_bool(value: Any) -> bool | None:
    """``True`` and ``"true"`` are true; ``"false"`` is false; anything else is not a bool."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _BOOL_TEXT.get(value.strip().lower())
    return None


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(expected, bool):
        return as_bool(actual) is expected
    if isinstance(expected, int | float):
        num = as_number(actual)
        return num is not None and num == as_number(expected)
    return as_text(actual) == expected


def evaluate(cond: Condition, actual: Any = _MISSING) -> bool:
    """Apply one condition to a looked-up value (``_MISSING``/``None`` means absent).

    Every operator except ``absent`` (and ``exists: false``) needs the value to exist, so
    ``ne`` on a missing attribute is false.
    """
    present = actual is not _MISSING and actual is not None
    op = cond.op
    if op == "exists":
        return present is cond.value
    if op == "absent":
        return present is not cond.value
    if not present:
        return False
    if op == "eq":
        return _equal(actual, cond.value)
    if op == "ne":
        return not _equal(actual, cond.value)
    if op == "in":
        return any(_equal(actual, v) for v in cond.value)
    if op == "regex":
        return cond.value.search(as_text(actual)[:_MAX_REGEX_INPUT]) is not None
    num = as_number(actual)
    if num is None:
        return False
    if op == "gt":
        return num > cond.value
    if op == "gte":
        return num >= cond.value
    if op == "lt":
        return num < cond.value
    return num <= cond.value


def as_time(value: Any) -> datetime | None:
    """An ISO 8601 date or time (``2023-06-30``, ``2023-06-30T10:00:00Z``) as an aware UTC
    datetime; anything else is not a time."""
    if not isinstance(value, str) or not value or len(value) > _MAX_TIME_TEXT:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: 0001-01-01T00:00+14:00 in UTC
        return None


def _ordered(left: Any, right: Any) -> tuple[Any, Any] | None:
    """Two values in a comparable form: both numbers, else both times, else None."""
    a, b = as_number(left), as_number(right)
    if a is not None and b is not None:
        return a, b
    ta, tb = as_time(left), as_time(right)
    if ta is not None and tb is not None:
        return ta, tb
    return None


_MAX_JSON_TEXT = 20_000  # a longer JSON text is not parsed for a field


def attribute(attributes: dict[str, Any], key: str) -> Any:
    """The value of ``key`` (``name#a.b``: a field inside the JSON text of ``name``); the
    missing sentinel when absent or unreadable."""
    base, hash_, path = key.partition("#")
    raw = attributes.get(base, _MISSING)
    if not hash_ or raw is _MISSING:
        return raw
    return json_field(raw, path)


def json_field(raw: Any, path: str) -> Any:
    """The field at dotted ``path`` inside ``raw``, a JSON object given as text (KTRDR's
    ``cli.args``) or already a mapping; the missing sentinel when absent, or when the text is
    too long, not JSON or nested too deep to parse (an attribute is the sender's to choose)."""
    if isinstance(raw, str):
        if len(raw) > _MAX_JSON_TEXT:
            return _MISSING
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            return _MISSING
    for part in path.split("."):
        if not isinstance(raw, dict) or part not in raw:
            return _MISSING
        raw = raw[part]
    return raw


def compare_attributes(cond: Condition, attributes: dict[str, Any]) -> bool:
    """Apply an attribute-to-attribute condition (``gt_attr`` …) to a span's attributes."""
    left, right = attribute(attributes, cond.key), attribute(attributes, cond.value)
    if left is _MISSING or right is _MISSING:
        return False
    pair = _ordered(left, right)
    if pair is None:
        return False
    a, b = pair
    if cond.op == "gt_attr":
        return a > b
    if cond.op == "gte_attr":
        return a >= b
    if cond.op == "lt_attr":
        return a < b
    return a <= b


def missing() -> Any:
    """The sentinel for an absent value (for callers that look values up themselves)."""
    return _MISSING
