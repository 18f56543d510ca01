"""Contract between the generated dashboards and opdiag's API, over the demo corpus.

For every Infinity panel and variable: build the request Grafana would send (variables
substituted with realistic values: ids from demo/traces/expected.yaml), make it against the
Flask test client, evaluate the panel's root_selector as JSONata (jsonata-python, as
Infinity's backend parser does) and check every declared column exists with its declared
type. The simpod variant posts the same panels to /simpod/query and checks the frames. Every
link resolves to a generated dashboard uid or an existing Flask route.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import jsonata
import pytest
import yaml
from opdiag.api import app as api_app
from opdiag.settings import Settings
from opdiag_dashboards.render import render_dashboards
from opdiag_dashboards.verdicts import SEVERITY_COLORS, VERDICT_COLORS

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "demo/traces"
EXPECTED = CORPUS / "expected.yaml"
HOUR_MS = 3_600_000
INTERVAL_MS = 300_000
# Python types a column type accepts in Infinity's JSON rows.
PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "boolean": (bool,),
    "timestamp_epoch": (int, float),
}
FRAME_TYPES = {
    "string": "string",
    "number": "number",
    "boolean": "boolean",
    "timestamp_epoch": "time",
}


def _expected() -> dict[str, Any]:
    if not EXPECTED.is_file():
        pytest.fail(f"the demo corpus ({EXPECTED}) is missing")
    return yaml.safe_load(EXPECTED.read_text(encoding="utf-8"))


def _epoch_ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _pick(verdict: str) -> str:
    return next(i for i, op in _expected()["operations"].items() if op["verdict"] == verdict)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(trace_paths=[CORPUS])


@pytest.fixture(scope="module")
def client(settings):
    app = api_app.create_app(settings)
    app.config["TESTING"] = True
    return app.test_client()


@pytest.fixture(scope="module")
def window() -> tuple[int, int]:
    now = _epoch_ms(str(_expected()["now"]))
    return now - 6 * HOUR_MS, now


# Operations the per-operation panels are checked with: a failure with a root cause, a
# healthy run, and a failed dispatch keyed by its trace id.
CASES = ["failed", "healthy", "workers_busy", "slow"]


def variable_values(
    window: tuple[int, int], op_id: str, op_type: str = "All"
) -> dict[str, tuple[str, str]]:
    """Variable name -> (value, text) as Grafana would hold them."""
    start, end = window
    return {
        "__from": (str(start), str(start)),
        "__to": (str(end), str(end)),
        "__interval_ms": (str(INTERVAL_MS), str(INTERVAL_MS)),
        "operation_id": (op_id, op_id),
        "operation_type": (".*" if op_type == "All" else op_type, op_type),
        "verdict": (".*", "All"),
    }


def interpolate(text: str, values: dict[str, tuple[str, str]]) -> str:
    """Grafana's ${var}, ${var:text}, $var substitution for the formats the dashboards use."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        fmt = match.group(2)
        if name not in values:
            raise AssertionError(f"variable {name} has no test value ({text})")
        value, shown = values[name]
        if fmt in (None, "raw"):
            return value
        if fmt == "text":
            return shown
        if fmt == "percentencode":
            return quote(value, safe="")
        raise AssertionError(f"format {fmt} not simulated")

    return re.sub(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)", one, text)


