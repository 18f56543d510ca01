"""A Jaeger that misbehaves without failing: it trickles its answer a byte at a time, or sends
an answer far too large. Every call ends by its overall deadline (504) and no answer is read
past the size cap (502 naming it), through the client, the REST API and the page; meanwhile
``/healthz`` keeps answering although every worker of the server waits on Jaeger."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from opdiag.api.app import create_app
from opdiag.api.server import ServerThread, build_server
from opdiag.devtools.replay_jaeger import Fault, ReplayJaeger
from opdiag.errors import SourceTimeoutError, SourceUnavailableError
from opdiag.settings import JaegerSettings, Settings
from opdiag.sources.jaeger import JaegerSource
from opdiag.sources.jaeger_http import JaegerHttp

DATA = Path(__file__).parent / "data" / "jaeger_replay"
T0 = 1_764_000_000
OP1 = "op_backtesting_20251124_160000_1a2b"
MB = 1024 * 1024


@pytest.fixture
def replay() -> Iterator[ReplayJaeger]:
    with ReplayJaeger(DATA) as server:
        yield server


def source(server: ReplayJaeger, **overrides: object) -> JaegerSource:
    settings = JaegerSettings(url=server.url, backoff_s=0.0, **overrides)  # type: ignore[arg-type]
    return JaegerSource(settings, clock=lambda: T0 + 3600)


def test_a_trickled_answer_ends_at_the_deadline(replay: ReplayJaeger):
    # 0.2 s a byte: the first answer alone would take minutes, each byte well within the
    # read timeout.
    replay.set_faults([Fault("trickle", seconds=0.2)])
    with (
        source(replay, deadline_s=1.5, timeout_s=5.0) as src,
        pytest.raises(SourceTimeoutError) as info,
    ):
        src.traces_for(OP1)
    assert "within 1.5s (jaeger.deadline_s)" in info.value.message
    assert info.value.http_status == 504


def test_retries_and_backoff_stay_within_the_deadline(replay: ReplayJaeger):
    """A failing Jaeger is retried only while the deadline leaves room for the pause."""
    replay.set_faults([Fault("http500")])
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    settings = JaegerSettings(url=replay.url, retries=9, backoff_s=2.0, deadline_s=15.0)
    http = JaegerHttp(settings, sleep=sleep, monotonic=lambda: clock[0])
    try:
        with pytest.raises(SourceUnavailableError, match=r"HTTP 500 .* after 4 attempt"):
            http.get("/api/v3/services", label="/api/v3/services")
    finally:
        http.close()
    # 2, 4, then the 5 s cap; another 5 s would end past the deadline: 4 of 10 attempts
    assert slept == [2.0, 4.0, 5.0]


def test_an_answer_over_the_cap_is_refused_while_it_streams(replay: ReplayJaeger):
    replay.set_faults([Fault("huge", size=8 * MB)])
    with (
        source(replay, max_answer_bytes=MB) as src,
        pytest.raises(SourceUnavailableError) as info,
    ):
        src.traces_for(OP1)
    assert f"larger than {MB} bytes (jaeger.max_answer_bytes)" in info.value.message
    assert info.value.http_status == 502


def test_a_declared_length_over_the_cap_is_refused_before_reading():
    read: list[int] = []

    def body() -> Iterator[bytes]:
        read.append(1)
        yield b"{}"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(10 * MB)}, content=body())

    settings = JaegerSettings(url="http://jaeger:16686", max_answer_bytes=MB)
    http = JaegerHttp(settings, transport=httpx.MockTransport(handler))
    try:
        with pytest.raises(SourceUnavailableError, match="max_answer_bytes"):
            http.get("/api/v3/services", label="/api/v3/services")
    finally:
        http.close()
    assert read == []  # not a byte of the body was read


def test_an_answer_under_the_cap_is_read_whole(replay: ReplayJaeger):
    with source(replay, max_answer_bytes=MB, deadline_s=10.0) as src:
        assert [t.trace_id for t in src.traces_for(OP1)]


@pytest.mark.parametrize(
    ("fault", "status", "words"),
    [
        (Fault("trickle", seconds=0.2), 504, "jaeger.deadline_s"),
        (Fault("huge", size=4 * MB), 502, "jaeger.max_answer_bytes"),
    ],
)
def test_the_api_and_the_page_answer_504_and_502(
    replay: ReplayJaeger, fault: Fault, status: int, words: str
):
    replay.set_faults([fault])
    settings = Settings.model_validate(
        {"jaeger": {"url": replay.url, "deadline_s": 1.0, "max_answer_bytes": MB,
                    "backoff_s": 0.0}}
    )
    app = create_app(settings)
    with app.test_client() as client:
        api = client.get(f"/api/v1/operations/{OP1}")
        assert api.status_code == status
        assert words in api.get_json()["error"]
        page = client.get(f"/operations/{OP1}")
        assert page.status_code == status
        assert words in page.get_data(as_text=True)


def test_healthz_answers_while_every_worker_waits_on_jaeger(replay: ReplayJaeger):
    """Two workers, three lookups held by a trickling Jaeger (one in each worker, one
    queued): the probe answers while they are all still waiting — it never queued."""
    replay.set_faults([Fault("trickle", seconds=1.0)])
    settings = Settings.model_validate(
        {
            "jaeger": {"url": replay.url, "deadline_s": 3.0, "backoff_s": 0.0},
            "server": {"port": 0, "threads": 2},
        }
    )
    server, state = build_server(settings)
    running = ServerThread(server).start()

    def lookup(n: int) -> int:
        with httpx.Client(timeout=60) as client:
            return client.get(f"{running.url}/api/v1/operations/op_{n}").status_code

    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            lookups = [pool.submit(lookup, n) for n in range(3)]
            while not replay.calls:  # a lookup is inside a Jaeger call
                threading.Event().wait(0.02)
            probe = httpx.get(f"{running.url}/healthz", timeout=30)
            assert probe.status_code == 200 and probe.json() == {"status": "ok"}
            assert not any(f.done() for f in lookups)  # it did not wait for them
            assert [f.result() for f in lookups] == [504, 504, 504]
    finally:
        running.stop()
        close = getattr(state.source, "close", None)
        if callable(close):
            close()


# Found by fuzzing the assistant tools over a Jaeger source: both were "internal error".
def test_an_id_no_url_holds_is_bad_input_not_an_internal_error(replay: ReplayJaeger):
    from opdiag.errors import InputError

    with source(replay) as src, pytest.raises(InputError) as info:
        src.traces_for("op_" + "a" * 70_000)
    assert "cannot ask Jaeger" in info.value.message and "too long" in info.value.message
    assert info.value.exit_code == 2


def test_a_search_ending_past_year_9999_is_asked_up_to_its_last_moment(replay: ReplayJaeger):
    end_of_time = 253_402_300_799  # 9999-12-31T23:59:59Z: a look-ahead from it overflows
    settings = JaegerSettings(url=replay.url, backoff_s=0.0)
    with JaegerSource(settings, clock=lambda: end_of_time) as src:
        assert src.traces_for("op_without_a_date") == []  # nothing then, and no crash


def test_not_found_at_the_end_of_year_9999_is_not_found(replay: ReplayJaeger, capsys):
    """The not-found message names the window it searched, which ends past year 9999."""
    from opdiag.cli.main import main

    end_of_9999 = "9999-12-31T23:59:59Z"
    code = main(["diagnose", "op_nope", "--jaeger-url", replay.url, "--now", end_of_9999])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "between 9999-12-31T17:59:59Z and 9999-12-31T23:59:59Z" in err


def test_format_rfc3339_shows_times_past_its_years_at_their_bound():
    from opdiag.timeutil import format_rfc3339

    assert format_rfc3339(253_402_300_799_000_000 + 10**12) == "9999-12-31T23:59:59Z"
    assert format_rfc3339(1_764_000_000_000_000) == "2025-11-24T16:00:00Z"
