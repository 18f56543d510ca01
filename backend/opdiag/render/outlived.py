"""A span that ran on after the call that made it: the caller gave up (its timeout) and the
server went on (the IB host service held a request 4 min after the backend's 30 s timeout).
The Markdown and the page both say so; the page said "4.3 min" with its time axis stretched
to 5.3 min for a 2.1 min operation, and nothing about it."""

from __future__ import annotations

from collections.abc import Mapping

from opdiag.diagnosis.result import FlowStep

# Less than this past the caller's end is clock skew between hosts.
OUTLIVED_MS = 1000.0

StepKey = tuple[str, str]


def outlived_ms(step: FlowStep, by_key: Mapping[StepKey, FlowStep]) -> float | None:
    """How long ``step`` ran past the end of the call that made it, when it did by a clear
    margin. Only across services: a span of the same service may be work its parent
    started in the background (KTRDR's data.download returns while its download goes on)."""
    if step.parent_id is None:
        return None
    parent = by_key.get((step.trace_id, step.parent_id))
    if parent is None or parent.service == step.service:
        return None
    over = (step.start_ms + step.duration_ms) - (parent.start_ms + parent.duration_ms)
    return over if over >= OUTLIVED_MS else None
