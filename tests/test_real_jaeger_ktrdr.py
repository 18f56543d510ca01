"""The real KTRDR corpus through a real Jaeger gives the answers the files give.

Every export request of ``tests/data/real-ktrdr/run1/traces`` (OTLP-JSON, original times) goes
to the pinned Jaeger over OTLP/HTTP; then ``opdiag diagnose ID --jaeger-url … --now T`` and
``opdiag operations --jaeger-url …`` must say, for every whole-corpus case of ``cases.yaml``,
what the file source (``--traces``) says: verdict, summary, root cause, bottleneck, findings
and the operation's traces — through api_v3 and through the legacy API, each forced in turn.
The reference is the file source's answer, not ``cases.yaml``'s (the engine's correctness is
tested elsewhere): this is about reading Jaeger.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from opdiag.cli.main import main as opdiag_main
from opdiag.render.json_render import render_json
from opdiag.service import DiagnosisService
from opdiag.settings import load_settings
from opdiag.sources.base import SpanQuery
from opdiag.sources.files import FileSource
from opdiag.sources.jaeger import JaegerSource
from opdiag.timeutil import parse_now
from real_jaeger import REAL_RUN1, RealJaeger

pytest_plugins = ("real_jaeger_fixtures",)
pytestmark = pytest.mark.xdist_group("real-jaeger-ktrdr")

CASES = [c for c in yaml.safe_load((REAL_RUN1 / "cases.yaml").read_text()) if c["upto"] is None]
NOW = CASES[0]["now"]
# The recording ran from 15:41 to 16:08 UTC.
FROM, TO = "2026-12-04T15:30:00Z", "2026-12-04T16:20:00Z"
APIS = ("v3", "legacy")
COMPARED = (
    "operation_id",
    "verdict",
    "summary",
    "operation_type",
    "status",
    "services",
    "started_at_ms",
    "ended_at_ms",
    "duration_ms",
    "finished",
    "root_cause",
    "bottleneck",
    "baseline_ms",
    "key",
)


def essentials(diagnosis: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on where the traces came from."""
    out = {key: diagnosis[key] for key in COMPARED}
    out["trace_ids"] = sorted(diagnosis["trace_ids"])
    out["findings"] = sorted((f["rule_id"], f["summary"]) for f in diagnosis["findings"])
    return out


