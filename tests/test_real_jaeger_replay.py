"""The replay Jaeger answers as the real one does: the same traces sent to the pinned Jaeger
(v2.12, in-memory storage) over OTLP/HTTP and loaded into the replay (flavor ``v2.18``, the
releases before v2.19), then every request opdiag makes asked of both. Compared: status,
Content-Type, error text, and the content (services, span names, trace ids and their order).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opdiag.devtools.replay_jaeger import ReplayJaeger
from opdiag.sources.jaeger_query import parse_version
from real_jaeger import RealJaeger, send_otlp_json

pytest_plugins = ("real_jaeger_fixtures",)
pytestmark = pytest.mark.xdist_group("real-jaeger-replay")

DATA = Path(__file__).parent / "data" / "jaeger_replay" / "ktrdr.otlp.jsonl"
API = "ktrdr-api"
WORKER = "ktrdr-backtest-worker-1a2b3c4d"
OP1 = "op_backtesting_20251124_160000_1a2b"
T0_US = 1_764_000_000 * 1_000_000
WINDOW = {
    "query.start_time_min": "2025-11-24T15:00:00Z",
    "query.start_time_max": "2025-11-24T17:00:00Z",
}
ATTRS = '{"operation.id":"x"}'
DEPTH9 = {"query.num_traces": "9"}
LEGACY_WINDOW = {"start": str(T0_US - 3_600_000_000), "end": str(T0_US + 3_600_000_000)}


class Pair:
    """The real Jaeger and the replay, asked the same things."""

    def __init__(self, real: str, replay: str) -> None:
        self.real = httpx.Client(base_url=real, timeout=10)
        self.replay = httpx.Client(base_url=replay, timeout=10)

    def ask(self, path: str, params: Any = None) -> tuple[httpx.Response, httpx.Response]:
        return self.real.get(path, params=params), self.replay.get(path, params=params)

    def close(self) -> None:
        self.real.close()
        self.replay.close()


@pytest.fixture(scope="module")
def empty_answers(jaeger_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """(real Jaeger, replay) both empty: what an empty store answers."""
    with (
        RealJaeger(tmp_path_factory.mktemp("jaeger-empty"), jaeger_binary) as real,
        ReplayJaeger([], flavor="v2.18") as replay,
    ):
        pair = Pair(real.query_url, replay.url)
        yield pair
        pair.close()


@pytest.fixture(scope="module")
def pair(jaeger_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Both holding tests/data/jaeger_replay/ktrdr.otlp.jsonl (one export request a line)."""
    lines = [line.encode() for line in DATA.read_text().splitlines() if line.strip()]
    with (
        RealJaeger(tmp_path_factory.mktemp("jaeger-replay"), jaeger_binary) as real,
        ReplayJaeger(DATA, flavor="v2.18") as replay,
    ):
        send_otlp_json(real.otlp_http_url, lines)
        both = Pair(real.query_url, replay.url)
        yield both
        both.close()


def media(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0]


def same_status(real: httpx.Response, replay: httpx.Response) -> None:
    assert (real.status_code, media(real)) == (replay.status_code, media(replay))
    if real.status_code >= 400:
        assert replay.headers.get("x-content-type-options") == "nosniff"
        assert real.json() == replay.json()  # the error envelope, word for word


def first_batch() -> dict[str, int]:
    """Trace id -> the export request (line) that first held it. Jaeger's storage keeps
    traces in the order they arrived, but the traces of one request in Go map order."""
    batches: dict[str, int] = {}
    for number, line in enumerate(DATA.read_text().splitlines()):
        for rs in json.loads(line)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    batches.setdefault(span["traceId"], number)
    return batches


BATCH = first_batch()


def same_traces(real: list[str], replay: list[str]) -> None:
    """The same traces, in the same order up to traces that arrived in one request."""
    assert sorted(real) == sorted(replay)
    assert [BATCH[t] for t in real] == [BATCH[t] for t in replay]


