"""The moment a call judges at, and what that moment decides of its answers.

A ``now`` in the source's past (more than the clock margin, a minute, before a recording's
last span or Jaeger's clock) judges what had happened by then: every trace read is cut to
the spans that had ended (``opdiag.asof``), and those answers are cached under that moment
(``At.key``). The moment also decides whether an answer is final (it can no longer change,
so it is cached and reused traces may answer it), whether a cached answer meets a lookup's
window, and which ``now`` the answer's links carry. Used by ``DiagnosisService`` and its
listing (``opdiag.listing``); no I/O, the clocks are read by the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import msgspec

from opdiag.asof import as_of
from opdiag.diagnosis.facts import TERMINAL
from opdiag.diagnosis.result import REQUEST_SETTLE_MS, Diagnosis
from opdiag.errors import NotYetError
from opdiag.model import Span, Trace
from opdiag.operations import OperationTraces, last_status
from opdiag.search_window import CLOCK_MARGIN_US, id_time_us
from opdiag.timeutil import US_PER_MS, TimeRange, format_rfc3339


class At(msgspec.Struct, frozen=True):
    """The moment a call judges at. ``past``: before the source's present (the end of a
    recording; a little before Jaeger's clock), so it sees only the spans that had ended by
    then (``opdiag.asof``), and its answers are cached apart from the present's. ``pinned``:
    more than the clock margin from the wall clock, the one a page opened without ``now``
    judges at (``link_now_ms``)."""

    now_us: int
    past: bool = False
    # not the moment a page opened without ``now`` would judge at: links may keep it
    pinned: bool = False

    @classmethod
    def judged(cls, now_us: int, latest_us: int | None, wall_us: int) -> At:
        """The moment ``now_us`` for a source whose latest spans are at ``latest_us`` (None:
        it cannot say, so it is judged as of its present), read at the wall clock
        ``wall_us``: hosts' clocks, and the moments people give (a file name's second, a
        rounded ``--now``), are up to the clock margin apart."""
        return cls(
            now_us,
            past=latest_us is not None and now_us < latest_us - CLOCK_MARGIN_US,
            pinned=abs(now_us - wall_us) > CLOCK_MARGIN_US,
        )

    def link_now_ms(self, diagnosis: Diagnosis, traces: Iterable[Trace]) -> int | None:
        """The ``now`` the links to ``diagnosis`` (judged on ``traces``) carry when a page
        opened at its own clock would answer otherwise: its traces were cut to this moment
        (it saw less than the source holds), or it was not finished and another clock
        judges it. None: the page's own clock. The same operation gets the same links from
        a recording and from Jaeger, whose present differ."""
        if self.past and any(t.cut_at_us is not None for t in traces):
            return self.now_us // US_PER_MS
        if self.pinned and not diagnosis.finished:
            return self.now_us // US_PER_MS
        return None

    def key(self, key: str) -> str:
        """The cache key of ``key``'s answers at this moment."""
        return f"{key}\x00{self.now_us}" if self.past else key

    def visible(self, traces: Iterable[Trace]) -> list[Trace]:
        """``traces`` as the source held them at this moment."""
        return as_of(traces, self.now_us) if self.past else list(traces)


class Lookup(msgspec.Struct, frozen=True):
    """What one diagnosis searches by: its clock and the caller's window (if any)."""

    at: At
    window: TimeRange | None


def final_answer(diagnosis: Diagnosis, at: At) -> bool:
    """The answer can no longer change (it is cached, and reused traces answer it): the
    operation finished; a request that never became an operation only once it has been over
    for ``REQUEST_SETTLE_MS`` (its backend's spans come in batches after the command's)."""
    if not diagnosis.finished:
        return False
    if not diagnosis.is_request:
        return True
    return (diagnosis.ended_at_ms or 0) + REQUEST_SETTLE_MS <= at.now_us // US_PER_MS


def not_yet(ident: str, traces: Sequence[Trace], now_us: int) -> NotYetError:
    """Not found at ``now_us`` although the source holds ``ident``: nothing of it had been
    exported by then (it had not started, or no span of it had ended)."""
    when = _moment(now_us)
    first = min(t.start_us for t in traces)
    made = id_time_us(ident)
    if first > now_us and made is not None and made <= now_us:
        # its id was made by then (KTRDR writes the UTC time into it): it had started, its
        # process died before it exported anything (a backend killed in its first batch)
        return NotYetError(
            f"no span of {ident!r} had been exported by {when} (the clock judged by), though "
            f"its id says it was made at {_moment(made)}: its first record is at "
            f"{_moment(first)}"
        )
    if first > now_us:
        return NotYetError(
            f"{ident!r} had not started by {when} (the clock judged by): its first span "
            f"starts at {_moment(first)}"
        )
    ended = min(s.end_us for t in traces for s in t.spans)
    return NotYetError(
        f"no span of {ident!r} had ended by {when} (the clock judged by; a span is exported "
        f"when it ends): it started at {_moment(first)}, its first span ended at "
        f"{_moment(ended)}"
    )


def _moment(epoch_us: int) -> str:
    """RFC 3339 to the millisecond: moments a second apart are told apart."""
    return f"{format_rfc3339(epoch_us)[:-1]}.{epoch_us // US_PER_MS % 1000:03d}Z"


def overlaps(diagnosis: Diagnosis, window: TimeRange | None) -> bool:
    """A cached diagnosis answers a lookup over ``window`` only when the operation's time
    meets it: a warm cache must not find what a search of that range would not."""
    if window is None or diagnosis.started_at_ms is None:
        return True
    ended_ms = diagnosis.ended_at_ms or diagnosis.started_at_ms
    return (
        diagnosis.started_at_ms * US_PER_MS <= window.end_us
        and ended_ms * US_PER_MS >= window.start_us
    )


def may_be_finished(
    group: OperationTraces, requested: Callable[[Span, str], str | None] | None = None
) -> bool:
    """Cheap pre-check before diagnosing reused traces: an operation with an id is finished
    only once a terminal status shows, by a transition or a request (``last_status``); the
    engine has the last word afterwards."""
    if group.operation_id is None:
        return True
    return last_status(group, requested) in TERMINAL
