"""What the capable workers were doing when a request found none free.

KTRDR answers 503 when its registry marks every worker of the type busy. The registry learns a
worker is free from its next health check, so a worker that finished a run seconds earlier is
still "busy" (run1: the backtest worker completed one at 15:52:49.7, a request at 15:52:54.1 got
503). The workers' own state transitions, in the traces around the request, say which run
holds each worker, or that it had just finished one. A worker killed within its 5 s export
batch after finishing never exports its running -> completed transition: a command that
followed the run to its end (``ended``) says it finished then, and it is not said to run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from opdiag.diagnosis.facts import TERMINAL, operation_id_of
from opdiag.diagnosis.neighbours import clock_text
from opdiag.diagnosis.result import IN_FLIGHT
from opdiag.model import Trace, lifecycle_status

# A worker that finished a run this long before the request may still be marked busy: KTRDR's
# health checks run every 10 s, so the registry sees it free within about one round.
STALE_US = 30_000_000


class Held(NamedTuple):
    """A capable worker at the request: the run it held (``running``, since ``at_us``) or
    had finished just before (at ``at_us``)."""

    service: str
    operation_id: str
    running: bool
    at_us: int


def holdings(
    traces: Sequence[Trace],
    is_capable: Callable[[str], bool],
    at_us: int,
    own_id: str | None = None,
    ended: Callable[[str], int | None] | None = None,
) -> list[Held]:
    """Per capable worker seen, the run it was running at ``at_us`` (and since when), or the
    run it had finished just before; the running ones first. ``ended``: when a follower of
    a run read it finished, if one did (None otherwise)."""
    # (service, operation id) -> (time, status) of its last transition on that service up to
    # at_us, and of its first running transition
    last: dict[tuple[str, str], tuple[int, str]] = {}
    started: dict[tuple[str, str], int] = {}
    for trace in traces:
        for span in trace.spans:
            if span.start_us > at_us or not is_capable(span.service):
                continue
            status = lifecycle_status(span.attributes)
            op = operation_id_of(span) if status else None
            if op is None or op == own_id:
                continue
            key = (span.service, op)
            if status == "running":
                started[key] = min(started.get(key, span.start_us), span.start_us)
            known = last.get(key)
            if known is None or span.start_us >= known[0]:
                last[key] = (span.start_us, status or "")
    busy: dict[str, Held] = {}
    freed: dict[str, Held] = {}
    for (service, op), (seen_at, seen) in sorted(last.items(), key=lambda kv: kv[1][0]):
        when, status = seen_at, seen
        if status in IN_FLIGHT and ended is not None:
            read = ended(op)
            if read is not None and read <= at_us:
                when, status = read, "completed"
        if status in IN_FLIGHT:
            busy[service] = Held(service, op, True, started.get((service, op), when))
        elif status in TERMINAL and at_us - when <= STALE_US:
            freed[service] = Held(service, op, False, when)
    return [*busy.values(), *(h for s, h in freed.items() if s not in busy)]


def describe(held: Sequence[Held], at_us: int) -> str | None:
    """``holdings`` in words, for a summary; None when there are none."""
    parts = []
    for h in held:
        if h.running:
            parts.append(f"{h.service} runs {h.operation_id} (since {clock_text(h.at_us)})")
        else:
            seconds = (at_us - h.at_us) / 1e6
            parts.append(
                f"{h.service} finished {h.operation_id} {seconds:.1f} s before (at "
                f"{clock_text(h.at_us)}); KTRDR's registry had not seen it free yet"
            )
    return "; ".join(parts) or None


def occupancy(
    traces: Sequence[Trace],
    is_capable: Callable[[str], bool],
    at_us: int,
    own_id: str | None = None,
    ended: Callable[[str], int | None] | None = None,
) -> str | None:
    """Per capable worker seen, in words: the run it was running at ``at_us`` (and since
    when), or the run it had finished just before. None when the traces show neither."""
    return describe(holdings(traces, is_capable, at_us, own_id, ended), at_us)
