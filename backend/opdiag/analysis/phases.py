"""An operation cut into phases: where its time went on the side that does the work.

Two runs of one operation type are compared phase by phase, so a phase must be something both
runs have: the *span name* on the worker side (a worker's service name carries a random suffix
per process, so the service does not key a phase), with repeated spans of one name summed. Time
in which no span of the operation is open on the worker side is a phase too (KTRDR's training
loop emits no span): such a *gap* is keyed by the span it follows, and gaps after the same
span name are summed. The time before the worker side starts (dispatch) and after it ends
(the client noticing the end) are the two *outside* phases; a run whose worker was lost has a
third instead of the second: the time after the worker's last answer (until KTRDR's orphan
detector failed the run), its open work before that being a gap.

::

    op      |==================================================================|
    worker       |-load-|    |--indicators--|                 |-t-|
                 .      .gap .              .  gap after      .   .
    outside |----|      after load          indicators        .   |--after--|

Phases of nested spans overlap (a phase's time includes its children's); gaps and outside time
never overlap a worker span, so worker coverage + gaps + outside = the operation's length,
short gaps (under ``min_gap_us``) aside. Pure: spans in, values out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgspec

from opdiag.model import Span

SPAN = "span"
GAP = "gap"
OUTSIDE = "outside"
BEFORE_WORKER = "before the worker"
AFTER_WORKER = "after the worker"
AFTER_LAST_ANSWER = "after the worker's last answer"  # a lost worker: until KTRDR noticed


def gap_name(after: str | None) -> str:
    """The label of a gap: ``after training.data_loading``."""
    return f"after {after}" if after else "between spans"


class PhaseTime(msgspec.Struct):
    """One phase of one run: summed time and how many spans (or gaps) made it."""

    name: str
    kind: str  # span | gap | outside
    total_us: int
    count: int
    first_start_us: int
    service: str = ""  # a service that ran it (the first one seen)
    after: str | None = None  # gaps: the span name the gap follows


class PhaseProfile(msgspec.Struct):
    """A run's phases in the order they first started, keyed by ``kind:name``."""

    start_us: int
    end_us: int
    worker_services: list[str]
    phases: dict[str, PhaseTime] = msgspec.field(default_factory=dict)
    # False: no span ran on a worker, so every service counted as the worker side
    reached_worker: bool = True

    def before_the_worker(self) -> PhaseProfile:
        """A run that never reached a worker, as runs that did see it: its whole length
        was spent before the worker (dispatch, refusal), and none of its spans is a phase
        of theirs."""
        whole = PhaseTime(BEFORE_WORKER, OUTSIDE, self.duration_us, 1, self.start_us)
        return PhaseProfile(
            self.start_us, self.end_us, [], {phase_key(OUTSIDE, BEFORE_WORKER): whole}, False
        )

    @property
    def duration_us(self) -> int:
        return max(0, self.end_us - self.start_us)


def phase_key(kind: str, name: str) -> str:
    return f"{kind}:{name}"


def _add(
    phases: dict[str, PhaseTime],
    kind: str,
    name: str,
    us: int,
    start_us: int,
    *,
    service: str = "",
    after: str | None = None,
) -> None:
    key = phase_key(kind, name)
    found = phases.get(key)
    if found is None:
        phases[key] = PhaseTime(name, kind, us, 1, start_us, service, after)
    else:
        found.total_us += us
        found.count += 1


def phase_profile(
    spans: Iterable[Span],
    *,
    is_worker: Callable[[str], bool],
    is_noise: Callable[[Span], bool],
    min_gap_us: int = 0,
    open_until_us: int | None = None,
) -> PhaseProfile:
    """The phases of one operation from all its spans (every service, noise included: the
    operation's extent counts them, its phases do not). ``open_until_us``: the worker did
    not close the run (it is in flight, or KTRDR's orphan detector failed it), so the time
    after its last span, up to then, is the worker's own open work (``after X``), not the
    caller noticing the end; for a lost worker it is its last answer, and the time after
    it is a phase of its own (``after the worker's last answer``)."""
    every = list(spans)
    if not every:
        return PhaseProfile(0, 0, [])
    start = min(s.start_us for s in every)
    end = max(s.end_us for s in every)
    if open_until_us is not None:
        end = max(end, open_until_us)
    work = [s for s in every if not is_noise(s)]
    worker = [s for s in work if is_worker(s.service)]
    outside = bool(worker)
    if not worker:  # nothing on a worker: the whole operation is the worker side
        worker = work
    profile = PhaseProfile(start, end, sorted({s.service for s in worker}), reached_worker=outside)
    if not worker:
        return profile
    worker.sort(key=lambda s: (s.start_us, -s.duration_us))
    found: dict[str, PhaseTime] = {}
    first, last_end = worker[0].start_us, max(s.end_us for s in worker)
    if outside and first - start >= max(min_gap_us, 1):
        _add(found, OUTSIDE, BEFORE_WORKER, first - start, start)
    covered_to = first
    last: Span | None = None
    for span in worker:
        hole = span.start_us - covered_to
        if hole >= max(min_gap_us, 1):
            after = last.name if last is not None else None
            _add(found, GAP, gap_name(after), hole, covered_to, service=span.service, after=after)
        if span.end_us > covered_to:
            covered_to, last = span.end_us, span
        _add(found, SPAN, span.name, span.duration_us, span.start_us, service=span.service)
    if outside and open_until_us is not None and last is not None:
        _open_work(found, last, min(end, open_until_us), end, min_gap_us)
    elif outside and end - last_end >= max(min_gap_us, 1):
        _add(found, OUTSIDE, AFTER_WORKER, end - last_end, last_end)
    profile.phases = dict(sorted(found.items(), key=lambda kv: kv[1].first_start_us))
    return profile


def _open_work(
    found: dict[str, PhaseTime], last: Span, until_us: int, end_us: int, min_gap_us: int
) -> None:
    """The worker did not close the run: the time after its last span, up to ``until_us``,
    is its own open work (``after X``); the rest, up to the run's end, came after a lost
    worker's last answer (KTRDR's orphan detector failing the run minutes later): not work,
    and not the caller noticing an end the worker recorded."""
    if until_us - last.end_us >= max(min_gap_us, 1):
        _add(
            found,
            GAP,
            gap_name(last.name),
            until_us - last.end_us,
            last.end_us,
            service=last.service,
            after=last.name,
        )
    silent_from = max(until_us, last.end_us)
    if end_us - silent_from >= max(min_gap_us, 1):
        _add(found, OUTSIDE, AFTER_LAST_ANSWER, end_us - silent_from, silent_from)
