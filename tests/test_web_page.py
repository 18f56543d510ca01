"""The HTML diagnosis page and index, rendered through Flask's test client: escaping of every
trace value, the waterfall's marks (root cause, bottleneck, critical path), links, caps."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from api_support import (
    BOTTLENECK_SPAN,
    FAILED_ID,
    ROOT_SPAN,
    SLOW_ID,
    SOURCE_ERRORS,
    TRACE_FAILED,
    XSS,
)
from opdiag.diagnosis.result import FlowStep, copied
from opdiag.timeutil import TimeRange
from opdiag.web import waterfall
from opdiag.web.filters import safe_url
from opdiag.web.pages import CSP

pytest_plugins = ("api_fixtures",)


class Elements(HTMLParser):
    """Collects (tag, attrs) of every start tag, and the text of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag: str, **wanted: str) -> list[dict[str, str | None]]:
        """Elements by tag and attributes; ``class`` matches one of the element's classes."""

        def matches(attrs: dict[str, str | None], key: str, value: str) -> bool:
            actual = attrs.get(key.replace("_", "-")) or ""
            return value in actual.split() if key == "class" else actual == value

        return [
            attrs
            for name, attrs in self.elements
            if name == tag and all(matches(attrs, k, v) for k, v in wanted.items())
        ]


def page(client, ident: str) -> tuple[str, Elements]:
    response = client.get(f"/operations/{ident}")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    parsed = Elements()
    parsed.feed(html)
    return html, parsed


def test_trace_values_stay_text(client):
    html, parsed = page(client, FAILED_ID)
    assert "<script" not in html.lower()
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5  # summary, evidence…
    assert not [tag for tag, _ in parsed.elements if tag == "script"]
    assert XSS in "".join(parsed.text)  # shown to the reader, as text


def test_script_is_forbidden_by_csp(client):
    response = client.get(f"/operations/{FAILED_ID}")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_verdict_summary_and_root_cause(client):
    html, parsed = page(client, FAILED_ID)
    (verdict,) = parsed.find("span", id="verdict")
    assert verdict["data-verdict"] == "service_unreachable"
    assert "verdict-service_unreachable" in (verdict["class"] or "")
    (root,) = parsed.find("p", id="root-cause")
    assert root["data-span-id"] == ROOT_SPAN
    assert "ConnectionRefusedError" in html
    assert parsed.find("table", id="root-cause-evidence")


def test_findings_say_which_other_rules_fired_not_their_json(client):
    """The winning finding's ``also`` was printed as raw JSON (1,500 characters of summaries
    for run1's data load); the page lists the rules and their verdicts, as the API rows do."""
    html, parsed = page(client, FAILED_ID)
    assert parsed.find("table", id="findings")
    assert "also=connection-error (service_unreachable)" in html
    assert "rule_id" not in html
    from opdiag.web.filters import evidence

    also = [{"rule_id": "connection-error", "verdict": "service_unreachable", "summary": "x"}]
    assert evidence(also, "also") == "connection-error (service_unreachable)"
    assert evidence(["a", 1], "other") == '["a", 1]'


def test_root_cause_tables_keep_attributes_apart_from_what_opdiag_worked_out():
    from opdiag.web.filters import attributes, derived

    evidence = {"http.url": "u", "attr:where": "w", "worker.since": "t", "op:symbol": "s"}
    # an attribute by the name the span carries ('attr:' keeps it apart from opdiag's 'where')
    assert [k for k, _ in attributes(evidence)] == ["http.url", "where"]
    assert [k for k, _ in derived(evidence)] == ["op:symbol", "worker.since"]
    # what only phrases a template is not shown as evidence (it repeated what is)
    phrasing = {"worker.failed_checks": 33, "worker.failed_checks_text": "33 failed checks",
                "worker.on": " on w at a", "span.name": "GET", "ident": "op_1"}
    assert derived(phrasing) == [("worker.failed_checks", 33)] and not attributes(phrasing)


