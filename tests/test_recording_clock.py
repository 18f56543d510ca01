"""Without a clock, the CLI and the assistant judge trace files at their end (their last
span), not at this machine's clock: on a snapshot taken while a training ran, the wall clock
made it "62h13m" long (and anything quiet stuck for days). When the files ended longer ago
than the stuck threshold, an answer whose verdict depends on the clock says which clock it
used: a warning of the diagnosis, a note of the listing (stderr for the CLI, ``note`` for the
assistant). ``opdiag serve`` judges at its clock, as it judges Jaeger."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import REAL_KTRDR
from opdiag import service as service_module
from opdiag.cli.main import main
from opdiag.devtools.score_cases import snapshot
from opdiag.mcp_server import OpdiagTools
from opdiag.service import DiagnosisService
from opdiag.settings import Settings
from opdiag.sources.files import FileSource

TRACES = REAL_KTRDR / "run1" / "traces"
KILLED = "op_training_20261204_160033_fcc59c1d"  # in flight in the snapshot of file 1464
ENDS = "2026-12-04T16:02:37Z"  # the snapshot's last span


@pytest.fixture(scope="module")
def snap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot(TRACES, 1464, tmp_path_factory.mktemp("snap") / "traces")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("JAEGER_URL", "OPDIAG_JAEGER_URL", "OPDIAG_TRACES", "OPDIAG_CONFIG"):
        monkeypatch.delenv(var, raising=False)


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    from contextlib import redirect_stderr, redirect_stdout

    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_a_snapshot_is_judged_at_its_end_and_says_so(snap: Path):
    code, out, err = _run("diagnose", KILLED, "--traces", str(snap), "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert (d["status"], d["verdict"]) == ("running", "worker_lost"), d["summary"]
    assert d["duration_ms"] < 3 * 60_000  # 2 min in, not the days since the file was written
    assert any(w.startswith(f"judged at {ENDS}, when the traces end") for w in d["warnings"])
    code, out, _ = _run("diagnose", KILLED, "--traces", str(snap), "--now", ENDS)
    assert code == 0 and "when the traces end" not in out  # a given clock needs no word


def test_the_listing_of_a_snapshot_notes_its_clock(snap: Path):
    code, out, err = _run("operations", "--traces", str(snap), "--format", "json")
    assert code == 0
    row = next(r for r in json.loads(out) if r["operation_id"] == KILLED)
    assert row["status"] == "running" and row["duration_ms"] < 3 * 60_000
    assert err.startswith(f"opdiag: note: judged at {ENDS}, when the traces end"), err
    # relative times count from the clock judged by: the end of the traces
    code, out, _ = _run("operations", "--traces", str(snap), "--from", "now-3m", "--format", "json")
    listed = [r["operation_id"] for r in json.loads(out)]
    assert code == 0 and KILLED in listed
    assert "op_training_20261204_155512_6652e327" not in listed  # completed at 15:59:15
    code, _, err = _run("operations", "--traces", str(snap), "--now", ENDS)
    assert code == 0 and "note" not in err


def test_files_that_end_now_need_no_word_of_their_clock(snap: Path, monkeypatch):
    service = DiagnosisService(FileSource([snap]), Settings(), recording_clock=True)
    ends = service.default_now_us()
    monkeypatch.setattr(service_module, "wall_clock_us", lambda: ends + 10_000_000)
    assert service.clock_note(None) is None
    assert not any("traces end" in w for w in service.diagnose(KILLED).warnings)


def test_the_assistant_judges_a_recording_at_its_end(snap: Path):
    settings = Settings()
    tools = OpdiagTools(
        DiagnosisService(FileSource([snap]), settings, recording_clock=True),
        settings,
        file_source=True,
    )
    d = tools.diagnose(operation_id=KILLED)
    assert d["verdict"] == "worker_lost"
    assert any("when the traces end" in w for w in d["warnings"])
    listed: dict[str, Any] = tools.list_operations()
    assert "when the traces end" in listed["note"]
    assert "note" not in tools.list_operations(now=ENDS)


def test_the_server_judges_files_at_its_clock(snap: Path):
    """A page opened later shows what the wall clock says (give now to judge earlier): a
    service without ``recording_clock`` judges as before, and needs no word of it."""
    service = DiagnosisService(FileSource([snap]), Settings())
    d = service.diagnose(KILLED)
    assert d.duration_ms > 24 * 3600_000
    assert not any("traces end" in w for w in d.warnings)
