"""The diagnosis page as a person reads it (issue 11, item 18): long durations in hours and
days, the solution right after the summary, waterfall bars that open the span in Jaeger, a
waterfall zoomed to the operation's own spans when a polling client's span dwarfs them, a 404
that does not talk about Jaeger for a file source, and one access-log line per request."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from api_support import FAILED_ID, ROOT_SPAN, TRACE_FAILED
from msgspec.structs import replace
from opdiag.api.app import create_app
from opdiag.diagnosis.result import FlowStep
from opdiag.render.links import span_url
from opdiag.settings import Settings
from opdiag.web import waterfall
from opdiag.web.filters import ms

pytest_plugins = ("api_fixtures",)

HOUR = 3_600_000.0
DAY = 24 * HOUR


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (840.0, "840 ms"),
        (12_400.0, "12.4 s"),
        (42 * 60_000.0, "42.0 min"),
        (3 * HOUR + 12 * 60_000, "3 h 12 min"),
        (14729 * 60_000.0, "10 d 5 h"),
        (2 * DAY, "2 d 0 h"),
    ],
)
def test_durations_read_in_hours_and_days(value, expected):
    assert ms(value) == expected


def _flow(long_ms: float) -> list[FlowStep]:
    """A client span of ``long_ms`` (the CLI polling) around a backend burst of 150 ms."""
    def step(i, name, service, parent, start, duration, **flags):
        return FlowStep(
            index=i, trace_id="t" * 32, span_id=f"{i:016x}",
            parent_id=None if parent is None else f"{parent:016x}", service=service,
            span_name=name, start_ms=start, duration_ms=duration, self_time_ms=duration,
            depth=0 if parent is None else 1, critical=flags.get("critical", False),
            error=flags.get("error", False), root_cause=flags.get("root_cause", False),
        )

    steps = [step(0, "cli.data_load", "ktrdr-cli", None, 0.0, long_ms, critical=True)]
    steps.append(step(1, "POST /api/v1/data/acquire/download", "ktrdr-api", 0, 170.0, 60.0))
    steps.append(step(2, "data.download", "ktrdr-api", 1, 175.0, 50.0))
    steps.append(step(3, "POST", "ktrdr-api", 2, 250.0, 3.0, error=True, root_cause=True))
    index = 4
    at = 400.0
    every = max(300.0, long_ms / 200)
    while at < long_ms - 10:  # the CLI polls until it gives up
        steps.append(step(index, "GET", "ktrdr-cli", 0, at, 5.0))
        steps.append(step(index + 1, "GET /api/v1/operations/{operation_id}", "ktrdr-api",
                          index, at + 1, 3.0))
        index += 2
        at += every
    return steps


NOISE = Settings().diagnosis.noise_span_patterns


def test_a_polling_client_does_not_squash_the_backend_spans():
    picture = waterfall.layout(_flow(14729 * 60_000.0), noise_patterns=NOISE)
    bars = {b.label: b for b in picture.bars}
    assert set(bars) == {"cli.data_load", "POST /api/v1/data/acquire/download", "data.download",
                         "POST"}
    area = picture.width - picture.label_width
    assert bars["POST /api/v1/data/acquire/download"].width > area / 4  # readable, not 0 px
    assert bars["data.download"].width > area / 5
    assert picture.zoom is not None
    assert picture.zoom.end_ms < 1000  # the burst, not the 10 days of polling
    client_bar = bars["cli.data_load"]
    assert "clipped" in client_bar.classes  # it runs on past the right edge
    assert client_bar.x + client_bar.width <= picture.width
    labels = [t.label for t in picture.ticks]
    assert all("d" not in label for label in labels)  # the axis is the zoomed one


def test_without_folded_polling_nothing_is_zoomed():
    assert waterfall.layout(_flow(14729 * 60_000.0)).zoom is None  # nothing folded


def test_own_spans_filling_the_flow_are_not_zoomed():
    steps = _flow(1000.0)
    steps[1] = replace(steps[1], start_ms=100.0, duration_ms=850.0)
    assert waterfall.layout(steps, noise_patterns=NOISE).zoom is None


def test_a_long_unzoomed_axis_reads_in_hours():
    work = FlowStep(index=1, trace_id="t" * 32, span_id="1" * 16, parent_id="0" * 16,
                    service="w", span_name="work", start_ms=0.0, duration_ms=14729 * 60_000.0,
                    self_time_ms=1.0, depth=1, critical=True, error=False)
    steps = [*_flow(14729 * 60_000.0)[:1], work]
    picture = waterfall.layout(steps)
    assert picture.zoom is None
    assert "min" not in picture.ticks[-1].label
    assert picture.ticks[-1].label == "10 d 5 h"


def test_the_demo_data_load_page_draws_the_backend_readably(demo_traces):
    settings = Settings.model_validate({"trace_paths": [str(demo_traces)]})
    client = create_app(settings).test_client()
    html = client.get("/operations/op_data_load_20261124_080330_1ed0b59b").get_data(as_text=True)
    widths = {
        label: float(width)
        for label, width in re.findall(
            r'<text x="[\d.]+" y="[\d.]+">([^<]+?) <tspan.*?<rect class="bar[^"]*"'
            r' data-span-id="[0-9a-f]+" x="[\d.]+" y="[\d.]+" width="([\d.]+)"',
            html,
            re.S,
        )
    }
    assert widths["data.download"] > 30, widths  # 2 px before the zoom
    assert 'id="flow-zoom"' in html


def test_solution_comes_right_after_the_summary(client):
    html = client.get(f"/operations/{FAILED_ID}").get_data(as_text=True)
    summary = html.index('id="summary"')
    solution = html.index('id="solution"')
    root_cause = html.index(">Root cause<")
    assert summary < solution < root_cause


def test_waterfall_bars_open_the_span_in_jaeger(client, settings):
    html = client.get(f"/operations/{FAILED_ID}").get_data(as_text=True)
    links = re.findall(r'<a class="span-link" href="([^"]+)"', html)
    assert len(links) == 4
    expected = span_url(settings.links, TRACE_FAILED, ROOT_SPAN).replace("&", "&amp;")
    assert expected in links


def test_a_404_page_for_files_does_not_talk_about_jaeger(demo_traces):
    settings = Settings.model_validate({"trace_paths": [str(demo_traces)]})
    client = create_app(settings).test_client()
    response = client.get("/operations/op_nothing_like_this")
    assert response.status_code == 404
    text = response.get_data(as_text=True)
    assert "Jaeger" not in text
    assert "trace files" in text


def test_a_404_page_for_jaeger_still_explains_the_window(client):
    response = client.get("/operations/op_nothing_like_this")
    assert response.status_code == 404
    assert "Jaeger" in response.get_data(as_text=True)


SERVE = """
import sys
from opdiag.api.server import serve
from opdiag.settings import load_settings
sys.exit(serve(load_settings(overrides={"server": {"port": 0, "threads": 2}})))
"""


def test_serve_logs_one_access_line_per_request(demo_traces, tmp_path: Path):
    env = {**os.environ, "OPDIAG_TRACES": str(demo_traces), "PYTHONUNBUFFERED": "1"}
    for name in ("JAEGER_URL", "OPDIAG_AUTH_TOKEN"):
        env.pop(name, None)
    err_path = tmp_path / "stderr.txt"
    with err_path.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-c", SERVE], stdout=subprocess.PIPE,
                                stderr=err, text=True, env=env)
    try:
        assert proc.stdout is not None
        base = None
        for line in proc.stdout:
            found = re.search(r"(http://127\.0\.0\.1:\d+)/\s*$", line)
            if found and base is None:
                base = found.group(1)
            if line.startswith("Stop with"):
                break
        assert base, err_path.read_text()
        requests = [("/healthz", 200), ("/api/v1/operations?limit=1", 200),
                    ("/operations/op_nothing_like_this", 404), ("/no/such/route", 404)]
        with httpx.Client(base_url=base, timeout=60) as http:
            for path, status in requests:
                assert http.get(path).status_code == status
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    lines = [line for line in err_path.read_text().splitlines() if "opdiag.access" in line]
    assert len(lines) == len(requests), lines
    for line, (path, status) in zip(lines, requests, strict=True):
        assert f'"GET {path}" {status}' in line, line
        assert re.search(r" \d+(\.\d+)? ms", line), line
