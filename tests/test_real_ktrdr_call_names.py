"""How run1's HTTP client spans are named where a person reads them. httpx names a client
span by its method only ("POST"): the Markdown's root cause and execution flow, and the
page's root cause and waterfall, said "POST" four times for four calls to two services. They
name the call (``POST http://localhost:5001/data/validate``) as the bottleneck did; the span
name in the JSON stays the span's own (cases.yaml matches ``span: POST``)."""

from __future__ import annotations

import json
import re

import pytest
from conftest import REAL_KTRDR
from opdiag.api.app import create_app
from opdiag.cli.main import main
from opdiag.settings import load_settings

RUN = REAL_KTRDR / "run1"
TRACES = str(RUN / "traces")
NOW = "2026-12-04T16:10:00Z"
DISPATCH = "ba9b00b84b794c4b36caeec9527bc209"  # the backend's POST to the killed :5003
DATA_LOAD = "op_data_load_20261204_154455_734c9af6"  # four POSTs to the host service time out

pytestmark = pytest.mark.slow


def _markdown(ident: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["diagnose", ident, "--traces", TRACES, "--now", NOW, "--format", "markdown"]) == 0
    return capsys.readouterr().out


def test_the_markdown_names_the_calls_a_client_span_made(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = _markdown(DISPATCH, capsys)
    assert "Span POST http://127.0.0.1:5003/backtests/start in ktrdr-api" in text, text
    assert "POST http://127.0.0.1:5003/backtests/start (ktrdr-api) - " in text, text
    assert "on POST http://127.0.0.1:5003/backtests/start:" in text, text
    flow = _markdown(DATA_LOAD, capsys)
    assert flow.count("POST http://localhost:5001/data/validate (ktrdr-api) - ") == 4, flow
    assert "POST (ktrdr-api)" not in flow, flow


def test_the_json_keeps_the_span_name_and_adds_the_call(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["diagnose", DISPATCH, "--traces", TRACES, "--now", NOW, "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    rc = d["root_cause"]
    assert rc["span_name"] == "POST", rc
    assert rc["target"] == "POST http://127.0.0.1:5003/backtests/start", rc


def test_the_page_names_the_calls_a_client_span_made() -> None:
    client = create_app(load_settings(environ={"OPDIAG_TRACES": TRACES})).test_client()
    page = client.get(f"/operations/{DISPATCH}?now={NOW}").get_data(as_text=True)
    assert '<span class="mono">POST http://127.0.0.1:5003/backtests/start</span>' in page
    rows = client.get(f"/api/v1/operations?now={NOW}").get_json()
    (row,) = [r for r in rows if r["trace_id"] == DISPATCH]
    assert row["root_cause"] == "ktrdr-api: POST http://127.0.0.1:5003/backtests/start", row
    assert "ktrdr-api: POST http://127.0.0.1:5003/backtests/start — " in page


def test_the_page_says_what_ran_past_its_caller_and_keeps_the_operations_time_scale() -> None:
    """The data load ran 2.1 min; the IB host service held each of its POST /data/validate
    for 4.3 min, 3.8 min past the backend's 30 s timeout. The Markdown says "[ran 228,962ms
    past its caller]"; the page showed "4.3 min (self 4.3 min)" with its time axis to 5.3 min
    and said nothing. Now the axis ends with the operation's own spans, the bars are cut
    there, and the page says which ran past their caller."""
    client = create_app(load_settings(environ={"OPDIAG_TRACES": TRACES})).test_client()
    page = client.get(f"/operations/{DATA_LOAD}?now={NOW}").get_data(as_text=True)
    assert 'id="flow-outlived"' in page, page
    assert "POST /data/validate on ktrdr-ib-host-service ran 3.8 min past its caller" in page
    axis = re.findall(r'<text x="[^"]*" y="11"[^>]*>([^<]*)</text>', page)
    assert axis[-1] == "2.1 min", axis


def test_a_short_request_is_not_zoomed_as_if_it_polled() -> None:
    """A 27 ms 503 (the dead :5003): its server span's own http send events were folded as
    noise, which made the span "waiting" and the page zoomed to +22 ms – +27 ms saying it
    "runs on past the edges (waiting, with the polling folded)". Nothing polled."""
    client = create_app(load_settings(environ={"OPDIAG_TRACES": TRACES})).test_client()
    page = client.get(f"/operations/1880c513804fedc10d7c942896c05f57?now={NOW}")
    text = page.get_data(as_text=True)
    assert 'id="flow-zoom"' not in text and "polling folded" not in text, text
