"""The diagnosis page in real headless Chromium, served by waitress as ``opdiag serve`` does:
the root-cause span is the highlighted one, the links point at the right span and trace, and
a ``<script>`` from a trace is shown as text and never runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from api_support import (
    XSS,
    XSS_ERROR_SPAN,
    XSS_OPERATION,
    XSS_TRACE,
    serving,
    write_xss_traces,
)
from conftest import REAL_KTRDR
from opdiag.api.server import ServerThread, build_server
from opdiag.settings import Settings, default_demo_traces

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOT = Path("/tmp/opdiag-diagnosis-page.png")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]


def _demo_failed_id() -> str | None:
    """A failed operation of the committed demo corpus, if the corpus is there."""
    expected = default_demo_traces() / "expected.yaml"
    if not expected.exists():
        return None
    data = yaml.safe_load(expected.read_text(encoding="utf-8"))
    for ident, op in (data.get("operations") or {}).items():
        if op.get("verdict") == "failed":
            return str(ident)
    return None


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[ServerThread, Any]]:
    fixtures = tmp_path_factory.mktemp("xss")
    write_xss_traces(fixtures)
    paths = [fixtures]
    if _demo_failed_id() is not None:
        paths.insert(0, default_demo_traces())
    settings = Settings.model_validate(
        {"trace_paths": [str(p) for p in paths], "server": {"port": 0, "threads": 4}}
    )
    waitress_server, state = build_server(settings)
    running = ServerThread(waitress_server).start()
    try:
        yield running, state
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser) -> Iterator[Any]:
    context = browser.new_context(java_script_enabled=True)
    new_page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    new_page.on("dialog", on_dialog)
    try:
        yield new_page
    finally:
        context.close()
    assert dialogs == [], f"a script from a trace ran: {dialogs}"


def _open(page: Any, base: str, ident: str) -> None:
    response = page.goto(f"{base}/operations/{ident}")
    assert response is not None and response.status == 200
    assert page.title().startswith("opdiag")


@pytest.mark.parametrize("which", ["demo", "fixture"])
def test_failed_operation_page_highlights_the_root_cause(server, page, which):
    running, state = server
    ident = _demo_failed_id() if which == "demo" else XSS_OPERATION
    if ident is None:
        pytest.skip("demo corpus not committed yet")
    diagnosis = state.service.diagnose(ident)
    assert diagnosis.root_cause is not None
    root = diagnosis.root_cause
    _open(page, running.url, ident)

    highlighted = page.locator("svg#waterfall rect.root-cause")
    assert highlighted.count() == 1
    assert highlighted.get_attribute("data-span-id") == root.span_id
    assert page.locator("#root-cause").get_attribute("data-span-id") == root.span_id
    assert page.locator("#verdict").inner_text() == diagnosis.verdict

    jaeger = urlsplit(page.locator("#link-jaeger").get_attribute("href"))
    assert jaeger.path == f"/trace/{root.trace_id}"
    assert parse_qs(jaeger.query) == {"uiFind": [root.span_id]}

    explore = urlsplit(page.locator("#link-explore").get_attribute("href"))
    assert explore.path == "/explore"
    panes = json.loads(parse_qs(explore.query)["panes"][0])
    (pane,) = panes.values()
    uid = state.settings.links.jaeger_datasource_uid
    assert pane["datasource"] == uid
    assert pane["queries"][0]["datasource"]["uid"] == uid
    assert pane["queries"][0]["query"] == root.trace_id

    if which == "demo":
        page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_script_in_a_span_attribute_stays_text(server, page):
    running, state = server
    diagnosis = state.service.diagnose(XSS_OPERATION)
    assert diagnosis.root_cause is not None
    assert diagnosis.root_cause.span_id == XSS_ERROR_SPAN
    assert diagnosis.root_cause.trace_id == XSS_TRACE
    _open(page, running.url, XSS_OPERATION)
    body = page.locator("body").inner_text()
    assert XSS in body  # shown, as text
    assert page.evaluate("document.querySelectorAll('script').length") == 0
    assert page.evaluate("typeof window.__opdiag_xss") == "undefined"
    if not SCREENSHOT.exists():
        page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_index_page_links_to_the_diagnosis(server, page):
    running, _ = server
    response = page.goto(f"{running.url}/")
    assert response is not None and response.status == 200
    link = page.locator(f"a[href^='/operations/{XSS_OPERATION}?from=']")  # with its range
    assert link.count() == 1
    link.click()
    page.wait_for_load_state()
    assert page.locator("#operation-id").inner_text() == XSS_OPERATION


@pytest.fixture(scope="module")
def real_server() -> Iterator[ServerThread]:
    """The real KTRDR recording (run1), served as ``opdiag serve --traces`` serves it."""
    with serving(REAL_KTRDR / "run1" / "traces", threads=4) as running:
        yield running


@pytest.mark.slow
@pytest.mark.parametrize(
    ("ident", "now"),
    [
        # a lost worker judged in flight: its findings' evidence and span hold whole URLs
        ("op_backtesting_20261204_155333_db0629d4", "2026-12-04T15:56:00Z"),
        ("op_data_load_20261204_154455_734c9af6", "2026-12-04T16:10:00Z"),
    ],
)
def test_a_page_stays_within_the_window(real_server, page, ident: str, now: str) -> None:
    """Long URLs and ids in the findings' cells wrap: the page has no sideways scroll at a
    laptop's width (the Evidence column ran off the right edge)."""
    page.set_viewport_size({"width": 1280, "height": 900})
    response = page.goto(f"{real_server.url}/operations/{ident}?now={now}")
    assert response is not None and response.status == 200
    assert page.locator("#findings tbody tr").count() >= 1
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