def infinity_queries(dashboards: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(where, Infinity query) of every panel target and every Infinity variable."""
    out = []
    for name, dash in dashboards.items():
        for panel in dash["panels"]:
            for target in panel.get("targets", []):
                if target.get("datasource", {}).get("type") == "yesoreyeram-infinity-datasource":
                    out.append((f"{name}: {panel['title']}", target))
        for var in dash["templating"]["list"]:
            query = var.get("query")
            if isinstance(query, dict) and query.get("queryType") == "infinity":
                out.append((f"{name}: variable {var['name']}", query["infinityQuery"]))
    return out


def _rows(client, url: str, where: str) -> Any:
    response = client.get(url)
    assert response.status_code == 200, (where, url, response.get_data(as_text=True)[:300])
    return response.get_json()


def select(root_selector: str, document: Any) -> list[dict[str, Any]]:
    """Evaluate the root selector as JSONata; a single object is one row (as Infinity does)."""
    result = jsonata.Jsonata(root_selector).evaluate(document)
    if result is None:
        return []
    return result if isinstance(result, list) else [result]


def check_columns(where: str, rows: list[dict[str, Any]], columns: list[dict[str, str]]) -> None:
    for row in rows:
        for column in columns:
            assert column["selector"] in row, (where, column, sorted(row))
            value = row[column["selector"]]
            allowed = PY_TYPES[column["type"]]
            ok = isinstance(value, allowed) and not (
                bool not in allowed and isinstance(value, bool)
            )
            assert ok, (where, column, value)
            if column["type"] == "timestamp_epoch":
                assert value > 10**12, (where, column, value)


@pytest.mark.parametrize("case", CASES)
def test_every_infinity_query_answers_its_declared_columns(client, window, case):
    op_id = _pick(case)
    queries = infinity_queries(render_dashboards(Settings()))
    assert len(queries) >= 15
    non_empty = set()
    for where, query in queries:
        url = interpolate(query["url"], variable_values(window, op_id))
        rows = select(query["root_selector"], _rows(client, url, where))
        check_columns(where, rows, query["columns"])
        if rows:
            non_empty.add(where.split(": ", 1)[1])
    # Not vacuous: the main panels got rows.
    assert {
        "Recent Operations",
        "Execution Flow",
        "Root Cause",
        "Verdict",
        "variable trace_id",
        "variable operation_id",
        "variable verdict",
        "Verdicts over Time",
    } <= non_empty, non_empty
    if case != "healthy":
        assert "Findings" in non_empty
    if case != "workers_busy":  # finished operations are compared with the last good runs
        assert "What Changed Since the Last Good Runs" in non_empty


def test_type_filter_reaches_the_api(client, window):
    query = next(
        q
        for w, q in infinity_queries(render_dashboards(Settings()))
        if w.endswith("Recent Operations")
    )
    url = interpolate(query["url"], variable_values(window, _pick("failed"), "training"))
    rows = _rows(client, url, "Recent Operations")
    assert rows and {r["operation_type"] for r in rows} == {"training"}


def test_worker_selection_failures_panel_lists_them(client, window):
    query = next(
        q
        for w, q in infinity_queries(render_dashboards(Settings()))
        if w.endswith("Worker Selection Failures")
    )
    rows = _rows(client, interpolate(query["url"], variable_values(window, "x")), "failures")
    verdicts = {r["verdict"] for r in rows}
    assert verdicts and verdicts <= {"no_workers", "no_capable_workers", "workers_busy"}
    expected = {op["verdict"] for op in _expected()["operations"].values()}
    assert verdicts == expected & {"no_workers", "no_capable_workers", "workers_busy"}


def test_trace_id_variable_yields_the_operation_traces(client, window):
    query = next(
        q
        for w, q in infinity_queries(render_dashboards(Settings()))
        if w.endswith("variable trace_id")
    )
    op_id = _pick("failed")
    url = interpolate(query["url"], variable_values(window, op_id))
    rows = select(query["root_selector"], _rows(client, url, "trace_id"))
    diagnosis = client.get(f"/api/v1/operations/{op_id}").get_json()[0]
    assert [r["value"] for r in rows] == diagnosis["trace_ids"].split(",")
    assert all(re.fullmatch(r"[0-9a-f]{32}", r["value"]) for r in rows)


def test_verdict_colours_cover_every_verdict(client, window):
    start, end = window
    rows = _rows(client, f"/api/v1/variables/verdicts?from={start}&to={end}", "verdicts")
    assert {r["value"] for r in rows} <= set(VERDICT_COLORS)


def test_severity_colours_cover_every_severity_the_tables_show() -> None:
    """The operations tables colour the severity beside the verdict: every severity a rule
    or a fallback verdict can give has its colour, on every table that shows the column."""
    from opdiag.diagnosis.result import SEVERITIES, VERDICTS, verdict_severity

    assert set(SEVERITIES) | {verdict_severity(v) for v in VERDICTS} <= set(SEVERITY_COLORS)
    tables = 0
    for board in render_dashboards(Settings()).values():
        for panel in board.get("panels", []):
            for override in panel.get("fieldConfig", {}).get("overrides", []):
                if override["matcher"]["options"] != "severity":
                    continue
                props = {p["id"]: p["value"] for p in override["properties"]}
                assert set(props["mappings"][0]["options"]) == set(SEVERITY_COLORS)
                tables += 1
    assert tables >= 3  # Operations, Worker Status, and the findings of Operation Diagnosis
    stats = [
        p
        for board in render_dashboards(Settings()).values()
        for p in board.get("panels", [])
        if p.get("type") == "stat" and p.get("title") == "Severity"
    ]
    assert len(stats) == 1  # beside the Operation Diagnosis verdict
    [mapping] = stats[0]["fieldConfig"]["defaults"]["mappings"]
    assert set(mapping["options"]) == set(SEVERITY_COLORS)


# --- simpod -----------------------------------------------------------------------------


def _simpod_body(window: tuple[int, int], targets: list[dict[str, Any]], values: dict) -> dict:
    iso = [datetime.fromtimestamp(t / 1000, UTC).isoformat().replace("+00:00", "Z") for t in window]
    scoped = {k: {"text": v[1], "value": v[0]} for k, v in values.items() if not k.startswith("__")}
    return {
        "range": {"from": iso[0], "to": iso[1], "raw": {"from": "now-6h", "to": "now"}},
        "intervalMs": INTERVAL_MS,
        "maxDataPoints": 500,
        "targets": targets,
        "scopedVars": scoped,
        "panelId": 1,
        "app": "dashboard",
    }


@pytest.mark.parametrize("case", CASES)
def test_simpod_panels_answer_the_same_columns(client, window, case):
    op_id = _pick(case)
    values = variable_values(window, op_id)
    infinity = render_dashboards(Settings(), "infinity")
    simpod = render_dashboards(Settings(), "simpod")
    checked = 0
    for name, dash in simpod.items():
        for panel, twin in zip(dash["panels"], infinity[name]["panels"], strict=True):
            for target, twin_target in zip(
                panel.get("targets", []), twin.get("targets", []), strict=True
            ):
                if target["datasource"]["type"] != "simpod-json-datasource":
                    continue
                sent = {**target, "payload": interpolate(target["payload"], values)}
                response = client.post("/simpod/query", json=_simpod_body(window, [sent], values))
                assert response.status_code == 200, (
                    name,
                    panel["title"],
                    response.get_data(as_text=True),
                )
                [frame] = response.get_json()
                assert frame["refId"] == target["refId"]
                fields = {f["name"]: f["type"] for f in frame["fields"]}
                for column in twin_target["columns"]:
                    assert fields.get(column["selector"]) == FRAME_TYPES[column["type"]], (
                        name,
                        panel["title"],
                        column,
                        fields,
                    )
                checked += 1
    assert checked >= 12


def test_simpod_variables_answer(client, window):
    for dash in render_dashboards(Settings(), "simpod").values():
        for var in dash["templating"]["list"]:
            if var.get("datasource", {}).get("type") != "simpod-json-datasource":
                continue
            body = {
                "payload": {"target": var["query"]["query"]},
                "range": _simpod_body(window, [], {})["range"],
            }
            response = client.post("/simpod/variable", json=body)
            assert response.status_code == 200, (var["name"], response.get_data(as_text=True))
            assert response.get_json(), var["name"]


# --- links ------------------------------------------------------------------------------


def _links(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        if "url" in node and "title" in node:
            found.append(node)
        for value in node.values():
            found += _links(value)
    elif isinstance(node, list):
        for item in node:
            found += _links(item)
    return found


@pytest.mark.parametrize("json_datasource", ["infinity", "simpod"])
def test_every_link_resolves(client, settings, window, json_datasource):
    dashboards = render_dashboards(settings, json_datasource)
    uids = {d["uid"] for d in dashboards.values()}
    adapter = client.application.url_map.bind("localhost")
    op_id = _pick("failed")
    base = settings.links.opdiag_url.rstrip("/")
    [diagnosis_row] = _rows(client, f"/api/v1/operations/{op_id}", "diagnosis")
    diagnosis_url = diagnosis_row["diagnosis_url"]
    seen = {"dashboard": 0, "opdiag": 0, "explore": 0}
    for dash in dashboards.values():
        for link in _links(dash["panels"]) + _links(dash["links"]):
            url = (
                link["url"]
                .replace("${__value.raw:percentencode}", quote(op_id, safe=""))
                .replace("${__value.raw}", op_id)
                .replace("${__url_time_range}", "from=1&to=2")
                .replace("${operation_id:percentencode}", quote(op_id, safe=""))
                .replace("${__data.fields.diagnosis_url}", diagnosis_url)
                .replace("${__from}", str(window[0]))
                .replace("${__to}", str(window[1]))
            )
            if link.get("internal"):
                assert link["internal"]["datasourceUid"] == settings.links.jaeger_datasource_uid
                assert link["internal"]["query"] == {"query": "${__value.raw}"}
                seen["explore"] += 1
            elif url.startswith("/d/"):
                parts = urlsplit(url)
                assert parts.path.split("/")[2] in uids, url
                params = dict(parse_qsl(parts.query))
                if "var-operation_id" in params:
                    assert params["var-operation_id"] == op_id
                seen["dashboard"] += 1
            elif url.startswith(base):
                path = url[len(base) :]
                endpoint, _ = adapter.match(urlsplit(path).path)
                assert client.get(path).status_code == 200, (endpoint, path)
                seen["opdiag"] += 1
            elif link["url"] == "${__value.raw}":
                continue  # a URL column of opdiag's rows (checked below)
            else:
                raise AssertionError(f"link {link} resolves to nothing generated or served")
    assert all(seen.values()), seen


def test_url_columns_hold_links_opdiag_serves(client, settings, window):
    start, end = window
    rows = _rows(client, f"/api/v1/operations?from={start}&to={end}", "operations")
    base = settings.links.opdiag_url.rstrip("/")
    for row in rows[:5]:
        assert row["diagnosis_url"].startswith(base + "/operations/")
        assert client.get(row["diagnosis_url"][len(base) :]).status_code == 200


def test_simpod_tables_show_the_columns_infinity_declares():
    """simpod frames carry every model column; the panel's organize step keeps the declared
    ones in the declared order, so both datasources render the same table."""
    infinity = render_dashboards(Settings(), "infinity")
    checked = 0
    for dash in infinity.values():
        for panel in dash["panels"]:
            target = (panel.get("targets") or [{}])[0]
            if panel["type"] != "table" or "columns" not in target:
                continue
            organize = [t for t in panel["transformations"] if t["id"] == "organize"]
            if not organize:
                assert len(target["columns"]) > 5 or panel["title"] in ("Findings", "Solution")
                continue
            order = organize[0]["options"]["indexByName"]
            assert list(order) == [c["selector"] for c in target["columns"]], panel["title"]
            checked += 1
    assert checked >= 5


def test_the_comparison_table_shows_the_total_s_note_and_expected_time():
    """The API's comparison rows carry what the page says of the total (its note, the time
    expected for its data): without them the table showed 'slower' on healthy runs with no
    word why. A 0 the API gives for none (no expected time, no percentage, no change of a
    run that did not complete) is left blank, and every status has its colour."""
    from opdiag.api.schemas import ComparisonRow
    from opdiag_dashboards.verdicts import CHANGE_COLORS

    for dash in render_dashboards(Settings()).values():
        for panel in dash["panels"]:
            if panel.get("title") == "What Changed Since the Last Good Runs":
                break
        else:
            continue
        break
    columns = [c["selector"] for c in panel["targets"][0]["columns"]]
    assert {"expected_ms", "note", "status", "change_pct"} <= set(columns)
    overrides = {
        o["matcher"]["options"]: o["properties"] for o in panel["fieldConfig"]["overrides"]
    }
    for column in ("expected_ms", "change_ms", "change_pct"):
        (mapping,) = [p["value"] for p in overrides[column] if p["id"] == "mappings"]
        assert mapping[0]["options"]["0"]["text"] == "", column
    said = ComparisonRow.model_fields["status"].description or ""
    assert {s for s in re.findall(r"'([a-z ]+)'", said)} <= set(CHANGE_COLORS)
    assert {"as expected", "not comparable", "stopped"} <= set(re.findall(r"'([a-z ]+)'", said))


def test_per_operation_queries_and_page_links_carry_the_time_range(settings):
    """A live Jaeger is searched for one operation over the dashboard's range: every query
    for one operation sends ``${__from}``/``${__to}``, every link to its page the range."""
    board = render_dashboards(settings, "infinity")[
        f"{settings.links.diagnosis_dashboard_uid}.json"
    ]

    def strings(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [s for v in node.values() for s in strings(v)]
        if isinstance(node, list):
            return [s for v in node for s in strings(v)]
        return [node] if isinstance(node, str) else []

    per_operation = [s for s in strings(board) if "/operations/${operation_id" in s]
    assert len(per_operation) >= 7  # five panels, the trace variable, the page link
    for text in per_operation:
        assert "from=${__from}&to=${__to}" in text or "?${__url_time_range}" in text, text


# --- annotations ------------------------------------------------------------------------


def annotation_queries(dashboards: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(dashboard, annotation) of every annotation query that reads opdiag."""
    return [
        (name, anno)
        for name, dash in dashboards.items()
        for anno in dash["annotations"]["list"]
        if anno.get("datasource", {}).get("uid") == Settings().dashboards.opdiag.uid
    ]


