"""run1's operations overlapping in time, as a recording with two workers of a type may hold
them: other operations' health checks, dispatches and workers must not decide an
operation's verdict. Built from run1 (``real_variants``) as KTRDR's code says they look."""

from __future__ import annotations

import json
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


def _copy(base: rv.Recording, tmp: Path, ident: str, new: str, shift_s: float, salt: int,
          renames: dict[str, str] | None = None) -> rv.Recording:
    """``ident`` run again as ``new`` ``shift_s`` later (earlier when negative)."""
    first = diagnose_case(RUN, {"id": ident, "now": NOW}, tmp / f"first-{salt}")
    return rv.copy_operation(
        base, set(first["trace_ids"]), {ident: new, **(renames or {})}, int(shift_s * 1e9), salt
    )


def _worker(old: str, new: str, old_port: int, new_port: int) -> dict[str, str]:
    return {f"ktrdr-{old}": f"ktrdr-{new}", f":{old_port}": f":{new_port}"}


def test_every_run1_verdict_holds_among_overlapping_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """run1 with runs of its operations laid over it, on second workers of each type
    (health-checked from when they start): a backtest and a refused data load during the
    first training, a training and a backtest during the IB data load, a 4-min training
    on :5006 while the training worker on :5005 is killed, a 2-year backtest on :5004 while
    the one on :5003 is killed, a training on a new :5005 worker while :5006 is killed, a
    curl backtest during a followed training, a backtest on a new :5003 worker during the
    cancel on :5004. Each keeps its own verdict, and run1's keep theirs."""
    from opdiag.cli.main import main

    base = rv.load(TRACES)
    b2, d3 = "op_backtesting_20261204_154358_5d955ea3", "op_data_load_20261204_154431_10ad325f"
    t1, t18 = "op_training_20261204_154305_f6579e1a", "op_training_20261204_155512_6652e327"
    b12 = "op_backtesting_20261204_155230_0250c475"
    backtest_5004 = _worker("backtest-worker-5f6c5bbe", "backtest-worker-7e7e7e7e", 5003, 5004)
    copies = {
        "op_backtesting_20261204_154315_aaaa0001": (b2, -43, 11, None, "healthy"),
        "op_data_load_20261204_154320_aaaa0002": (d3, -71, 12, None, "service_unreachable"),
        "op_training_20261204_154510_bbbb0001": (t1, 125, 81, None, "healthy"),
        "op_backtesting_20261204_154520_bbbb0002": (b2, 82, 82, None, "healthy"),
        "op_training_20261204_154800_cccc0001": (t18, -432, 61, None, "healthy"),
        "op_backtesting_20261204_155336_cccc0002": (b12, 66, 31, backtest_5004, "healthy"),
        "op_training_20261204_160040_dddd0001": (
            t1, 1055, 51,
            _worker("training-worker-d97729bc", "training-worker-e1e1e1e1", 5005, 5005),
            "healthy",
        ),
        "op_backtesting_20261204_160005_dddd0002": (
            b12, 455, 41,
            _worker("backtest-worker-5f6c5bbe", "backtest-worker-7e7e7e7e", 5003, 5003),
            "healthy",
        ),
    }
    recording = list(base)
    for new, (ident, shift, salt, renames, _) in copies.items():
        recording += _copy(base, tmp_path, ident, new, shift, salt, renames)
    curl = _copy(base, tmp_path, b2, "op_backtesting_20261204_155600_eeee0001", 722, 91,
                 _worker("backtest-worker-09ec5021", "backtest-worker-2ce2abc4", 5003, 5004))
    recording += rv.as_curl(curl, {s["traceId"] for _, _, s in rv.spans(curl)})
    for beside, port, service, start, end in (
        (5003, 5004, "backtest-worker-7e7e7e7e", "15:52:00", "15:53:57"),
        (5005, 5006, "training-worker-b969a633", "15:46:00", "15:54:00"),
        (5006, 5005, "training-worker-e1e1e1e1", "15:59:00", "16:10:00"),
        (5004, 5003, "backtest-worker-7e7e7e7e", "15:59:00", "16:10:00"),
    ):
        until = rv.ns(f"2026-12-04T{end}Z")
        recording = rv.another_worker(
            recording, beside, port, f"ktrdr-{service}",
            from_ns=rv.ns(f"2026-12-04T{start}Z"), dies_ns=until, until_ns=until,
        )
    root = _run(recording, tmp_path, "overlapping")
    assert main(["operations", "--traces", str(root / "traces"), "--now", NOW,
                 "--format", "json"]) == 0
    rows = {r["operation_id"]: r for r in json.loads(capsys.readouterr().out)}
    wrong = {
        k: (c["verdict"], rows[k]["verdict"], rows[k]["summary"])
        for k, c in FINAL.items()
        if rows[k]["verdict"] != c["verdict"] and rows[k]["verdict"] not in c.get(
            "also_acceptable", []
        )
    }
    wrong |= {
        k: (want, rows[k]["verdict"], rows[k]["summary"])
        for k, (*_, want) in copies.items()
        if rows[k]["verdict"] != want
    }
    assert not wrong, wrong
    assert rows["op_backtesting_20261204_155600_eeee0001"]["verdict"] == "healthy"


@pytest.mark.parametrize(
    "name", ["ktrdr-training-worker-0a0a0a0a", "ktrdr-training-worker-d97729bc"]
)
def test_a_replacement_that_died_too_is_not_the_lost_worker(name: str, tmp_path: Path) -> None:
    """run1's training whose worker on :5005 was SIGKILLed at 15:48:22 (case 9); a new worker
    (another name, or the same under a fixed KTRDR_WORKER_ID) started on :5005 at 15:49:30
    and died at 15:50:00 too, before KTRDR's orphan detector failed the training (70 s after
    the new worker registered at that address). The health checks of :5005 end failing
    since 15:50:00, but that silence is the new process's: the training's worker was gone
    from 15:48, and was replaced."""
    ident = "op_training_20261204_154749_b37ed832"
    recording = rv.restart_worker(
        rv.load(TRACES), 5005, rv.ns("2026-12-04T15:49:30Z"), name
    )
    died = rv.ns("2026-12-04T15:50:00Z")
    recording = rv.without(
        recording,
        lambda svc, s: svc == name and int(s["startTimeUnixNano"]) > died,
    )

    def refused(span: rv.Doc) -> None:
        span["attributes"] = [a for a in span["attributes"] if a["key"] != "http.status_code"]
        end = int(span["startTimeUnixNano"]) + 3_000_000
        rv.raising("httpx.ConnectError", "All connection attempts failed", end_ns=end)(span)

    recording = rv.edited(
        recording,
        lambda _svc, s: s.get("kind") == rv.CLIENT and rv._probe_port(s) == 5005
        and int(s["startTimeUnixNano"]) > died,
        refused,
    )
    root = _run(recording, tmp_path, "replacement-died")
    d = diagnose_case(root, {"id": ident, "now": NOW}, tmp_path / "d")
    assert d["verdict"] == "worker_lost", d["summary"]
    assert "ktrdr-training-worker-d97729bc" in d["summary"], d["summary"]
    assert "restarted" in d["summary"] and "15:50:0" not in d["summary"], d["summary"]
