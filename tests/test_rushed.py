"""``diagnosis.rushed``: a completed run far faster than its good runs for its data, the
span-less phase that holds their time nearly absent (a training KTRDR completed after a NaN
loss on the first batch); never a run that took its data's share of their time."""

from __future__ import annotations

from opdiag.analysis.phases import PhaseProfile, PhaseTime
from opdiag.diagnosis.run_profile import RunProfile
from opdiag.diagnosis.rushed import rushed

LOOP = "gap:after training.data_loading"


def _run(key: str, loop_s: float, *, size: float | None = 3097, status: str = "completed"):
    load_us = 250_000
    phases = {
        "span:training.data_loading": PhaseTime("training.data_loading", "span", load_us, 1, 0),
        LOOP: PhaseTime(
            "after training.data_loading", "gap", int(loop_s * 1e6), 1, load_us,
            after="training.data_loading",
        ),
    }
    total_ms = 1_500 + loop_s * 1000
    profile = PhaseProfile(
        start_us=0, end_us=int(total_ms * 1000), worker_services=[], phases=phases
    )
    return RunProfile(
        key=key, operation_type="training", started_at_ms=0, duration_ms=total_ms,
        phases=profile, alike={"strategy": "v3_minimal"}, size=size, status=status,
    )


def test_a_run_whose_loop_took_no_time_is_rushed() -> None:
    text = rushed(_run("b", 0.3), [_run("a", 43.0)])
    assert text == (
        "the time after training.data_loading took 300ms, where its runs spent 43.0s for "
        "its data"
    )


def test_runs_that_took_their_time_for_their_data_are_not() -> None:
    base = [_run("a", 43.0)]
    assert rushed(_run("b", 40.0), base) is None  # as long
    assert rushed(_run("b", 4.0, size=280), base) is None  # a tenth of the data
    assert rushed(_run("b", 0.3, size=None), []) is None  # no baseline
    assert rushed(_run("b", 0.3, status="failed"), base) is None  # not completed