def test_the_operations_and_overview_dashboards_mark_problem_operations():
    found = annotation_queries(render_dashboards(Settings()))
    assert {name for name, _ in found} == {
        "ktrdr-operations.json", "ktrdr-system-overview.json"}
    for name, anno in found:
        # A toggle in the dashboard's controls turns the marks off and on.
        assert anno["enable"] is True and anno["hide"] is False, name
        assert anno["name"] and anno["iconColor"], name


def test_every_annotation_query_answers_its_columns_and_mappings(client, window):
    from opdiag.api.queries import PROBLEM_VERDICTS

    for op_type in ("All", "training"):
        for name, anno in annotation_queries(render_dashboards(Settings())):
            target = anno["target"]
            url = interpolate(target["url"], variable_values(window, "x", op_type))
            rows = select(target["root_selector"], _rows(client, url, name))
            check_columns(name, rows, target["columns"])
            declared = {c["selector"]: c["type"] for c in target["columns"]}
            for event, mapping in anno["mappings"].items():
                assert mapping["source"] == "field", (name, event)
                assert mapping["value"] in declared, (name, event, mapping)
            assert declared[anno["mappings"]["time"]["value"]] == "timestamp_epoch"
            assert declared[anno["mappings"]["timeEnd"]["value"]] == "timestamp_epoch"
            expected = {
                i for i, op in _expected()["operations"].items()
                if op["verdict"] in PROBLEM_VERDICTS
                and (op_type == "All" or name != "ktrdr-operations.json"
                     or op["operation_type"] == op_type)
            }
            assert {r["operation_id"] for r in rows} == expected, (name, op_type)
            for row in rows:
                assert html.escape(row["diagnosis_url"], quote=True) in row["text"]
                parts = urlsplit(row["diagnosis_url"])
                assert client.get(f"{parts.path}?{parts.query}").status_code == 200


