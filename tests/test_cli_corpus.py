"""The recorded demo corpus through the CLI: every operation gets a correct diagnosis.

``demo/traces/expected.yaml`` says, for each operation id (or the trace id of a request that
never became one), what a correct diagnosis at the recorded ``now`` says, with the keys of the
real corpus' ``cases.yaml``: the verdict (or one of ``also_acceptable``) and type, the root-cause
span (service fnmatch pattern and name), words the summary must contain, the bottleneck (a span,
or the uninstrumented time after one). Both ways in must agree on the verdict: the listing
(``opdiag operations``) and the one-by-one answer (``opdiag diagnose``).
"""

from __future__ import annotations

import contextlib
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from opdiag.cli.main import main
from opdiag.devtools.score_cases import check_case

CORPUS = Path(__file__).resolve().parents[1] / "demo" / "traces"
EXPECTED = CORPUS / "expected.yaml"


def _expected() -> dict[str, Any]:
    if not EXPECTED.is_file():
        return {}
    return yaml.safe_load(EXPECTED.read_text(encoding="utf-8")) or {}


def _now(data: dict[str, Any]) -> str:
    raw = data.get("now")
    return raw.isoformat() if isinstance(raw, datetime) else str(raw)


EXPECTED_DATA = _expected()
OPERATIONS: dict[str, dict[str, Any]] = EXPECTED_DATA.get("operations") or {}
needs_corpus = pytest.mark.skipif(
    not OPERATIONS, reason=f"demo corpus not recorded yet: {EXPECTED} is absent or empty"
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("JAEGER_URL", "OPDIAG_JAEGER_URL", "OPDIAG_TRACES", "OPDIAG_CONFIG"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def listed() -> dict[str, dict[str, Any]]:
    if not OPERATIONS:
        pytest.skip(f"demo corpus not recorded yet: {EXPECTED} is absent or empty")
    # capsys is function-scoped; the listing is computed once per module.
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["operations", "--traces", str(CORPUS), "--now", _now(EXPECTED_DATA),
                     "--format", "json"])
    assert code == 0, err.getvalue()
    return {row["operation_id"]: row for row in json.loads(out.getvalue())}


def _verdicts(want: dict[str, Any]) -> list[str]:
    return [want["verdict"], *(want.get("also_acceptable") or [])]


@pytest.fixture(scope="module")
def diagnoses() -> dict[str, dict[str, Any]]:
    """``opdiag diagnose --format json`` of every expected operation, once per module."""
    out: dict[str, dict[str, Any]] = {}
    for ident in OPERATIONS:
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(["diagnose", ident, "--traces", str(CORPUS), "--now",
                         _now(EXPECTED_DATA), "--format", "json"])
        assert code == 0, stderr.getvalue()
        out[ident] = json.loads(stdout.getvalue())
    return out


@needs_corpus
@pytest.mark.parametrize("ident", sorted(OPERATIONS))
def test_operations_lists_each_expected_verdict(listed, ident):
    want = OPERATIONS[ident]
    assert ident in listed, f"{ident} missing from `opdiag operations`"
    assert listed[ident]["verdict"] in _verdicts(want), (want["scenario"], listed[ident])
    if want.get("operation_type"):
        assert listed[ident]["operation_type"] == want["operation_type"]


@needs_corpus
@pytest.mark.parametrize("ident", sorted(OPERATIONS))
def test_diagnose_is_right_key_by_key(diagnoses, ident):
    """Verdict, root cause, the facts the summary names and the bottleneck, checked as the
    real corpus' cases are (``score_cases.check_case``)."""
    want, data = OPERATIONS[ident], diagnoses[ident]
    checks = check_case(data, want)
    assert all(checks.values()), (want["scenario"], checks, data["verdict"], data["summary"])
    assert ident in (data["operation_id"], *data["trace_ids"])


def test_corpus_expectations_are_well_formed():
    if not EXPECTED.is_file():
        pytest.skip(f"demo corpus not recorded yet: {EXPECTED} is absent")
    assert EXPECTED_DATA.get("now"), "expected.yaml needs `now`"
    for ident, want in OPERATIONS.items():
        assert isinstance(want, dict) and want.get("verdict"), ident
        assert isinstance(want.get("mentions"), list), ident
        bottleneck = want.get("bottleneck")
        assert bottleneck is None or set(bottleneck) in ({"span"}, {"gap_after"}), ident
