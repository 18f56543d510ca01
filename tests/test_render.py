"""Renderers: links (encoded, deep-linked), JSON contract, Markdown template, rows, table."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, unquote, urlsplit

from opdiag.diagnosis.result import (
    Bottleneck,
    Diagnosis,
    Finding,
    FlowStep,
    RootCause,
    Solution,
)
from opdiag.render.json_render import CONTRACT_KEYS, render_json
from opdiag.render.links import build_links
from opdiag.render.markdown import code, escape, fence, render_markdown
from opdiag.render.rows import (
    diagnosis_row,
    finding_rows,
    flow_rows,
    operation_row,
    solution_rows,
)
from opdiag.render.table import render_operations_table
from opdiag.settings import LinkSettings

TID = "0af7651916cd43dd8448eb211c80319c"
TID2 = "1af7651916cd43dd8448eb211c80319c"
LINKS = LinkSettings(
    grafana_url="http://grafana:3000/",
    jaeger_ui_url="http://jaeger:16686",
    opdiag_url="http://opdiag:8080",
    jaeger_datasource_uid="jaeger-uid",
    diagnosis_dashboard_uid="opdiag-operation-diagnosis",
)


def make_diagnosis(**over: object) -> Diagnosis:
    base = dict(
        operation_id="op_backtesting_20251122_101500_1a2b3c4d",
        trace_ids=[TID, TID2],
        verdict="service_unreachable",
        summary="failed: IB host service refused the connection",
        operation_type="data_load",
        status="failed",
        services=["ktrdr-api", "ktrdr-ib-host-service"],
        started_at_ms=1_763_806_500_000,
        ended_at_ms=1_763_806_512_000,
        duration_ms=12_000.0,
        finished=True,
        root_cause=RootCause(
            trace_id=TID2,
            span_id="00f067aa0ba902b7",
            service="ktrdr-ib-host-service",
            span_name="ib.connect",
            evidence={"connection.status": "failed", "ib.port": 4002},
            exception_type="ConnectionRefusedError",
            exception_message="[Errno 111] Connection refused",
        ),
        bottleneck=Bottleneck(
            trace_id=TID, span_id="b7ad6b7169203331", service="ktrdr-api",
            span_name="data.download", self_time_ms=900.0, share=0.75, duration_ms=1200.0,
        ),
        findings=[
            Finding(rule_id="ib_connect_failed", severity="critical", summary="IB refused",
                    verdict="service_unreachable", trace_id=TID2, span_id="00f067aa0ba902b7",
                    service="ktrdr-ib-host-service", span_name="ib.connect",
                    evidence={"connection.status": "failed"}),
        ],
        execution_flow=[
            FlowStep(index=0, trace_id=TID, span_id="b7ad6b7169203331", parent_id=None,
                     service="ktrdr-api", span_name="data.download", start_ms=0.0,
                     duration_ms=1200.0, self_time_ms=900.0, depth=0, critical=True,
                     error=False, bottleneck=True),
            FlowStep(index=1, trace_id=TID2, span_id="00f067aa0ba902b7", parent_id=None,
                     service="ktrdr-ib-host-service", span_name="ib.connect", start_ms=5.0,
                     duration_ms=3.0, self_time_ms=3.0, depth=1, critical=False, error=True,
                     root_cause=True),
        ],
        solution=Solution(title="Start the IB host service",
                          steps=["Check the IB Gateway is running on port 4002"],
                          commands=["cd ib-host-service && ./start.sh"],
                          rule_id="ib_connect_failed"),
    )
    base.update(over)
    d = Diagnosis(**base)  # type: ignore[arg-type]
    d.links = build_links(d, LINKS)
    return d


# -- links --------------------------------------------------------------------------------

def test_jaeger_link_deep_links_the_root_cause_span():
    d = make_diagnosis()
    assert d.links.jaeger == f"http://jaeger:16686/trace/{TID2}?uiFind=00f067aa0ba902b7"
    assert d.links.traces == {
        TID: f"http://jaeger:16686/trace/{TID}",
        TID2: f"http://jaeger:16686/trace/{TID2}",
    }


def test_jaeger_link_falls_back_to_bottleneck_then_trace():
    d = make_diagnosis(root_cause=None)
    assert d.links.jaeger.endswith(f"/trace/{TID}?uiFind=b7ad6b7169203331")
    d = make_diagnosis(root_cause=None, bottleneck=None)
    assert d.links.jaeger == f"http://jaeger:16686/trace/{TID}"


def test_duplicate_span_suffix_is_dropped_for_jaeger_ui():
    d = make_diagnosis(root_cause=RootCause(TID, "00f067aa0ba902b7_1", "s", "n", {}))
    assert d.links.jaeger.endswith("uiFind=00f067aa0ba902b7")


def test_every_id_is_url_encoded():
    hostile = "op/../x?a=1&b=<script>#frag"
    d = make_diagnosis(operation_id=hostile, trace_ids=[TID],
                       root_cause=RootCause(TID, "a b&c", "svc", "n", {}))
    span = {"from": [str(d.started_at_ms - 60_000)], "to": [str(d.ended_at_ms + 60_000)]}
    page = urlsplit(d.links.diagnosis_page)
    assert page.path == "/operations/op%2F..%2Fx%3Fa%3D1%26b%3D%3Cscript%3E%23frag"
    assert parse_qs(page.query) == span
    dash = urlsplit(d.links.grafana_dashboard)
    assert dash.path == "/d/opdiag-operation-diagnosis"
    assert parse_qs(dash.query) == {"var-operation_id": [hostile], **span}
    assert d.links.jaeger.endswith("?uiFind=a%20b%26c")
    for url in (d.links.diagnosis_page, d.links.grafana_dashboard, d.links.jaeger):
        assert "<" not in url and " " not in url and "#" not in url


def test_links_to_an_unfinished_operation_stay_open_ended():
    d = make_diagnosis(finished=False)
    assert d.links.diagnosis_page.endswith(f"?from={d.started_at_ms - 60_000}")
    assert d.links.grafana_dashboard.endswith(f"&from={d.started_at_ms - 60_000}&to=now")
    undated = make_diagnosis(started_at_ms=None)
    assert "?" not in undated.links.diagnosis_page


def test_explore_link_opens_the_trace_in_the_jaeger_datasource():
    d = make_diagnosis()
    url = urlsplit(d.links.grafana_explore)
    assert url.netloc == "grafana:3000" and url.path == "/explore"
    query = parse_qs(url.query)
    assert query["schemaVersion"] == ["1"] and query["orgId"] == ["1"]
    panes = json.loads(query["panes"][0])
    (pane,) = panes.values()
    assert pane["datasource"] == "jaeger-uid"
    (q,) = pane["queries"]
    assert q == {"refId": "A", "datasource": {"type": "jaeger", "uid": "jaeger-uid"},
                 "query": TID2}
    assert pane["range"] == {"from": str(1_763_806_500_000 - 60_000),
                             "to": str(1_763_806_512_000 + 60_000)}
    # The JSON is percent-encoded, not pasted raw.
    assert "{" not in d.links.grafana_explore and unquote(d.links.grafana_explore) != url


# -- JSON ---------------------------------------------------------------------------------

def test_json_has_the_cli_contract_keys_and_types():
    data = json.loads(render_json(make_diagnosis()))
    assert set(CONTRACT_KEYS) <= set(data)
    assert data["operation_id"] == "op_backtesting_20251122_101500_1a2b3c4d"
    assert data["trace_ids"] == [TID, TID2]
    assert data["verdict"] == "service_unreachable"
    assert isinstance(data["summary"], str)
    rc = data["root_cause"]
    assert {"span_id", "service", "span_name", "evidence"} <= set(rc)
    assert rc["evidence"] == {"connection.status": "failed", "ib.port": 4002}
    assert {"span_id", "span_name", "self_time_ms"} <= set(data["bottleneck"])
    assert isinstance(data["bottleneck"]["self_time_ms"], float)
    assert isinstance(data["findings"], list) and data["findings"][0]["rule_id"]
    assert isinstance(data["duration_ms"], float)
    assert [s["span_name"] for s in data["execution_flow"]] == ["data.download", "ib.connect"]
    assert data["solution"]["commands"] == ["cd ib-host-service && ./start.sh"]
    assert data["links"]["jaeger"].endswith("uiFind=00f067aa0ba902b7")


def test_json_nulls_and_odd_attribute_values():
    d = make_diagnosis(root_cause=None, bottleneck=None, solution=None)
    d.findings[0].evidence = {"big": 2**70, "raw": b"\xff", "tags": {"a"}}
    data = json.loads(render_json(d))
    assert data["root_cause"] is None and data["bottleneck"] is None
    assert data["findings"][0]["evidence"]["big"] == 2**70


# -- Markdown -----------------------------------------------------------------------------

def test_markdown_follows_the_trace_analysis_template():
    text = render_markdown(make_diagnosis())
    sections = ["**Trace Summary**", "**Execution Flow**", "**Diagnosis**", "**Root Cause**",
                "**Solution**"]
    positions = [text.index(s) for s in sections]
    assert positions == sorted(positions)
    assert text.startswith(
        "🔍 **Trace Analysis for operation_id: op_backtesting_20251122_101500_1a2b3c4d**"
    )
    assert f"- Trace IDs: {TID}, {TID2}" in text
    assert "- Total Duration: 12,000ms" in text
    assert "- Services: ktrdr-api, ktrdr-ib-host-service" in text
    assert "- Status: ERROR" in text
    assert "1. ★ data.download (ktrdr-api) - 1200.0ms [BOTTLENECK]" in text
    assert "2. ↳ ib.connect (ktrdr-ib-host-service) - 3.0ms [ROOT CAUSE, error]" in text
    assert "`connection.status` = failed" in text
    assert "ConnectionRefusedError" in text
    assert "```bash\ncd ib-host-service && ./start.sh\n```" in text


def test_root_cause_evidence_tells_span_attributes_from_what_opdiag_worked_out():
    evidence = {
        "http.url": "http://127.0.0.1:5005/health",
        "attr:phase": "design",
        "worker.since": "15:48:28 UTC",
        "where": "after training.data_loading",
        "op:symbol": "EURUSD",
    }
    rc = RootCause(TID, "00f067aa0ba902b7", "ktrdr-api", "GET", evidence)
    text = render_markdown(make_diagnosis(root_cause=rc))
    own = text.index("- Span attributes:")
    worked = text.index("- Worked out from the traces:")
    for key in ("http.url", "phase"):  # the span's attribute, by the name it carries
        assert own < text.index(f"`{key}`") < worked, key
    assert "attr:" not in text
    for key in ("worker.since", "where", "op:symbol"):
        assert text.index(f"`{key}`") > worked, key


def test_markdown_escapes_untrusted_values():
    d = make_diagnosis(summary="[click](http://evil) <img src=x> *bold*\n# heading")
    d.execution_flow[0].span_name = "<script>alert(1)</script>"
    text = render_markdown(d)
    assert "[click](http://evil)" not in text
    assert "\\[click\\](http://evil)" in text  # no link: the brackets are literal
    assert re.search(r"(?<!\\)<(script|img)", text) is None
    assert "\\<script\\>" in text
    assert "\n# heading" not in text


def test_escape_and_fence():
    assert escape("a_b*c") == "a_b\\*c"  # intraword _ is not emphasis
    assert escape("_x_ &amp; y&z") == "\\_x\\_ \\&amp; y&z"
    assert escape("# title") == "\\# title"
    assert code("a`b") == "``a`b``" and code("`x") == "`` `x ``"
    assert escape("- item") == "\\- item"
    assert escape("line1\nline2") == "line1 line2"
    block = fence(["echo ```", "x"])
    assert block.startswith("````bash\n") and block.endswith("\n````")


def test_healthy_markdown_status_ok_without_root_cause():
    d = make_diagnosis(verdict="healthy", status="completed", root_cause=None, solution=None)
    d.execution_flow[1].error = False
    text = render_markdown(d)
    assert "- Status: OK (verdict healthy, operation status completed" in text
    d.execution_flow[1].error = True  # an error span anywhere: the trace status is ERROR
    assert "- Status: ERROR" in render_markdown(d)
    assert "No action needed." in text


# -- rows and table -----------------------------------------------------------------------

def test_rows_are_flat_and_complete():
    d = make_diagnosis()
    row = operation_row(d)
    assert row.operation_id == d.operation_id and row.trace_id == TID
    assert row.root_cause == "ktrdr-ib-host-service: ib.connect"
    assert row.service == "ktrdr-ib-host-service"
    assert row.jaeger_url == d.links.jaeger and row.diagnosis_url == d.links.diagnosis_page
    drow = diagnosis_row(d)
    assert drow.trace_ids == f"{TID},{TID2}"
    assert drow.root_cause_evidence == "connection.status=failed, ib.port=4002"
    assert drow.bottleneck_share == 0.75 and "./start.sh" in drow.solution
    flows = flow_rows(d)
    assert [f.index for f in flows] == [0, 1]
    assert flows[1].jaeger_url == f"http://jaeger:16686/trace/{TID2}?uiFind=00f067aa0ba902b7"
    assert flows[0].parent_id == ""
    assert finding_rows(d)[0].evidence == "connection.status=failed"
    assert [(s.index, s.kind) for s in solution_rows(d)] == [(1, "step"), (2, "command")]


def test_trace_keyed_row_uses_the_trace_id():
    d = make_diagnosis(operation_id=None, trace_ids=[TID], solution=None)
    assert operation_row(d).operation_id == TID
    assert solution_rows(d) == []


def test_table_one_line_per_operation_without_control_characters():
    d1 = make_diagnosis()
    d2 = make_diagnosis(operation_id="op_two", verdict="stuck", summary="stuck\x1b[31m red",
                        duration_ms=2_520_000.0, status="running")
    text = render_operations_table([d1, d2])
    lines = text.splitlines()
    assert lines[0].split() == ["TIME", "ID", "TYPE", "STATUS", "VERDICT", "DURATION", "SUMMARY"]
    assert len(lines) == 3
    assert "2025-11-22T10:15:00Z" in lines[1] and "12.0s" in lines[1]
    assert "42m00s" in lines[2] and "\x1b" not in text
    assert render_operations_table([]) == "no operations found\n"


def test_fast_json_path_equals_to_dict():
    d = make_diagnosis()
    assert json.loads(render_json(d)) == {**json.loads(json.dumps(d.to_dict())), "key": d.key}


def test_comparison_says_its_note_expected_time_and_which_runs_came_later():
    """A baseline filled with later runs of other strategies said so only in JSON: the
    Markdown read as if earlier runs of the same strategy had been three times slower."""
    from opdiag.diagnosis.result import BaselineRun, Comparison
    from opdiag.render.markdown import comparison_lines

    start = 1_763_806_500_000
    c = Comparison(
        runs=[
            BaselineRun("op_a", start - 60_000, 40_000.0),
            BaselineRun("op_b", start + 600_000, 240_000.0),
        ],
        wanted_runs=5,
        this_ms=45_000.0,
        baseline_ms=140_000.0,
        expected_ms=20_500.0,
        size=12_505,
        judges_speed=False,
        change_ms=-95_000.0,
        note="fewer than 2 good runs of strategy v3_minimal in reach",
    )
    text = "\n".join(comparison_lines(c, start))
    assert "op_a (" in text and "op_b (" in text
    assert text.count("later than this run") == 1
    assert text.index("later than this run") > text.index("op_b")
    assert "- Note: fewer than 2 good runs of strategy v3_minimal in reach" in text
    assert "- Expected for its 12,505 data rows" in text
    assert "later than this run" not in "\n".join(comparison_lines(c))
    # runs of another strategy: the total is shown, not judged
    assert "- This run: 45.0s; baseline median 2m20s; change -1m35s; total: not comparable" in text


def test_the_total_line_of_a_run_that_did_not_complete_has_no_change():
    """A killed backtest read 'This run: 6m19s; baseline median 12.7s; change +6m07s
    (+2,899 %)': a run that stopped is no speed; one in flight is so far."""
    from opdiag.diagnosis.result import BaselineRun, Comparison
    from opdiag.render.markdown import comparison_lines

    c = Comparison(
        runs=[BaselineRun("op_a", 0, 12_700.0)], wanted_runs=5, this_ms=379_950.0,
        baseline_ms=12_700.0, status="stopped",
    )
    assert comparison_lines(c)[0] == (
        "- This run: stopped after 6m19s (did not complete); baseline median 12.7s"
    )
    c.status = "in progress"
    assert comparison_lines(c)[0] == "- This run: in progress, 6m19s so far; baseline median 12.7s"
    c.status, c.change_ms, c.change_pct = "as expected", 367_250.0, 2_891.7
    assert comparison_lines(c)[0].endswith("change +6m07s (+2,892 %); total: as expected")


