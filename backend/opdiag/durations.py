"""Durations for people, in the unit that keeps the number small: ``840 ms``, ``12.4 s``,
``42.0 min``, ``3 h 12 min``, ``10 d 5 h`` (never ``14729 min``)."""

from __future__ import annotations

_SECOND = 1000.0
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR


def human_ms(value: float, *, precise: bool = False) -> str:
    """``precise`` keeps more digits under a minute (axis ticks of a short waterfall)."""
    if value < _SECOND:
        if precise and value < 10:
            return f"{value:.1f} ms"
        return f"{value:.0f} ms"
    if value < _MINUTE:
        return f"{value / _SECOND:.2f} s" if precise else f"{value / _SECOND:.1f} s"
    if value < _HOUR:
        return f"{value / _MINUTE:.1f} min"
    if value < _DAY:
        hours, rest = divmod(round(value / _MINUTE), 60)
        return f"{hours} h {rest} min"
    days, rest = divmod(round(value / _HOUR), 24)
    return f"{days} d {rest} h"
