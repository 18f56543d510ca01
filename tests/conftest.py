"""Shared test fixtures: where the reference data and the demo corpus live."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
REFERENCE = SHARED / "reference"
JAEGER_FIXTURES = REFERENCE / "jaeger"
GRAFANA_REFERENCE = REFERENCE / "grafana"
KTRDR_REFERENCE = REFERENCE / "ktrdr"
DEMO_TRACES = REPO_ROOT / "demo" / "traces"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE.is_dir():
        pytest.fail(f"reference data not found at {REFERENCE} (shared/ must sit beside the repo)")
    return REFERENCE


@pytest.fixture(scope="session")
def jaeger_fixtures(reference_dir: Path) -> Path:
    return reference_dir / "jaeger"


@pytest.fixture(scope="session")
def demo_traces() -> Path:
    return DEMO_TRACES
