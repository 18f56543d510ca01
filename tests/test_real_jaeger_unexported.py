"""An operation no span names yet is found through a real Jaeger as through the files.

A training worker exports every 5 s; SIGKILLed 2 s after it took run1's training 154749, it
exported nothing, and only the backend's answers to the CLI's reads of the operation
(``GET /api/v1/operations/{id}``, ``http.target`` of its server spans) name it. A tag search for
``operation.id`` finds nothing there: the Jaeger source then searches for those answers by their
exact path, through api_v3 and through the legacy API alike. So it does when only the orphan
detector's one-span record names the operation (the backend that ran a data load was killed 3 s
in, before its first export).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import real_variants as rv
from opdiag.cli.main import main as opdiag_main
from real_jaeger import REAL_RUN1, RealJaeger, send_otlp_json

pytest_plugins = ("real_jaeger_fixtures",)
pytestmark = pytest.mark.xdist_group("real-jaeger-unexported")

WORKER = "ktrdr-training-worker-d97729bc"
IDENT = "op_training_20261204_154749_b37ed832"
NOW = "2026-12-04T15:50:00Z"


def _variant() -> rv.Recording:
    """run1 up to 15:50 with the worker dead before its first export (as
    ``test_real_ktrdr_scenarios`` builds it)."""
    changed = rv.died_before_export(rv.load(REAL_RUN1 / "traces"), WORKER,
                                    rv.ns("2026-12-04T15:47:49Z"))
    changed = rv.killed_before_export(
        changed, WORKER, rv.ns("2026-12-04T15:47:51Z"), 5005, rv.ns("2026-12-04T17:00:00Z")
    )
    upto = rv.ns(NOW)
    return [(name, doc) for name, doc in changed if rv.file_clock(name) <= upto]


@contextmanager
def _in_jaeger(
    recording: rv.Recording, name: str, binary: Path, factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, RealJaeger]]:
    """(the recording's files, a real Jaeger holding the same export requests)."""
    files = rv.write(recording, factory.mktemp(name) / "traces")
    with RealJaeger(factory.mktemp(f"jaeger-{name}"), binary) as jaeger:
        bodies = [json.dumps(doc).encode() for _, doc in recording]
        assert send_otlp_json(jaeger.otlp_http_url, bodies) == len(bodies)
        yield files, jaeger


@pytest.fixture(params=["v3", "legacy"])
def api(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Force one of Jaeger's APIs; no other source from the environment."""
    for var in ("JAEGER_URL", "OPDIAG_JAEGER_URL", "OPDIAG_TRACES", "OPDIAG_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPDIAG_JAEGER_API", request.param)
    return request.param


@pytest.fixture(scope="module")
def unexported(jaeger_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    with _in_jaeger(_variant(), "unexported", jaeger_binary, tmp_path_factory) as pair:
        yield pair


def _diagnose(capsys: pytest.CaptureFixture[str], *source: str) -> dict[str, Any]:
    code = opdiag_main(["diagnose", IDENT, *source, "--now", NOW, "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_a_training_no_span_names_is_found_through_jaeger(
    unexported: tuple[Path, RealJaeger], api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    files, jaeger = unexported
    expected = _diagnose(capsys, "--traces", str(files))
    assert expected["verdict"] == "worker_lost", expected["summary"]
    got = _diagnose(capsys, "--jaeger-url", jaeger.query_url)
    assert got["verdict"] == "worker_lost", got["summary"]
    assert WORKER in got["summary"] and "127.0.0.1:5005" in got["summary"]
    assert sorted(got["trace_ids"]) == sorted(expected["trace_ids"])
    assert (got["summary"], got["status"]) == (expected["summary"], expected["status"])


LOAD = "op_data_load_20261204_154455_734c9af6"


@pytest.fixture(scope="module")
def backend_lost(jaeger_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """run1 with the backend SIGKILLed 3 s into case 4's data load and back 7 s later."""
    recording = rv.backend_killed_during_data_load(
        rv.load(REAL_RUN1 / "traces"), LOAD, rv.ns("2026-12-04T15:44:58Z"),
        rv.ns("2026-12-04T15:45:05Z"),
    )
    with _in_jaeger(recording, "backend-lost", jaeger_binary, tmp_path_factory) as pair:
        yield pair


def test_a_load_only_the_orphan_detector_names_is_found_through_jaeger(
    backend_lost: tuple[Path, RealJaeger], api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    files, jaeger = backend_lost
    argv = ["diagnose", LOAD, "--now", "2026-12-04T16:10:00Z", "--format", "json"]
    assert opdiag_main([*argv, "--traces", str(files)]) == 0
    expected = json.loads(capsys.readouterr().out)
    assert "the backend stopped while it ran this data load" in expected["summary"]
    assert opdiag_main([*argv, "--jaeger-url", jaeger.query_url]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["verdict"], got["summary"]) == (expected["verdict"], expected["summary"])
    assert sorted(got["trace_ids"]) == sorted(expected["trace_ids"])
