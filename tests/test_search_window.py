"""Where a lookup searches: the caller's range, else the time in a KTRDR operation id, else
the look-back before now; trace ids need no window. The service hands that window to its
source and names it when nothing is found."""

from __future__ import annotations

import pytest
from opdiag.errors import NotFoundError
from opdiag.search_window import (
    AFTER_ID_TIME_US,
    BEFORE_ID_TIME_US,
    CLOCK_MARGIN_US,
    id_time_us,
    lookup_window,
)
from opdiag.service import DiagnosisService
from opdiag.settings import Settings
from opdiag.timeutil import TimeRange, parse_now
from test_service import FakeSource, backtest

S = 1_000_000
H = 3600 * S
NOW = parse_now("2026-12-04T16:10:00Z")
LOOKBACK = 6 * H


@pytest.mark.parametrize(
    ("ident", "expected"),
    [
        ("op_training_20261204_154305_f6579e1a", "2026-12-04T15:43:05Z"),
        ("op_backtesting_20251122_101500_1a2b3c4d", "2025-11-22T10:15:00Z"),
        ("op_research_training_20260101_000000_00000000", "2026-01-01T00:00:00Z"),
        ("op_training_20261399_154305_f6579e1a", None),  # no 13th month
        ("op_training_20261204_154305", None),  # no random suffix
        ("op_design_0123456789ab", None),
        ("whatever", None),
    ],
)
def test_the_time_in_an_operation_id(ident: str, expected: str | None):
    assert id_time_us(ident) == (None if expected is None else parse_now(expected))


def test_a_given_range_wins():
    given = TimeRange(1 * S, 2 * S)
    got = lookup_window("op_training_20261204_154305_f6579e1a", now_us=NOW, lookback_us=LOOKBACK,
                        given=given)
    assert got == given


def test_the_id_time_bounds_the_search():
    created = parse_now("2026-12-01T09:00:00Z")  # three days before now
    got = lookup_window("op_training_20261201_090000_f6579e1a", now_us=NOW, lookback_us=LOOKBACK)
    assert got == TimeRange(created - BEFORE_ID_TIME_US, created + AFTER_ID_TIME_US)
    long = lookup_window("op_training_20261201_090000_f6579e1a", now_us=NOW, lookback_us=48 * H)
    assert long == TimeRange(created - BEFORE_ID_TIME_US, created + 48 * H)


def test_other_ids_look_back_from_now():
    got = lookup_window("op_regex.1", now_us=NOW, lookback_us=LOOKBACK)
    assert got == TimeRange(NOW - LOOKBACK, NOW + CLOCK_MARGIN_US)


@pytest.mark.parametrize("ident", ["1234abcd5678ef90", "a1" * 16])
def test_a_trace_id_is_fetched_without_a_window(ident: str):
    assert lookup_window(ident, now_us=NOW, lookback_us=LOOKBACK, given=TimeRange(0, 1)) is None


# --------------------------------------------------------------------------- the service


class WindowedSource(FakeSource):
    """Answers only traces with a span starting in the window (a live source)."""

    def traces_for(self, ident, window=None):
        found = super().traces_for(ident, window)
        if window is None:
            return found
        return [t for t in found
                if any(window.start_us <= s.start_us <= window.end_us for s in t.spans)]


def test_the_service_searches_the_window_it_is_given_or_the_ids_time():
    settings = Settings()
    op, trace = backtest(1, parse_now("2026-12-01T09:00:30Z"), 10)
    op_with_date = "op_backtesting_20261201_090000_0000abcd"
    trace.spans[0].attributes["operation.id"] = op_with_date
    for span in trace.spans:
        if span.attributes.get("operation.id") == op:
            span.attributes["operation.id"] = op_with_date
    source = WindowedSource([trace])
    service = DiagnosisService(source, settings)
    found = service.diagnose(op_with_date, now_us=NOW)  # three days old: by the id's time
    assert found.operation_id == op_with_date
    created = parse_now("2026-12-01T09:00:00Z")
    assert source.windows[-1] == TimeRange(created - BEFORE_ID_TIME_US,
                                           created + AFTER_ID_TIME_US)
    fresh = DiagnosisService(source, settings)
    week = TimeRange(NOW - 7 * 24 * H, NOW)
    assert fresh.diagnose(op_with_date, now_us=NOW, window=week).operation_id == op_with_date
    assert source.windows[-1] == week
    today = TimeRange(NOW - H, NOW)
    with pytest.raises(NotFoundError) as info:
        DiagnosisService(source, settings).diagnose(op_with_date, now_us=NOW, window=today)
    assert "between 2026-12-04T15:10:00Z and 2026-12-04T16:10:00Z" in info.value.message


def test_an_undated_id_is_searched_before_now():
    source = WindowedSource([])
    with pytest.raises(NotFoundError):
        DiagnosisService(source, Settings()).diagnose("op_regex.1", now_us=NOW)
    assert source.windows == [TimeRange(NOW - LOOKBACK, NOW + CLOCK_MARGIN_US)]


def test_a_trace_id_is_looked_up_without_a_window():
    op, trace = backtest(1, NOW - H, 10)
    source = WindowedSource([trace])
    d = DiagnosisService(source, Settings()).diagnose(trace.trace_id, now_us=NOW,
                                                      window=TimeRange(0, 1))
    assert d.operation_id == op
    assert source.windows[0] is None  # the trace by id; then its operation over the window
