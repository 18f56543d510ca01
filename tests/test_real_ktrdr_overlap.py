"""run1's operations overlapping in time, as a recording with two workers of a type may hold
them: other operations' health checks, dispatches and workers must not decide an
operation's verdict. Built from run1 (``real_variants``) as KTRDR's code says they look."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import real_variants as rv
import yaml
from conftest import REAL_KTRDR
from opdiag.devtools.score_cases import diagnose_case

RUN = REAL_KTRDR / "run1"
TRACES = RUN / "traces"
CASES: list[dict[str, Any]] = yaml.safe_load((RUN / "cases.yaml").read_text(encoding="utf-8"))
FINAL = {c["id"]: c for c in CASES if c.get("upto") is None}
NOW = "2026-12-04T16:10:00Z"

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_source_env")]

# run1 cases 11: backtests refused 503 while the only backtest worker (:5003) was dead
REFUSED_WHILE_DEAD = ("1880c513804fedc10d7c942896c05f57", "34a15514715bc381388f7b067c3def15")


def _run(recording: rv.Recording, tmp: Path, name: str) -> Path:
    root = tmp / name
    rv.write(recording, root / "traces")
    return root


@pytest.mark.parametrize("ident", REFUSED_WHILE_DEAD)
def test_a_worker_started_after_a_refusal_does_not_make_the_dead_one_busy(
    ident: str, tmp_path: Path
) -> None:
    """A second backtest worker registered on :5004 at 15:52, after the 503s of 15:51
    (KTRDR's health loop probes it from then on): when they were refused the only worker
    registered was the dead one on :5003, so the worker is lost, not busy."""
    recording = rv.another_worker(
        rv.load(TRACES), 5003, 5004, "ktrdr-backtest-worker-7e7e7e7e",
        from_ns=rv.ns("2026-12-04T15:52:00Z"), dies_ns=rv.ns("2026-12-04T15:54:00Z"),
        until_ns=rv.ns("2026-12-04T15:54:00Z"),
    )
    root = _run(recording, tmp_path, "later-worker")
    d = diagnose_case(root, {"id": ident, "now": NOW}, tmp_path / "d")
    assert d["verdict"] == "worker_lost", d["summary"]
    assert "ktrdr-backtest-worker-09ec5021" in d["summary"], d["summary"]