@pytest.fixture(scope="module")
def from_files() -> dict[str, dict[str, Any]]:
    """The file source's diagnosis of every case (what ``opdiag diagnose --traces`` prints)."""
    settings = load_settings(environ={}, overrides={"trace_paths": [str(REAL_RUN1 / "traces")]})
    service = DiagnosisService(FileSource(list(settings.trace_paths)), settings)
    return {
        c["id"]: json.loads(render_json(service.diagnose(c["id"], now_us=parse_now(c["now"]))))
        for c in CASES
    }


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code = opdiag_main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(params=APIS)
def api(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Force one of Jaeger's APIs (settings ``jaeger.api``) for the CLI runs."""
    monkeypatch.setenv("OPDIAG_JAEGER_API", request.param)
    for var in ("JAEGER_URL", "OPDIAG_JAEGER_URL", "OPDIAG_TRACES", "OPDIAG_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    return request.param


def test_the_corpus_reached_jaeger(ktrdr_jaeger: RealJaeger, from_files: dict[str, Any]):
    assert len(from_files) == len(CASES) == 22


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_diagnose_through_jaeger_matches_the_files(
    ktrdr_jaeger: RealJaeger,
    from_files: dict[str, dict[str, Any]],
    api: str,
    case: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
):
    got = run_cli(
        capsys,
        "diagnose", case["id"],
        "--jaeger-url", ktrdr_jaeger.query_url,
        "--now", case["now"],
        "--format", "json",
    )  # fmt: skip
    assert essentials(got) == essentials(from_files[case["id"]])


def test_operations_through_jaeger_match_the_files(
    ktrdr_jaeger: RealJaeger, api: str, capsys: pytest.CaptureFixture[str]
):
    files = run_cli(
        capsys, "operations", "--traces", str(REAL_RUN1 / "traces"), "--now", NOW,
        "--format", "json",
    )  # fmt: skip
    jaeger = run_cli(
        capsys, "operations", "--jaeger-url", ktrdr_jaeger.query_url, "--now", NOW,
        "--from", FROM, "--to", TO, "--format", "json",
    )  # fmt: skip
    by_id = {row["operation_id"]: row for row in jaeger}
    assert {c["id"] for c in CASES} <= set(by_id)
    assert jaeger == files  # every row, every column, in the same order


def jaeger_source(jaeger: RealJaeger) -> JaegerSource:
    """A source as the CLI builds it (settings from the environment: the forced API)."""
    return JaegerSource(load_settings(overrides={"jaeger": {"url": jaeger.query_url}}).jaeger)


def test_the_api_was_forced(ktrdr_jaeger: RealJaeger, api: str):
    with jaeger_source(ktrdr_jaeger) as source:
        source.check()
        assert source.api == api
        label = "api_v3, v2.12.0" if api == "v3" else "legacy /api"  # v3 reads the version
        assert source.describe() == f"jaeger {ktrdr_jaeger.query_url} ({label})"


def test_neighbour_evidence_is_found_by_span_name(ktrdr_jaeger: RealJaeger, api: str):
    """The IB host's one-span ``ib.connect`` traces and the backend's health checks
    (``GET`` client spans) in a window, by per-(service, span name) searches, as the file
    source finds them."""
    window = (parse_now("2026-12-04T15:44:00Z"), parse_now("2026-12-04T15:50:00Z"))
    queries = [
        SpanQuery("ktrdr-ib-host-service", "ib.connect"),
        SpanQuery("ktrdr-api", "GET"),
        SpanQuery("ktrdr-api", "operation.state_transition"),
    ]
    files = FileSource([REAL_RUN1 / "traces"])
    expected = files.neighbour_traces(*window, queries, limit=1000)
    with jaeger_source(ktrdr_jaeger) as source:
        got = source.neighbour_traces(*window, queries, limit=1000)
    kinds = {q.span: 0 for q in queries}
    for trace in expected:
        for q in queries:
            kinds[q.span] += any(q.matches(s.service, s.name) for s in trace.spans)
    assert kinds["ib.connect"] > 0 and kinds["GET"] > 0  # both kinds of evidence are there
    assert sorted(t.trace_id for t in got) == sorted(t.trace_id for t in expected)
    assert {t.trace_id: len(t.spans) for t in got} == {t.trace_id: len(t.spans) for t in expected}


def test_opdiag_leaves_the_stored_traces_as_they_were_sent(ktrdr_jaeger: RealJaeger):
    """Last in this module, after every lookup above: Jaeger v2.12's query service applies its
    adjusters (sorting attributes among them) to the in-memory storage's own trace objects,
    and concurrent searches of one trace garbled it for good (a resource's ``service.name``
    read ``python``). opdiag asks for raw traces, so the stored resource attributes are still
    in the order the SDK sent them, not sorted."""
    import httpx

    trace_id = "e20c8e17ea68619372c24a249a77ec8a"  # the 4-minute training, looked up above
    for path in sorted((REAL_RUN1 / "traces").glob("*.json")):
        sent = json.loads(path.read_text())["resourceSpans"][0]
        if sent["scopeSpans"][0]["spans"][0]["traceId"] == trace_id:
            break
    keys = [a["key"] for a in sent["resource"]["attributes"]]
    assert keys != sorted(keys)
    stored = httpx.get(
        f"{ktrdr_jaeger.query_url}/api/v3/traces/{trace_id}",
        params={"raw_traces": "true"},
        timeout=30,
    ).json()
    for rs in stored["result"]["resourceSpans"]:
        assert [a["key"] for a in rs["resource"]["attributes"]] == keys
