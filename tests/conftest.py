"""Shared test fixtures: where the reference data and the demo corpus live.

The suite must run from a clone that has nothing beside it: an audit hook refuses any file
opened in the repository's parent directory but outside the repository (a sibling folder such as
the shared notes), so a test that still reads one fails at once, naming the path.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_support import PostgresServer, postgres_server

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = REPO_ROOT / "tests" / "data"
REFERENCE = TEST_DATA / "reference"
REAL_KTRDR = TEST_DATA / "real-ktrdr"
JAEGER_FIXTURES = REFERENCE / "jaeger"
GRAFANA_REFERENCE = REFERENCE / "grafana"
KTRDR_REFERENCE = REFERENCE / "ktrdr"
DEMO_TRACES = REPO_ROOT / "demo" / "traces"

_INSIDE = str(REPO_ROOT) + os.sep
_BESIDE = str(REPO_ROOT.parent) + os.sep


def outside_repository(path: str | bytes) -> bool:
    """Is ``path`` beside the repository (in its parent directory, not inside it)?"""
    full = os.path.abspath(os.fsdecode(path))
    return full.startswith(_BESIDE) and not (full + os.sep).startswith(_INSIDE)


def _refuse_reads_beside_the_repository(event: str, args: tuple[object, ...]) -> None:
    path = args[0] if event == "open" and args else None
    if isinstance(path, str | bytes) and outside_repository(path):
        raise PermissionError(f"tests must not read outside the repository: {path!r}")


sys.addaudithook(_refuse_reads_beside_the_repository)

# Compiled rule packs (opdiag.diagnosis.pack_cache) go to a directory of this run, not to the
# user's cache; CLI subprocesses inherit it (and one started with a cleaned environment falls
# back to $XDG_CACHE_HOME, a scratch folder of this run too).
_PACK_CACHE = tempfile.mkdtemp(prefix="opdiag-test-cache-")
os.environ.setdefault("OPDIAG_CACHE_DIR", _PACK_CACHE)
os.environ["XDG_CACHE_HOME"] = _PACK_CACHE
atexit.register(shutil.rmtree, _PACK_CACHE, ignore_errors=True)
# A server started by a test (in-process or as a child) keeps its verdicts in memory unless
# the test names a store: never in the state directory of whoever runs the suite.
os.environ.setdefault("OPDIAG_STORE_PATH", ":memory:")
# A child started with a cleaned environment (no OPDIAG_*) falls back to the default store
# under $XDG_STATE_HOME: point that at a scratch folder of this run, never the user's.
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="opdiag-test-state-")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE.is_dir():
        pytest.fail(f"reference data not found at {REFERENCE}")
    return REFERENCE


@pytest.fixture(scope="session")
def jaeger_fixtures(reference_dir: Path) -> Path:
    return reference_dir / "jaeger"


@pytest.fixture(scope="session")
def demo_traces() -> Path:
    return DEMO_TRACES


@pytest.fixture
def no_source_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No trace source or configuration from the environment: the test names its own."""
    for var in ("JAEGER_URL", "OPDIAG_JAEGER_URL", "OPDIAG_TRACES", "OPDIAG_CONFIG"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server (started on first use, stopped at the end of the session);
    tests take a fresh database from it with ``create_database()``."""
    server = postgres_server()
    try:
        yield server
    finally:
        server.stop()