def test_waterfall_marks_root_cause_critical_path_and_axis(client):
    _, parsed = page(client, FAILED_ID)
    bars = parsed.find("rect", **{"class": "bar"})
    assert len(bars) == 4
    roots = [b for b in bars if "root-cause" in (b["class"] or "").split()]
    assert [b["data-span-id"] for b in roots] == [ROOT_SPAN]
    critical = [b for b in bars if "critical" in (b["class"] or "").split()]
    assert len(critical) == 3
    # bars positioned by offset and duration: the 900 ms root spans the whole area
    first = bars[0]
    assert float(first["x"]) == waterfall.LABEL_WIDTH
    area = waterfall.WIDTH - waterfall.LABEL_WIDTH - waterfall.RIGHT_PAD
    assert float(first["width"]) == pytest.approx(area)
    assert float(bars[2]["x"]) == pytest.approx(waterfall.LABEL_WIDTH + 80 / 900 * area, abs=0.01)
    axis_labels = [t for t in parsed.find("text") if t.get("text-anchor")]
    assert len(axis_labels) == waterfall.TICKS + 1


def test_bottleneck_is_marked(client):
    html, parsed = page(client, SLOW_ID)
    marked = [
        b for b in parsed.find("rect", **{"class": "bar"}) if "bottleneck" in (b["class"] or "")
    ]
    assert len(marked) == 1
    (bottleneck,) = parsed.find("p", id="bottleneck")
    assert bottleneck["data-span-id"] == BOTTLENECK_SPAN
    assert "81 %" in html


def test_links_come_from_the_diagnosis(client, service):
    _, parsed = page(client, FAILED_ID)
    links = service.diagnoses[FAILED_ID].links
    assert parsed.find("a", id="link-jaeger")[0]["href"] == links.jaeger
    assert links.jaeger.endswith(f"/trace/{TRACE_FAILED}?uiFind={ROOT_SPAN}")
    assert parsed.find("a", id="link-explore")[0]["href"] == links.grafana_explore
    assert parsed.find("a", id="link-dashboard")[0]["href"] == links.grafana_dashboard


def test_the_page_searches_its_range_and_passes_it_on(client, service):
    response = client.get(f"/operations/{FAILED_ID}?from=1764000000000&to=1764003600000")
    assert response.status_code == 200
    assert service.calls[-1][1]["window"] == TimeRange(1764000000000000, 1764003600000000)
    parsed = Elements()
    parsed.feed(response.get_data(as_text=True))
    json_link = urlsplit(parsed.find("a", id="link-json")[0]["href"])
    assert parse_qs(json_link.query) == {"from": ["1764000000000"], "to": ["1764003600000"]}
    client.get(f"/operations/{FAILED_ID}")
    assert service.calls[-1][1]["window"] is None  # no range: the id's date or the look-back
    assert client.get(f"/operations/{FAILED_ID}?from=later").status_code == 400


def test_solution_commands_in_pre(client):
    _, parsed = page(client, FAILED_ID)
    assert len(parsed.find("pre", **{"class": "command"})) == 1


def test_unknown_operation_is_an_html_404_page(client):
    response = client.get("/operations/op_nope")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    parsed = Elements()
    parsed.feed(html)
    assert "404" in "".join(parsed.text) and "Not found" in html
    assert parsed.find("span", id="error-ident")  # names what was asked for
    assert parsed.find("a", id="link-index")
    assert response.headers["Content-Security-Policy"] == CSP


def test_unknown_id_stays_a_json_404_in_the_api(client):
    response = client.get("/api/v1/operations/op_nope")
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert "op_nope" in response.get_json()["error"]


