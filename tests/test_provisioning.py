"""`opdiag_dashboards.cli.generate`: the committed provisioning/ is exactly what the code
generates, `--check` reports drift with a diff, and the provisioning files are coherent
(datasource uids/types, exemplar links, `$` escaping, provider path)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from opdiag.settings import Settings
from opdiag_dashboards.cli import DEFAULT_OUT, generate
from opdiag_dashboards.lint import _datasource_refs
from opdiag_dashboards.provisioning import (
    DASHBOARD_DIR,
    DATASOURCES_FILE,
    PROVIDER_FILE,
    render_files,
)

REPO = Path(__file__).resolve().parents[1]


def run(
    out: Path | None, check: bool, settings: Settings | None = None, **kw: Any
) -> tuple[int, str]:
    buffer = io.StringIO()
    code = generate(out, check, settings or Settings(), stdout=buffer, **kw)
    return code, buffer.getvalue()


def test_committed_provisioning_is_up_to_date():
    assert DEFAULT_OUT == REPO / "provisioning"
    code, text = run(None, True)
    assert code == 0, f"provisioning/ drifted; run `opdiag dashboards generate`:\n{text}"


def test_cli_command_checks_the_committed_files():
    from opdiag.cli.main import main

    assert main(["dashboards", "generate", "--check"]) == 0


def test_generate_writes_deterministic_files(tmp_path: Path):
    assert run(tmp_path, False)[0] == 0
    first = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert run(tmp_path, False)[0] == 0
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == first
    for path, data in first.items():
        text = data.decode("utf-8")
        assert text.endswith("\n") and not text.endswith("\n\n"), path
        if path.suffix == ".json":
            assert (
                text
                == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
            )
    assert run(tmp_path, True)[0] == 0


def test_check_reports_changed_missing_and_extra_files(tmp_path: Path):
    run(tmp_path, False)
    dash = tmp_path / DASHBOARD_DIR / "ktrdr-operations.json"
    dash.write_text(dash.read_text().replace("KTRDR Operations Dashboard", "Edited by hand"))
    code, text = run(tmp_path, True)
    assert code == 1
    assert f"a/{DASHBOARD_DIR}/ktrdr-operations.json" in text
    assert (
        '-  "title": "Edited by hand"' in text
        and '+  "title": "KTRDR Operations Dashboard"' in text
    )

    run(tmp_path, False)
    (tmp_path / DATASOURCES_FILE).unlink()
    (tmp_path / DASHBOARD_DIR / "stale.json").write_text("{}\n")
    code, text = run(tmp_path, True)
    assert code == 1
    assert f"+++ b/{DATASOURCES_FILE}" in text and "--- /dev/null" in text
    assert f"--- a/{DASHBOARD_DIR}/stale.json" in text and "+++ /dev/null" in text
    assert (tmp_path / DASHBOARD_DIR / "stale.json").exists(), "--check must not write"

    assert run(tmp_path, False)[0] == 0
    assert not (tmp_path / DASHBOARD_DIR / "stale.json").exists()
    assert run(tmp_path, True)[0] == 0


def test_unknown_json_datasource_is_refused(tmp_path: Path):
    assert run(tmp_path, False, json_datasource="grafana-json")[0] == 2


def _yaml(files: dict[str, str], name: str) -> dict[str, Any]:
    return yaml.safe_load(files[name])


@pytest.fixture(scope="module", params=["infinity", "simpod"])
def files(request) -> dict[str, str]:
    return render_files(Settings(), request.param)


def test_datasources(files):
    doc = _yaml(files, DATASOURCES_FILE)
    assert doc["apiVersion"] == 1
    by_uid = {d["uid"]: d for d in doc["datasources"]}
    assert len(by_uid) == len(doc["datasources"]) == len({d["name"] for d in doc["datasources"]})
    prom, jaeger, opdiag = by_uid["prometheus"], by_uid["jaeger"], by_uid["opdiag"]
    assert (prom["type"], prom["url"]) == ("prometheus", "http://prometheus:9090")
    assert (jaeger["type"], jaeger["url"]) == ("jaeger", "http://jaeger:16686")
    [exemplar] = prom["jsonData"]["exemplarTraceIdDestinations"]
    assert exemplar["datasourceUid"] == "jaeger" and exemplar["name"] == "trace_id"
    assert opdiag["url"].startswith("http://opdiag:8080")
    if opdiag["type"] == "yesoreyeram-infinity-datasource":
        assert opdiag["jsonData"]["allowedHosts"] == ["http://opdiag:8080"]
        assert opdiag["jsonData"]["auth_method"] == "bearerToken"
        assert opdiag["secureJsonData"] == {"bearerToken": "$OPDIAG_AUTH_TOKEN"}
    else:
        assert opdiag["type"] == "simpod-json-datasource"
        assert opdiag["url"] == "http://opdiag:8080/simpod"
        assert opdiag["secureJsonData"] == {"httpHeaderValue1": "Bearer $OPDIAG_AUTH_TOKEN"}


def test_dollar_signs_are_escaped_except_the_token_reference():
    settings = Settings.model_validate(
        {"dashboards": {"opdiag": {"uid": "opdiag", "name": "op$diag", "url": "http://x:1/a$b"}}}
    )
    text = render_files(settings)[DATASOURCES_FILE]
    assert "op$$diag" in text and "http://x:1/a$$b" in text
    singles = re.findall(r"(?<!\$)\$(?!\$)\w+", text.replace("$$", ""))
    assert singles == ["$OPDIAG_AUTH_TOKEN"]


def test_provider_serves_the_generated_dashboards(files):
    doc = _yaml(files, PROVIDER_FILE)
    [provider] = doc["providers"]
    assert provider["allowUiUpdates"] is False and provider["type"] == "file"
    assert provider["folder"] == "KTRDR"
    # provisioning/ mounted at /etc/grafana/provisioning puts dashboards/json there.
    assert provider["options"]["path"] == f"/etc/grafana/provisioning/{DASHBOARD_DIR}"
    dashboards = [n for n in files if n.startswith(DASHBOARD_DIR)]
    assert len(dashboards) == 4


def test_every_datasource_used_by_dashboards_is_provisioned_with_its_type(files):
    provisioned = {d["uid"]: d["type"] for d in _yaml(files, DATASOURCES_FILE)["datasources"]}
    used = 0
    for name, text in files.items():
        if not name.endswith(".json"):
            continue
        for where, ref in _datasource_refs(json.loads(text)):
            if ref["uid"] == "-- Grafana --":
                continue
            assert ref["uid"] in provisioned, (name, where, ref)
            assert ref.get("type") in (None, provisioned[ref["uid"]]), (name, where, ref)
            used += 1
    assert used > 50


def test_uids_and_urls_follow_settings():
    settings = Settings.model_validate(
        {
            "links": {"jaeger_datasource_uid": "tracing", "diagnosis_dashboard_uid": "diag-x"},
            "dashboards": {"prometheus": {"uid": "prom2", "name": "P", "url": "http://p:9"}},
        }
    )
    files = render_files(settings)
    assert f"{DASHBOARD_DIR}/diag-x.json" in files
    doc = _yaml(files, DATASOURCES_FILE)
    assert {d["uid"] for d in doc["datasources"]} == {"prom2", "tracing", "opdiag"}
    text = "".join(files.values())
    assert '"uid": "prom2"' in text and '"datasourceUid": "tracing"' in text
    assert "/d/diag-x?var-operation_id=" in text


def test_default_out_dir_outside_a_checkout(tmp_path: Path, monkeypatch):
    """Installed without the sources (CI's `pip install .`), the default is ./provisioning."""
    import opdiag_dashboards.cli as cli

    monkeypatch.setattr(cli, "REPO_ROOT", tmp_path / "site-packages")
    monkeypatch.chdir(tmp_path)
    assert cli.default_out_dir() == tmp_path / "provisioning"


def test_ci_workflow_runs_the_drift_check():
    workflow = yaml.safe_load((REPO / ".github/workflows/dashboards.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))
    assert "push" in triggers
    [job] = workflow["jobs"].values()
    steps = job["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("actions/checkout@") for u in uses)
    setup = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    assert str(setup["with"]["python-version"]) == "3.11"
    runs = [s.get("run", "") for s in steps]
    assert any("pip install ." in r for r in runs)
    assert runs[-1].strip() == "opdiag dashboards generate --check"
