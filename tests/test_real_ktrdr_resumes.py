"""run1 with ``ktrdr resume`` as KTRDR records it (tests/ktrdr_resumes.py, from its code at
the recorded commit): a resumed operation is judged from its resume on; a refused resume is
left out of the operation it names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ktrdr_resumes as kr
import pytest
from conftest import REAL_KTRDR
from opdiag.devtools.score_cases import diagnose_case

TRACES = REAL_KTRDR / "run1" / "traces"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scenarios() -> dict[str, Any]:
    return kr.scenarios(TRACES)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("JAEGER_URL", "OPDIAG_JAEGER_URL", "OPDIAG_TRACES", "OPDIAG_CONFIG"):
        monkeypatch.delenv(var, raising=False)


def _diagnose(scenarios: dict[str, Any], name: str, now: str, tmp: Path) -> dict[str, Any]:
    recording, op, _, _ = scenarios[name]
    root = tmp / name
    kr.write(recording, root / "traces", snapshot=now)
    return diagnose_case(root, {"id": op, "now": now}, tmp / f"{name}-scratch")


# (scenario, clock, verdict, status, duration in s, words of the summary)
RESUMED = [
    ("s1_cancel_resume", "2026-12-04T15:59:50Z", "healthy", "running", None, "data_loading"),
    ("s1_cancel_resume", "2026-12-04T16:10:00Z", "healthy", "completed", 65.0, "completed"),
    ("s2_kill_resume", "2026-12-04T15:59:50Z", "healthy", "running", None, "b969a633"),
    ("s2_kill_resume", "2026-12-04T16:10:00Z", "healthy", "completed", 65.0, "completed"),
    ("s2r_kill_restart_same_port", "2026-12-04T16:08:20Z", "healthy", "running", None, "7e41c0d2"),
    ("s2r_kill_restart_same_port", "2026-12-04T16:10:00Z", "healthy", "completed", 75.0, ""),
    ("s6_backtest_resume", "2026-12-04T16:10:00Z", "healthy", "completed", 12.3, "completed"),
]


@pytest.mark.parametrize(
    ("name", "now", "verdict", "status", "seconds", "words"),
    RESUMED,
    ids=[f"{r[0]}-{r[1][11:16]}" for r in RESUMED],
)
def test_a_resumed_operation_is_judged_from_its_resume(
    scenarios: dict[str, Any],
    tmp_path: Path,
    name: str,
    now: str,
    verdict: str,
    status: str,
    seconds: float | None,
    words: str,
) -> None:
    """Killed, failed by the orphan detector, resumed (on another worker, or on one restarted
    at the same port) and completed: healthy, as long as the resumed run, not worker_lost
    for the first attempt's dead worker; in flight, running on the resuming worker."""
    d = _diagnose(scenarios, name, now, tmp_path)
    assert (d["verdict"], d["status"]) == (verdict, status), d["summary"]
    assert words in d["summary"], d["summary"]
    if seconds is not None:
        assert d["duration_ms"] == pytest.approx(seconds * 1000, abs=500)
    assert any(w.startswith("resumed at") for w in d["warnings"]), d["warnings"]


REFUSED = [
    ("s3_resume_404", "worker_lost", "404"),
    ("s3c_resume_404_cancelled", "cancelled", "404"),
    ("s4_resume_503", "worker_lost", "503"),
    ("s4b_resume_connect", "cancelled", "503"),
    ("s5_resume_502", "worker_lost", "502"),
    # found by its operation id, the operation does not hold the 409: its URL alone names it
    ("s7a_resume_completed_409", "healthy", None),
]


@pytest.mark.parametrize(("name", "verdict", "status"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_refused_resume_leaves_the_operation_as_it_was(
    scenarios: dict[str, Any], tmp_path: Path, name: str, verdict: str, status: str | None
) -> None:
    d = _diagnose(scenarios, name, "2026-12-04T16:10:00Z", tmp_path)
    assert d["verdict"] == verdict, d["summary"]
    if status is not None:
        assert any("refused" in w and status in w for w in d["warnings"]), d["warnings"]