def test_simpod_annotation_queries_answer_the_same_fields(client, window):
    values = variable_values(window, "x")
    infinity = dict(annotation_queries(render_dashboards(Settings(), "infinity")))
    for name, anno in annotation_queries(render_dashboards(Settings(), "simpod")):
        target = anno["target"]
        assert target["target"] == "annotations"
        sent = {**target, "payload": interpolate(target["payload"], values)}
        response = client.post("/simpod/query", json=_simpod_body(window, [sent], values))
        assert response.status_code == 200, response.get_data(as_text=True)
        [frame] = response.get_json()
        fields = {f["name"]: f["type"] for f in frame["fields"]}
        for column in infinity[name]["target"]["columns"]:
            assert fields.get(column["selector"]) == FRAME_TYPES[column["type"]], (name, column)
        assert anno["mappings"] == infinity[name]["mappings"]


def test_the_baseline_stat_shows_a_dash_for_the_api_s_zero():
    """The API's row gives ``baseline_ms`` 0 when no baseline applies (a request refused
    before it became an operation): the stat showed "0 ms" for every one of them, which
    reads as a baseline of nothing. It shows "-", as it does for no value."""
    from opdiag.api.schemas import DiagnosisRow

    assert "0 when there are none" in (DiagnosisRow.model_fields["baseline_ms"].description or "")
    (panel,) = [
        p
        for dash in render_dashboards(Settings()).values()
        for p in dash["panels"]
        if p.get("title") == "Baseline"
    ]
    defaults = panel["fieldConfig"]["defaults"]
    assert defaults["noValue"] == "-"
    zero = [m["options"]["0"] for m in defaults["mappings"] if "0" in m.get("options", {})]
    assert zero and zero[0]["text"] == "-"
