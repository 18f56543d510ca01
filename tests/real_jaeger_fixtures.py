"""pytest fixtures around ``real_jaeger`` (a plugin module: ``pytest_plugins =
("real_jaeger_fixtures",)``). A module using the session's ``ktrdr_jaeger`` keeps its tests
in one xdist group, so one worker runs them and that Jaeger is started once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from real_jaeger import REAL_RUN1, RealJaeger, require_jaeger, send_otlp_files


@pytest.fixture(scope="session")
def jaeger_binary() -> Path:
    return require_jaeger()


@pytest.fixture(scope="session")
def ktrdr_jaeger(
    jaeger_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealJaeger]:
    """A real Jaeger holding the real KTRDR corpus (run1), sent over OTLP/HTTP as recorded."""
    with RealJaeger(tmp_path_factory.mktemp("jaeger-ktrdr"), jaeger_binary) as jaeger:
        files = sorted((REAL_RUN1 / "traces").glob("*.json"))
        assert send_otlp_files(jaeger.otlp_http_url, files) == len(files) > 1000
        yield jaeger


@pytest.fixture
def empty_jaeger(jaeger_binary: Path, tmp_path: Path) -> Iterator[RealJaeger]:
    """A real Jaeger of this test's own, empty."""
    with RealJaeger(tmp_path, jaeger_binary) as jaeger:
        yield jaeger
