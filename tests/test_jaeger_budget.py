"""One request's Jaeger calls share one budget (``jaeger.budget_s``): each call already ends by
``jaeger.deadline_s``, but a listing makes dozens of calls, and over a Jaeger answering each in
3 s ``opdiag operations`` took 93 s. Once the budget is spent the request fails with a 504
naming the setting — through the service, the CLI, the REST API and the assistant tools —
while the next request gets a budget of its own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from opdiag.api.app import create_app
from opdiag.cli.main import main
from opdiag.devtools.replay_jaeger import Fault, ReplayJaeger
from opdiag.errors import SourceTimeoutError
from opdiag.mcp_server import OpdiagTools, _as_tool
from opdiag.model import Trace
from opdiag.service import DiagnosisService
from opdiag.settings import Settings
from opdiag.sources.budget import (
    _CURRENT,
    Budget,
    BudgetSpent,
    BudgetSpentError,
    close_budget,
    current,
    jaeger_budget,
    open_budget,
)
from opdiag.sources.files import FileSource
from opdiag.sources.jaeger import JaegerSource
from opdiag.sources.jaeger_cache import TtlCache
from opdiag.timeutil import parse_now

DATA = Path(__file__).parent / "data" / "jaeger_replay"
DEMO = Path(__file__).resolve().parents[1] / "demo" / "traces"
DEMO_NOW_US = parse_now("2026-11-24T08:46:00Z")
KILLED = "op_training_20261124_080530_943c8505"  # worker_lost: read from its neighbours
T0 = 1_764_000_000
NOW_US = (T0 + 3600) * 1_000_000
START_US = NOW_US - 7 * 3600 * 1_000_000
CALLS_OF_A_LISTING = 28  # what the listing below asks of this corpus, all answered (12 of
# them around the requests that never became operations: the workers' runs, occupancy, and
# the backend's worker selections, the other requests a dead worker turned away)


@pytest.fixture
def replay() -> Iterator[ReplayJaeger]:
    with ReplayJaeger(DATA) as server:
        yield server


def _settings(replay: ReplayJaeger, **jaeger: object) -> Settings:
    return Settings.model_validate(
        {"jaeger": {"url": replay.url, "backoff_s": 0.0, "concurrency": 2, **jaeger}}
    )


def _service(settings: Settings) -> DiagnosisService:
    return DiagnosisService(JaegerSource(settings.jaeger, clock=lambda: T0 + 3600), settings)


def test_the_budget_starts_at_the_first_call_and_refuses_once_spent():
    budget = Budget()
    assert budget.ends is None  # a file source never starts it
    assert budget.start_call(100.0, 2.0) == 102.0
    assert budget.start_call(101.5, 9.0) == 102.0  # the first call's length holds
    with pytest.raises(BudgetSpent):
        budget.start_call(102.0, 2.0)
    assert budget.calls == 2
    assert Budget(5.0).start_call(10.0, 2.0) == 15.0  # an edge's own length wins


def test_budgets_nest_to_the_outermost_and_close_with_their_request():
    assert current() is None
    with jaeger_budget(3.0) as outer, jaeger_budget(1.0) as inner:
        assert inner is outer and current() is outer
    assert current() is None
    token = open_budget()
    opened = current()
    assert opened is not None and opened.seconds is None
    close_budget(token)
    assert current() is None


def test_the_fan_out_workers_share_the_callers_budget(replay: ReplayJaeger):
    source = JaegerSource(_settings(replay).jaeger)
    try:
        seen: list[Budget | None] = []
        lock = threading.Lock()

        def search(service: str) -> str:
            with lock:
                seen.append(current())
            return service

        with jaeger_budget() as budget:
            assert source._fan_out(["a", "b", "c"], search) == ["a", "b", "c"]
        assert seen == [budget, budget, budget]
        source._fan_out(["a", "b"], search)
        assert seen[3:] == [None, None]  # no request, no budget
    finally:
        source.close()


def test_a_listing_over_a_slow_jaeger_stops_at_its_budget(replay: ReplayJaeger):
    replay.set_faults([Fault("slow", seconds=0.2)])
    settings = _settings(replay, budget_s=0.5)
    with jaeger_budget(), pytest.raises(SourceTimeoutError) as info:
        _service(settings).operations(START_US, NOW_US, NOW_US)
    assert "jaeger.budget_s" in info.value.message
    assert "0.5s" in info.value.message
    assert info.value.http_status == 504
    assert len(replay.calls) < CALLS_OF_A_LISTING

    replay.calls.clear()
    found = _service(settings).operations(START_US, NOW_US, NOW_US)  # no request: no budget
    assert found and len(replay.calls) == CALLS_OF_A_LISTING


def test_the_cli_exits_4_naming_the_budget(replay: ReplayJaeger, monkeypatch, capsys):
    replay.set_faults([Fault("slow", seconds=0.2)])
    monkeypatch.setenv("OPDIAG_JAEGER_BUDGET_S", "0.5")
    status = main(
        [
            "operations",
            "--jaeger-url",
            replay.url,
            "--now",
            "2025-11-24T17:00:00Z",
            "--from",
            "now-7h",
        ]
    )
    err = capsys.readouterr().err
    assert status == 4, err
    assert "jaeger.budget_s" in err and "Traceback" not in err


def test_each_api_request_has_a_budget_of_its_own(replay: ReplayJaeger):
    settings = _settings(replay, budget_s=0.5)
    app = create_app(settings, service=_service(settings))
    with app.test_client() as client:
        replay.set_faults([Fault("slow", seconds=0.2)])
        slow = client.get("/api/v1/operations?from=now-7h&now=2025-11-24T17:00:00Z")
        assert slow.status_code == 504
        assert "jaeger.budget_s" in slow.get_json()["error"]
        replay.set_faults([])
        fine = client.get("/api/v1/operations?from=now-7h&now=2025-11-24T17:00:00Z")
        assert fine.status_code == 200, fine.get_data(as_text=True)
    assert current() is None


def test_an_assistant_tool_call_answers_source_unavailable(replay: ReplayJaeger):
    replay.set_faults([Fault("slow", seconds=0.2)])
    settings = _settings(replay, budget_s=0.5)
    tools = OpdiagTools(_service(settings), settings, clock=lambda: NOW_US)
    listing = _as_tool(tools.list_operations, RuntimeError)
    with pytest.raises(RuntimeError) as info:
        listing(since="now-7h")
    assert '"kind":"source_unavailable"' in str(info.value)
    assert "jaeger.budget_s" in str(info.value)


def _joined(cache: TtlCache[str], follower_budget: Budget | None) -> dict[str, object]:
    """A leader whose call fails for its request's spent budget while a follower waits on
    it; the follower runs in ``follower_budget`` (the leader's own: the same request)."""
    leader_budget = Budget(1.0)
    started, release = threading.Event(), threading.Event()
    out: dict[str, object] = {}

    def leader_load() -> str:
        started.set()
        release.wait(10)
        raise BudgetSpentError("the leader's budget is spent", leader_budget)

    def leader() -> None:
        try:
            cache.get_or_load("k", leader_load)
        except BudgetSpentError as exc:
            out["leader"] = exc

    def follower() -> None:
        token = _CURRENT.set(follower_budget or leader_budget)
        try:
            out["follower"] = cache.get_or_load("k", lambda: "answered")
        except BudgetSpentError as exc:
            out["follower"] = exc
        finally:
            _CURRENT.reset(token)

    first = threading.Thread(target=leader)
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=follower)
    second.start()
    while cache.joined == 0:
        threading.Event().wait(0.01)
    release.set()
    first.join(10)
    second.join(10)
    return out