def test_unknown_id_on_the_page_is_escaped(client):
    response = client.get("/operations/op_%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "<img" not in html.lower()
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


@pytest.mark.parametrize("error_status", SOURCE_ERRORS, ids=["unavailable", "timeout"])
@pytest.mark.parametrize("route", [f"/operations/{FAILED_ID}", "/"])
def test_jaeger_down_on_a_page_is_an_html_502_or_504(client, service, route, error_status):
    error, status = error_status
    service.raise_error = error
    response = client.get(route)
    assert response.status_code == status
    assert response.mimetype == "text/html"
    parsed = Elements()
    parsed.feed(response.get_data(as_text=True))
    (message,) = parsed.find("p", id="error-message")
    assert message["data-status"] == str(status)
    assert error.message in "".join(parsed.text)
    assert "Traceback" not in response.get_data(as_text=True)


def test_bad_id_on_a_page_is_an_html_400(client):
    response = client.get("/operations/" + "x" * 5000)
    assert response.status_code == 400
    assert response.mimetype == "text/html"


def test_index_lists_operations_with_verdicts(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<script" not in html.lower()
    parsed = Elements()
    parsed.feed(html)
    hrefs = [a["href"] for a in parsed.find("a")]
    for ident in (FAILED_ID, SLOW_ID):  # each link carries its operation's time range
        link = next(h for h in hrefs if h.startswith(f"/operations/{ident}?"))
        assert set(parse_qs(urlsplit(link).query)) == {"from", "to"}
    verdicts = [s for s in parsed.find("span") if "verdict" in (s.get("class") or "")]
    assert len(verdicts) == 2
    assert re.search(r"verdict-slow", html)


def _steps(n: int) -> list[FlowStep]:
    return [
        FlowStep(
            index=i,
            trace_id="t",
            span_id=f"{i:016x}",
            parent_id=None,
            service="svc",
            span_name=f"span {i}",
            start_ms=float(i),
            duration_ms=1.0,
            self_time_ms=1.0,
            depth=0,
            critical=False,
            error=False,
            root_cause=i == n - 1,
        )
        for i in range(n)
    ]


def test_waterfall_caps_rows_but_keeps_the_root_cause():
    picture = waterfall.layout(_steps(1000), truncated=50, cap=100)
    assert len(picture.bars) == 101
    assert picture.bars[-1].span_id == f"{999:016x}"
    assert "root-cause" in picture.bars[-1].classes
    assert picture.omitted == 50 + 899


def test_waterfall_of_nothing():
    picture = waterfall.layout([])
    assert picture.bars == [] and picture.omitted == 0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://jaeger:16686/trace/x", "http://jaeger:16686/trace/x"),
        ("/operations/x", "/operations/x"),
        ("javascript:alert(1)", "#"),
        ("//evil.example/x", "#"),
        ("data:text/html,x", "#"),
        (None, "#"),
    ],
)
def test_safe_url(url, expected):
    assert safe_url(url) == expected


def _step(i: int, name: str, parent: int | None, **flags: bool) -> FlowStep:
    return FlowStep(
        index=i,
        trace_id="t",
        span_id=f"{i:016x}",
        parent_id=None if parent is None else f"{parent:016x}",
        service="svc",
        span_name=name,
        start_ms=float(i),
        duration_ms=1.0,
        self_time_ms=1.0,
        depth=0 if parent is None else 1,
        critical=flags.get("critical", False),
        error=flags.get("error", False),
        root_cause=flags.get("root_cause", False),
    )


def test_waterfall_folds_polling_but_keeps_what_matters():
    patterns = ["GET /api/v1/operations/*", "* http send"]
    steps = [
        _step(0, "cli.train", None, critical=True),
        _step(1, "GET", 0),  # httpx polling wrapper: folded with its server span
        _step(2, "GET /api/v1/operations/{operation_id}", 1),
        _step(3, "GET /api/v1/operations/{operation_id} http send", 2),
        _step(4, "training.indicators", 0, critical=True),
        _step(5, "GET", 0),  # a failed poll is evidence: kept
        _step(6, "GET /api/v1/operations/{operation_id}", 5, error=True),
        _step(7, "POST", 0),  # a wrapper around a real call stays
        _step(8, "POST /backtests/start", 7),
    ]
    picture = waterfall.layout(steps, noise_patterns=patterns)
    drawn = [b.label for b in picture.bars]
    assert drawn == [
        "cli.train",
        "training.indicators",
        "GET /api/v1/operations/{operation_id}",
        "POST",
        "POST /backtests/start",
    ]
    assert picture.noise_hidden == 4
    assert waterfall.layout(steps).noise_hidden == 0


def test_comparison_bars_side_by_side_per_phase(client):
    html, parsed = page(client, SLOW_ID)
    rows = parsed.find("g", **{"class": "phase-row"})
    assert [r["data-status"] for r in rows] == ["slower", "missing"]
    mine = parsed.find("rect", **{"class": "this"})
    base = parsed.find("rect", **{"class": "base"})
    assert len(mine) == len(base) == 2
    # One shared scale: 800 ms (the largest value) fills the bar area, 200 ms a quarter.
    from opdiag.web import comparison_chart as chart

    area = chart.WIDTH - chart.LABEL_WIDTH - chart.VALUE_WIDTH - 16
    assert float(mine[0]["width"]) == pytest.approx(area)
    assert float(base[0]["width"]) == pytest.approx(area / 4)
    assert float(mine[1]["width"]) == 0  # the missing phase: nothing this run
    assert "slower" in (mine[0]["class"] or "").split()
    # The baseline runs are named and link to their own diagnosis pages.
    links = [a.get("href") or "" for a in parsed.find("a")]
    for run in ("good1", "good2"):  # each link carries the run's own time
        good = [h for h in links if h.startswith(f"/operations/op_training_20251124_{run}?")]
        assert good and set(parse_qs(urlsplit(good[0]).query)) == {"from", "to"}
    assert "training.indicators +600ms" in html
    # a run taken from after this one says so; the comparison's note is shown
    assert parsed.find("p", id="comparison-runs")
    assert html.count("later than this run") == 1
    assert html.index("later than this run") > html.index("op_training_20251124_good3")
    assert parsed.find("p", id="comparison-note")
    # Phase names from traces stay text.
    assert "<script" not in html.lower()
    assert f"(after {XSS})" in "".join(parsed.text)


