"""``opdiag.forked.split_map``: a listing's first pass split with a forked child. The answer is
always the serial map's, the child really computes its half, and whatever goes wrong in the
child (an error, a refused encoding, a bad chunk, a signal) only makes the parent compute
that half itself; the parent never leaves the child behind.

pytest's workers run threads of their own, so these tests let ``split_map`` fork anyway
(``can_fork``); the child touches no lock another thread could hold."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from opdiag import forked
from opdiag.forked import split_map

HERE = os.getpid()


@pytest.fixture(autouse=True)
def _fork_anyway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forked, "can_fork", lambda: True)
    monkeypatch.setattr(forked, "CHUNK", 3)  # several chunks from a small half


def _no_children_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def _tagged(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def _map(fn, items):
    return split_map(fn, items, min_items=2)


def test_the_child_computes_the_second_half_and_the_answer_is_the_serial_one() -> None:
    items = list(range(11))
    out = _map(_tagged, items)
    assert [v for v, _ in out] == [x * x for x in items]
    pids = [pid for _, pid in out]
    assert set(pids[:5]) == {HERE}
    assert HERE not in set(pids[5:]) and len(set(pids[5:])) == 1
    assert _no_children_left()


def test_too_few_items_are_mapped_here() -> None:
    out = split_map(_tagged, [1, 2, 3], min_items=4)
    assert out == [(1, HERE), (4, HERE), (9, HERE)]


def test_an_error_in_the_child_s_half_is_raised_by_the_parent() -> None:
    def failing(x: int) -> tuple[int, int]:
        if x == 8:
            raise ValueError(f"bad item {x} in {os.getpid()}")
        return _tagged(x)

    with pytest.raises(ValueError, match=f"bad item 8 in {HERE}$"):
        _map(failing, list(range(10)))
    assert _no_children_left()


def test_an_error_in_the_parent_s_half_leaves_no_child_behind() -> None:
    def failing(x: int) -> tuple[int, int]:
        if x == 1:
            raise KeyError(x)
        return _tagged(x)

    with pytest.raises(KeyError):
        _map(failing, list(range(10)))
    assert _no_children_left()


def test_a_result_that_does_not_pickle_or_a_bad_chunk_costs_only_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unpicklable_there(x: int) -> tuple[int, object]:
        if os.getpid() != HERE:
            return x * x, lambda: None  # a local function: pickle refuses it
        return _tagged(x)

    out = split_map(unpicklable_there, list(range(8)), min_items=2)
    assert out == [(x * x, HERE) for x in range(8)]

    def not_a_pickle(data: bytes) -> object:
        raise pickle.UnpicklingError("not a pickle")

    codec = SimpleNamespace(dumps=pickle.dumps, loads=not_a_pickle, HIGHEST_PROTOCOL=5)
    monkeypatch.setattr(forked, "pickle", codec)
    out = split_map(_tagged, list(range(8)), min_items=2)
    assert out == [(x * x, HERE) for x in range(8)]
    assert _no_children_left()


def test_a_child_killed_by_a_signal_costs_only_time() -> None:
    def dies(x: int) -> tuple[int, int]:
        if os.getpid() != HERE:
            os.kill(os.getpid(), signal.SIGKILL)
        return _tagged(x)

    assert _map(dies, list(range(8))) == [(x * x, HERE) for x in range(8)]
    assert _no_children_left()


def test_a_child_whose_parent_is_gone_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    """The child checks its parent before each chunk; here it is told the parent is gone
    (the parent then computes everything itself, as after any failure of the child)."""
    seen: list[int] = []

    def record(x: int) -> tuple[int, int]:
        if os.getpid() != HERE:
            seen.append(x)  # (the child's own list: never seen here)
            os.write(fd, b"x")
        return _tagged(x)

    read_fd, fd = os.pipe()
    monkeypatch.setattr(forked.os, "getppid", lambda: 1)
    try:
        assert _map(record, list(range(8))) == [(x * x, HERE) for x in range(8)]
        os.close(fd)
        assert os.read(read_fd, 100) == b""  # the child computed nothing
    finally:
        os.close(read_fd)
    assert _no_children_left()


def test_a_cut_chunk_is_refused(tmp_path: Path) -> None:
    with (tmp_path / "chunks").open("w+b") as file:
        file.write((10).to_bytes(8, "big") + b"short")
        file.seek(0)
        with pytest.raises(EOFError):
            list(forked._chunks(file))


REPO = Path(__file__).resolve().parents[1]
CORPORA = [REPO / "tests" / "data" / "real-ktrdr" / "run1", REPO / "demo" / "traces"]


@pytest.mark.parametrize("corpus", CORPORA, ids=["real-ktrdr", "demo"])
def test_the_cli_listing_with_a_fork_is_the_serial_listing(corpus: Path) -> None:
    """``opdiag operations`` (one-shot, no threads: it forks) against the service without a
    fork, on the real KTRDR recordings and the demo corpus (neighbours, workers lost,
    baselines), ``MIN_ITEMS`` lowered so that their few operations are split."""
    import argparse

    from opdiag.cli.commands import build_settings
    from opdiag.render.table import render_operations_table
    from opdiag.service import DiagnosisService
    from opdiag.sources.factory import make_source
    from opdiag.timeutil import parse_now

    now = "2026-12-05T00:00:00Z"
    code = (
        "import sys\n"
        "from opdiag.cli.main import main\n"
        "from opdiag import forked\n"
        "forked.MIN_ITEMS = 4\n"
        "calls = []\n"
        "real = forked._Child.start\n"
        "forked._Child.start = lambda *a: calls.append(1) or real(*a)\n"
        f"status = main(['operations', '--traces', {str(corpus)!r}, '--now', {now!r}])\n"
        "print('forked', len(calls), 'status', status, file=sys.stderr)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stderr.strip().splitlines()[-1] == "forked 1 status 0"
    args = argparse.Namespace(
        traces=[str(corpus)], config=None, rules=[], jaeger_url=None, lookback=None
    )
    settings = build_settings(args)
    service = DiagnosisService(make_source(settings), settings)  # no fork
    serial = list(service.each_operation(0, 2**62, parse_now(now), rows=True))
    assert len(serial) > 8
    assert run.stdout == render_operations_table(serial)
