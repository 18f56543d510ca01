"""Where in time to look for an operation: the window a lookup searches in a live trace source.

A live Jaeger is searched over a window, never all of time, and the window must hold the
operation or the lookup answers "not found". In order of preference:

1. the range the caller gives (the REST routes' and the page's ``from``/``to``, which Grafana's
   Operation Diagnosis dashboard fills with its time range);
2. the time written in the id: a KTRDR operation id is ``op_<type>_YYYYMMDD_HHMMSS_<8 hex>``
   (UTC, when the backend created it), so the window starts a little before it and reaches as
   far after it as an operation may run;
3. the look-back before ``now`` (``--now`` moves it: the CLI's clock for "stuck").

A trace id needs no window: it is fetched by id. Pure functions, no clock.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from opdiag.model import looks_like_trace_id
from opdiag.timeutil import US_PER_S, TimeRange

# The date and time KTRDR writes into an operation id, at its end (research/ktrdr.md).
_ID_TIME = re.compile(r"_(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})_[0-9a-f]{8}$")
# Spans of an operation may start before its id was made (the CLI command, the dispatch
# request), and hosts' clocks differ.
BEFORE_ID_TIME_US = 3600 * US_PER_S
# An operation runs for at most this long after its id was made, or the look-back if longer.
AFTER_ID_TIME_US = 86_400 * US_PER_S
# Spans may reach Jaeger slightly "in the future" of this host's clock.
CLOCK_MARGIN_US = 60 * US_PER_S
# "Everything" for a file source (to ``timeutil.ALL_END_US``): files are finite, a time filter
# would only hide data.
ALL_START_US = 0
ALL_LIMIT = 1_000_000


def id_time_us(ident: str) -> int | None:
    """The UTC creation time written in a KTRDR operation id, or None when it holds none."""
    match = _ID_TIME.search(ident.strip())
    if match is None:
        return None
    try:
        moment = datetime(*(int(part) for part in match.groups()), tzinfo=UTC)
    except ValueError:  # 20261399_250000: digits in the right places, but no date
        return None
    return int(moment.timestamp()) * US_PER_S


def around(now_us: int, lookback_us: int) -> TimeRange:
    """The last ``lookback_us`` before ``now_us``, plus the clock margin after it."""
    return TimeRange(now_us - lookback_us, now_us + CLOCK_MARGIN_US)


def lookup_window(
    ident: str,
    *,
    now_us: int,
    lookback_us: int,
    given: TimeRange | None = None,
) -> TimeRange | None:
    """The window to search for ``ident``: ``given``, else the id's own time, else the
    look-back before ``now_us``; None for a trace id (fetched directly)."""
    if looks_like_trace_id(ident.strip()):
        return None
    if given is not None:
        return given
    created = id_time_us(ident)
    if created is not None:
        return TimeRange(
            created - BEFORE_ID_TIME_US, created + max(AFTER_ID_TIME_US, lookback_us)
        )
    return around(now_us, lookback_us)