def _flow_step(i: int, name: str, parent: int | None, depth: int, **flags: bool) -> FlowStep:
    return FlowStep(
        index=i,
        trace_id=TID,
        span_id=f"{i:016x}",
        parent_id=None if parent is None else f"{parent:016x}",
        service="ktrdr-cli" if name == "GET" else "worker",
        span_name=name,
        start_ms=float(i),
        duration_ms=float(i),
        self_time_ms=1.0,
        depth=depth,
        critical=flags.get("critical", False),
        error=flags.get("error", False),
    )


def test_markdown_flow_is_a_tree_with_like_siblings_folded():
    """A followed training: 2,000 rows, the worker's phases listed under the CLI's polls that
    started just before them. Rows now follow the tree; a run of like siblings that is not
    on the critical path nor in error is one line (an error among them stays its own row)."""
    steps = [
        _flow_step(1, "cli.train", None, 0, critical=True),
        _flow_step(2, "POST /training/start", 1, 1, critical=True),
        *(_flow_step(i, "GET", 1, 1) for i in (3, 4, 5, 7, 8)),
        _flow_step(6, "training.data_loading", 2, 2, critical=True),
        _flow_step(9, "GET", 1, 1, error=True),
    ]
    steps.sort(key=lambda s: s.start_ms)
    text = render_markdown(make_diagnosis(execution_flow=steps))
    flow = text[text.index("**Execution Flow**") : text.index("**Diagnosis**")].splitlines()[1:]
    flow = [line for line in flow if line]
    assert flow == [
        "1. ★ cli.train (worker) - 1.0ms",
        "2. ★ ↳ POST /training/start (worker) - 2.0ms",
        "3. ★ ↳ ↳ training.data_loading (worker) - 6.0ms",
        "4. ↳ GET (ktrdr-cli) × 5, 3.0ms–8.0ms each (folded)",
        "5. ↳ GET (ktrdr-cli) - 9.0ms [error]",
    ]


