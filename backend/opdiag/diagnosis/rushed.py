"""Whether a completed run was too fast to have done its work: far faster than its good runs
for its data, the span-less phase that holds most of their time nearly absent.

KTRDR reports some failures as completed: its model trainer returns ``{"error": "NaN loss
detected on first batch"}`` from the first batch and the worker completes the training, whose
loop (no span covers it) then takes almost no time. Nothing in the spans says so; only the
time does. The test is conservative, the mirror of ``slow`` with a wider margin: under a
fifth of what its runs took, each scaled down to its data (a smaller range takes less, and
proportional scaling asks the least of a small run: fixed costs do not shrink), and the gap
that held at least half of their time under a tenth of theirs. Pure: profiles in, a text out.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median

from opdiag.diagnosis.run_profile import RunProfile
from opdiag.timeutil import format_duration

__all__ = ["RUSHED_FRACTION", "rushed"]

# under this share of its runs' time (for its data) a completed run is suspiciously fast
RUSHED_FRACTION = 0.2
# the runs' main span-less phase must hold at least this share of their time ...
_HELD_SHARE = 0.5
# ... and this run spent under this share of theirs in it
_ABSENT_FRACTION = 0.1
_GAP = "gap"


def _ratios(this: RunProfile, runs: Sequence[RunProfile]) -> list[float]:
    """Each run's scale to this run's data: its size over theirs (1 when a size is unknown)."""
    return [
        this.size / r.size if this.size and r.size else 1.0
        for r in runs
    ]


def rushed(this: RunProfile, runs: Sequence[RunProfile]) -> str | None:
    """What says ``this`` completed run was too fast (``the time after training.data_loading
    took 300 ms; its runs spent 41.2 s there for its data``), or None. ``runs``: its
    baseline, good runs that judge its speed (its strategy's)."""
    if not runs or this.status != "completed" or this.duration_ms <= 0:
        return None
    ratios = _ratios(this, runs)
    expected = float(median([r.duration_ms * k for r, k in zip(runs, ratios, strict=True)]))
    if this.duration_ms >= RUSHED_FRACTION * expected:
        return None
    keys = {k for r in runs for k, p in r.phases.phases.items() if p.kind == _GAP}
    best: tuple[float, str] | None = None
    for key in keys:
        theirs = float(
            median(
                [
                    (r.phases.phases[key].total_us if key in r.phases.phases else 0) * k / 1000
                    for r, k in zip(runs, ratios, strict=True)
                ]
            )
        )
        if best is None or theirs > best[0]:
            best = (theirs, key)
    if best is None or best[0] < _HELD_SHARE * expected:
        return None
    usual_ms, key = best
    mine = this.phases.phases.get(key)
    mine_ms = mine.total_us / 1000 if mine is not None else 0.0
    if mine_ms >= _ABSENT_FRACTION * usual_ms:
        return None
    name = next(r.phases.phases[key].name for r in runs if key in r.phases.phases)
    return (
        f"the time {name} took {format_duration(mine_ms)}, where its runs spent "
        f"{format_duration(usual_ms)} for its data"
    )
