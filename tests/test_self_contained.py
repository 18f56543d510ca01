"""The suite stands on its own: no test reads a file beside the repository (the reference
data a checkout may sit next to); what a test needs is copied into ``tests/data``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REFERENCE, REPO_ROOT, TEST_DATA, outside_repository


def test_opening_a_file_beside_the_repository_is_refused(tmp_path):
    beside = REPO_ROOT.parent / "beside-the-repository" / "SPEC.md"
    with pytest.raises(PermissionError, match="outside the repository"):
        beside.open()
    assert outside_repository(str(REPO_ROOT.parent / "other-checkout" / "x.json"))
    assert not outside_repository(str(REPO_ROOT / "tests" / "data" / "x.json"))
    assert not outside_repository(str(tmp_path / "x.json"))


def test_no_test_names_a_path_beside_the_repository():
    beside = "sha" + "red"  # (spelled apart: this file names no such path itself)
    pattern = re.compile(rf"\.\./{beside}|parents\[2\]|parent\.parent / \"{beside}|\"{beside}/")
    offenders = [
        f"{path.name}:{n}"
        for path in sorted(Path(REPO_ROOT / "tests").glob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "folder",
    ["jaeger", "grafana/foundation-sdk-jsonschema", "grafana/simpod-json-datasource", "ktrdr"],
)
def test_every_reference_set_says_where_it_came_from(folder):
    readme = (REFERENCE / "README.md").read_text(encoding="utf-8")
    assert f"`{folder.split('/')[-1]}/`" in readme or f"`{folder}/`" in readme
    assert any((REFERENCE / folder).iterdir())


def test_licences_travel_with_the_reference_data():
    for folder in ("grafana/foundation-sdk-jsonschema", "grafana/simpod-json-datasource"):
        assert (REFERENCE / folder / "LICENSE").is_file()
    assert "Apache" in (REFERENCE / "jaeger" / "README.txt").read_text(encoding="utf-8")
    assert (TEST_DATA / "real-ktrdr" / "README.md").is_file()