def test_markdown_folds_only_like_siblings_of_one_service():
    """Polls of the CLI and reads of the backend alternate by name but not by service: no
    run of three like siblings, nothing folded."""
    steps = [_flow_step(1, "cli.train", None, 0, critical=True)]
    for i in range(2, 8):
        step = _flow_step(i, "GET", 1, 1)
        if i % 2:
            step.service = "ktrdr-api"
        steps.append(step)
    text = render_markdown(make_diagnosis(execution_flow=steps))
    assert "folded" not in text
    assert text.count("↳ GET (") == 6


def test_markdown_flow_marks_a_call_answered_after_its_caller_gave_up():
    """The backend's POST to the IB host service timed out after 30 s; the host service's
    span of it ran 259 s: that row says how long it ran past its caller. A span of the same
    service as its parent is work the parent started in the background (KTRDR's
    data.download returns while the download goes on): not marked."""

    def step(i: int, parent: int | None, service: str, start: float, dur: float) -> FlowStep:
        return FlowStep(index=i, trace_id=TID, span_id=f"{i:016x}",
                        parent_id=None if parent is None else f"{parent:016x}",
                        service=service, span_name=f"s{i}", start_ms=start, duration_ms=dur,
                        self_time_ms=dur, depth=0 if parent is None else 1, critical=True,
                        error=False)

    steps = [
        step(1, None, "ktrdr-api", 0.0, 46.3),  # data.download
        step(2, 1, "ktrdr-api", 50.0, 30_043.0),  # its client call, in the background
        step(3, 2, "ktrdr-ib-host-service", 52.0, 259_001.0),  # the host service's span
        step(4, 2, "ktrdr-ib-host-service", 60.0, 30_500.0),  # within a second: clock skew
    ]
    text = render_markdown(make_diagnosis(execution_flow=steps))
    rows = {line.split(" (")[0].split()[-1]: line for line in text.splitlines() if " s" in line}
    assert rows["s3"].endswith("[ran 228,960ms past its caller]"), rows["s3"]
    assert "past its caller" not in rows["s2"] + rows["s4"] + rows["s1"]