def test_a_request_that_joined_another_requests_spent_call_asks_jaeger_itself():
    cache: TtlCache[str] = TtlCache(10.0, 10)
    out = _joined(cache, Budget(5.0))
    assert isinstance(out["leader"], BudgetSpentError)
    assert out["follower"] == "answered"
    assert (cache.joined, cache.misses) == (1, 2)
    same: TtlCache[str] = TtlCache(10.0, 10)
    out = _joined(same, None)  # one request's own fan-out: its budget is spent for both
    assert isinstance(out["follower"], BudgetSpentError)
    assert (same.joined, same.misses) == (1, 1)


class _NeighboursFail(FileSource):
    """The demo corpus, whose search for neighbouring traces fails with ``error``."""

    def __init__(self, error: Exception) -> None:
        super().__init__([DEMO])
        self.error = error

    def neighbour_traces(self, *args: object, **kwargs: object) -> list[Trace]:
        raise self.error


def test_neighbours_a_source_cannot_give_leave_a_diagnosis_that_says_so():
    source = _NeighboursFail(SourceTimeoutError("Jaeger at http://j is too slow"))
    found = DiagnosisService(source, Settings()).diagnose(KILLED, now_us=DEMO_NOW_US)
    assert any("neighbouring traces unavailable" in w for w in found.warnings)


def test_a_spent_budget_fails_the_request_instead_of_dropping_the_neighbours():
    """Otherwise the request goes on with every later operation's neighbours refused at
    once, and a watcher records the verdicts the missing evidence changed."""
    spent = BudgetSpentError("Jaeger is too slow (jaeger.budget_s)", Budget(1.0))
    service = DiagnosisService(_NeighboursFail(spent), Settings())
    with pytest.raises(BudgetSpentError):
        service.diagnose(KILLED, now_us=DEMO_NOW_US)
    with pytest.raises(BudgetSpentError):
        service.operations(0, 2**62, DEMO_NOW_US)