def v3_trace_ids(body: dict[str, Any]) -> list[str]:
    """Trace ids in answer order (first appearance)."""
    seen: list[str] = []
    for rs in body["result"]["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                if span["traceId"] not in seen:
                    seen.append(span["traceId"])
    return seen


def legacy_trace_ids(body: dict[str, Any]) -> list[str]:
    return [t["traceID"] for t in body["data"]]


# --------------------------------------------------------------------------- empty store


def test_an_empty_store(empty_answers: Pair):
    real, replay = empty_answers.ask("/api/v3/services")
    same_status(real, replay)
    assert real.json() == replay.json() == {}  # proto-JSON drops the empty list
    real, replay = empty_answers.ask("/api/services")
    same_status(real, replay)
    assert real.json()["data"] is None and replay.json()["data"] is None
    real, replay = empty_answers.ask("/api/v3/traces", {"query.num_traces": "5", **WINDOW})
    same_status(real, replay)  # 404 "No traces found"
    real, replay = empty_answers.ask("/api/traces", {"service": API, **LEGACY_WINDOW})
    same_status(real, replay)
    assert real.json()["data"] == replay.json()["data"] == []


# --------------------------------------------------------------------------- lists


def test_services_and_span_names(pair: Pair):
    real, replay = pair.ask("/api/v3/services")
    same_status(real, replay)
    assert sorted(real.json()["services"]) == replay.json()["services"]
    real, replay = pair.ask("/api/services")
    same_status(real, replay)
    assert sorted(real.json()["data"]) == replay.json()["data"]
    for service in (API, WORKER, "nobody"):
        real, replay = pair.ask("/api/v3/operations", {"service": service})
        same_status(real, replay)
        key = lambda op: (op["name"], op["spanKind"])  # noqa: E731
        assert sorted(real.json()["operations"], key=key) == replay.json()["operations"]
        real, replay = pair.ask(f"/api/services/{service}/operations")
        same_status(real, replay)
        assert sorted(real.json()["data"] or []) == (replay.json()["data"] or [])
        assert (real.json()["data"] is None) == (replay.json()["data"] is None)
        real, replay = pair.ask("/api/operations", {"service": service})
        same_status(real, replay)
        assert sorted(real.json()["data"], key=key) == replay.json()["data"]
    same_status(*pair.ask("/api/operations"))  # 400: service is required


def test_the_index_page_names_the_release(pair: Pair):
    real, replay = pair.ask("/")
    same_status(real, replay)
    assert parse_version(real.text) == (2, 12, 0)
    assert parse_version(replay.text) == (2, 18, 0)


# --------------------------------------------------------------------------- api_v3 search


@pytest.mark.parametrize(
    "params",
    [
        {"query.service_name": WORKER, "query.num_traces": "20"},
        {"query.service_name": API, "query.num_traces": "20"},
        {"query.num_traces": "20"},  # no service: every service
        {"query.service_name": WORKER, "query.num_traces": "2"},  # the last received first
        {"query.service_name": API, "query.operation_name": "workers.select", **DEPTH9},
        # ≤ v2.18 ignore attributes: every worker trace, not only the one holding the tag
        {"query.service_name": WORKER, "query.attributes": ATTRS, **DEPTH9},
        # camelCase names are not read: no depth at all, a 500 from the storage
        {"query.serviceName": WORKER, "query.searchDepth": "20"},
        {"query.service_name": WORKER, "query.num_traces": "0"},
        {"query.service_name": "nobody", "query.num_traces": "20"},
    ],
)
def test_v3_search(pair: Pair, params: dict[str, str]):
    real, replay = pair.ask("/api/v3/traces", {**params, **WINDOW})
    same_status(real, replay)
    if real.status_code == 200:
        same_traces(v3_trace_ids(real.json()), v3_trace_ids(replay.json()))


def test_v3_search_errors(pair: Pair):
    same_status(*pair.ask("/api/v3/traces"))  # 400, both time bounds are required
    bad = {**WINDOW, "query.start_time_min": "yesterday", "query.num_traces": "5"}
    same_status(*pair.ask("/api/v3/traces", bad))
    same_status(*pair.ask("/api/v3/traces", {**WINDOW, "query.num_traces": "many"}))


def test_both_window_bounds_are_inclusive(pair: Pair):
    """The api's training.start span of trace c3… starts at T0 + 600 s exactly."""
    exact = "2025-11-24T16:10:00Z"
    for params in (
        {"query.start_time_min": exact, "query.start_time_max": "2025-11-24T17:00:00Z"},
        {"query.start_time_min": "2025-11-24T15:00:00Z", "query.start_time_max": exact},
    ):
        query = {
            "query.service_name": API,
            "query.operation_name": "training.start",
            "query.num_traces": "5",
        }
        real, replay = pair.ask("/api/v3/traces", {**query, **params})
        same_status(real, replay)
        assert v3_trace_ids(real.json()) == v3_trace_ids(replay.json()) == ["c3" * 16]


def test_v3_trace_by_id(pair: Pair):
    real, replay = pair.ask("/api/v3/traces/" + "b2" * 16)
    same_status(real, replay)
    assert v3_trace_ids(real.json()) == v3_trace_ids(replay.json()) == ["b2" * 16]
    same_status(*pair.ask("/api/v3/traces/" + "ff" * 16))  # 404 No traces found
    same_status(*pair.ask("/api/v3/traces/b2b2"))  # 16-hex padding: not the 128-bit trace
    same_status(*pair.ask("/api/v3/traces/not-hex"))  # 400


# --------------------------------------------------------------------------- legacy search


@pytest.mark.parametrize(
    "params",
    [
        {"service": WORKER},
        {"service": WORKER, "limit": "2"},
        {"service": API, "operation": "workers.select"},
        {"service": WORKER, "tag": f"operation.id:{OP1}"},
        {"service": API, "tag": f"operation.id:{OP1}"},  # the api's spans do not carry it
        {"service": WORKER, "tag": "operation.id:op_regex.1"},
        {"service": WORKER, "limit": "0"},  # 500 from the storage
        {"service": "nobody"},
    ],
)
def test_legacy_search(pair: Pair, params: dict[str, str]):
    real, replay = pair.ask("/api/traces", {**params, **LEGACY_WINDOW})
    same_status(real, replay)
    if real.status_code == 200:
        same_traces(legacy_trace_ids(real.json()), legacy_trace_ids(replay.json()))


def test_legacy_errors_and_trace_by_id(pair: Pair):
    same_status(*pair.ask("/api/traces", LEGACY_WINDOW))  # 400 service is required
    same_status(*pair.ask("/api/traces", {"service": API, "tag": "no-colon", **LEGACY_WINDOW}))
    real, replay = pair.ask("/api/traces/" + "c3" * 16)
    same_status(real, replay)
    assert legacy_trace_ids(real.json()) == legacy_trace_ids(replay.json()) == ["c3" * 16]
    same_status(*pair.ask("/api/traces/" + "ff" * 16))  # 404 trace not found
    same_status(*pair.ask("/api/traces/zz"))  # 400