def test_the_total_says_what_the_comparison_makes_of_it(client, service):
    """A run that stopped is not slower in total (run1's killed backtest read 'change
    +6.1 min (+2899 %)'): the page says it stopped, with no change."""
    import msgspec
    from opdiag.diagnosis.result import copied

    _, parsed = page(client, SLOW_ID)
    (total,) = parsed.find("p", id="comparison-total")
    assert total["data-status"] == "slower"  # a comparison made by hand: judged by its values
    d = service.diagnoses[SLOW_ID]
    stopped = msgspec.structs.replace(
        d.comparison, status="stopped", change_ms=None, change_pct=None
    )
    service.diagnoses[SLOW_ID] = copied(d, comparison=stopped)
    html, parsed = page(client, SLOW_ID)
    (total,) = parsed.find("p", id="comparison-total")
    assert total["data-status"] == "stopped"
    said = html.split('id="comparison-total"')[1].split("Most of the change")[0]
    assert "This run stopped after" in said and "change" not in said and "%" not in said


def test_no_comparison_section_without_a_comparison(client):
    html, parsed = page(client, FAILED_ID)
    assert not parsed.find("div", id="comparison")
    assert "What changed" not in html


@pytest.mark.parametrize("left_out", [0, 1500])
def test_the_folded_polling_note_says_whether_the_flow_rows_hold_every_span(
    client, service, left_out
):
    """A 100k-span training's flow is cut at 2,000 rows: the note under its waterfall said
    'the flow rows list every span' all the same."""
    from opdiag.diagnosis.result import copied

    steps = [
        _step(0, "cli.train", None, critical=True),
        _step(1, "GET", 0),
        _step(2, "GET /api/v1/operations/{operation_id}", 1),
        _step(3, "training.indicators", 0, critical=True),
    ]
    d = service.diagnoses[SLOW_ID]
    service.diagnoses[SLOW_ID] = copied(
        d, execution_flow=steps, execution_flow_truncated=left_out
    )
    html, _ = page(client, SLOW_ID)
    note = html.split('id="flow-noise-hidden"')[1].split("</p>")[0]
    if left_out:
        assert "every span" not in note and "4 spans" in note and "1500 more left out" in note
    else:
        assert "list every span" in note


@pytest.mark.parametrize(
    ("verdict", "said"),
    [
        ("cancelled", "None: it was cancelled, nothing failed"),
        ("healthy", "None: nothing failed."),
        ("slow", "No single span caused this"),
    ],
)
def test_a_page_without_a_root_cause_says_why(client, service, verdict: str, said: str):
    """The page says what the Markdown says (``Diagnosis.without_root_cause``)."""
    service.diagnoses[SLOW_ID] = copied(service.diagnoses[SLOW_ID], verdict=verdict)
    html, _ = page(client, SLOW_ID)
    (note,) = re.findall(r'<p class="note" id="no-root-cause">([^<]*)</p>', html)
    assert note.startswith(said), note


def test_the_page_says_what_its_baseline_figure_is(client, service):
    """The page says what the Markdown says (``Diagnosis.baseline_basis``): a figure
    scaled to the run's data is not the median of its runs."""
    import msgspec

    d = service.diagnoses[SLOW_ID]
    c = msgspec.structs.replace(d.comparison, expected_ms=20_939.0, size=12_505)
    service.diagnoses[SLOW_ID] = copied(d, comparison=c, baseline_ms=20_939.0)
    html, _ = page(client, SLOW_ID)
    (said,) = re.findall(r'<dd id="baseline">([^<]*)</dd>', html)
    assert said.endswith("(the time expected for its 12,505 data rows)"), said