def test_the_baseline_line_says_what_the_figure_is():
    """The Markdown read 'Baseline of this operation type: 20,939ms' two lines above
    'baseline median 5.2s': the figure was the time expected for the run's data rows (the
    median scaled to its size), not a baseline of the type. It says which it is."""
    from opdiag.diagnosis.result import BaselineRun, Comparison

    runs = [BaselineRun("op_a", 0, 5_200.0)]
    scaled = Comparison(
        runs=runs, wanted_runs=5, this_ms=20_100.0, baseline_ms=5_200.0,
        expected_ms=20_939.0, size=12_505,
    )
    d = make_diagnosis()
    d.baseline_ms, d.comparison = 20_939.0, scaled
    text = render_markdown(d)
    assert "- Baseline (the time expected for its 12,505 data rows): 20,939ms" in text
    assert "Baseline of this operation type" not in text
    d.baseline_ms, scaled.expected_ms = 5_200.0, None
    assert "- Baseline (the one good run it was compared with): 5200.0ms" in render_markdown(d)
    scaled.runs = runs * 3
    assert "(the median of the 3 good runs it was compared with)" in render_markdown(d)
    d.comparison = None  # a budget: no run behind it
    assert "- Baseline (what 'slow' judged it against): 5200.0ms" in render_markdown(d)
