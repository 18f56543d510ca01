"""The bench's generated files are the shapes they claim to be: a figure measured on a file
that opdiag reads as something else (every row a 10-hour "slow" run) measures the wrong
path."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import orjson
import pytest
from conftest import REPO_ROOT
from opdiag.cli.main import main


def _gen_traces() -> ModuleType:
    """``bench.gen_traces`` (bench/ is not a package on the test path)."""
    spec = importlib.util.spec_from_file_location(
        "gen_traces", REPO_ROOT / "bench" / "gen_traces.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_listing_file_is_of_finished_runs_of_ordinary_length(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "many.json"
    path.write_bytes(orjson.dumps(_gen_traces().many_operations(120)))
    assert main(["operations", "--traces", str(path), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 120
    assert {r["verdict"] for r in rows} == {"healthy"}
    assert {r["status"] for r in rows} == {"completed"}
    # each run lasts from its id's time to its transition: 5 s to about a minute
    assert all(5_000 <= r["duration_ms"] <= 65_000 for r in rows)
