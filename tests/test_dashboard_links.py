"""Links from the generated dashboards to opdiag's page (issue 11, item 16): an operation row
links to the page through its own ``diagnosis_url`` (the server's configured public URL, not
the generator's default); values put into link URLs are percent-encoded; an id holding ``/``,
``&``, ``#`` or a space survives a click, and is reachable from ``/``. Clicks are simulated as
Grafana interpolates a data link, over the rows the API really answers."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from api_support import failed_diagnosis
from msgspec.structs import replace
from opdiag.render.links import build_links
from opdiag.settings import Settings
from opdiag_dashboards.render import render_dashboards

pytest_plugins = ("api_fixtures",)

HOSTILE_ID = "op/x&y#z ü?=1"
PUBLIC = "https://opdiag.example.org/diag"


def _links(node: Any, panel: dict[str, Any] | None = None) -> list[tuple[dict, dict | None]]:
    found = []
    if isinstance(node, dict):
        if "type" in node and "targets" in node:
            panel = node
        if "url" in node and "title" in node:
            found.append((node, panel))
        for value in node.values():
            found += _links(value, panel)
    elif isinstance(node, list):
        for item in node:
            found += _links(item, panel)
    return found


def _grafana(url: str, raw: str, row: dict[str, Any], variables: dict[str, str]) -> str:
    """Grafana's data-link interpolation for what the dashboards use."""

    def one(match: re.Match[str]) -> str:
        name, fmt = match.group(1), match.group(2)
        if name == "__value.raw":
            value = raw
        elif name.startswith("__data.fields."):
            value = str(row[name.removeprefix("__data.fields.")])
        elif name == "__url_time_range":
            return "from=1&to=2"
        else:
            value = variables[name]
        if fmt == "percentencode":
            return quote(value, safe="")
        assert fmt is None, fmt
        return value

    return re.sub(r"\$\{([\w.]+)(?::(\w+))?\}", one, url)


@pytest.mark.parametrize("json_datasource", ["infinity", "simpod"])
def test_no_link_hard_codes_the_page_host(json_datasource):
    settings = Settings.model_validate({"links": {"opdiag_url": PUBLIC}})
    default_host = Settings().links.opdiag_url
    for dash in render_dashboards(settings, json_datasource).values():
        for link, _ in _links(dash):
            assert default_host not in link["url"], link


@pytest.mark.parametrize("json_datasource", ["infinity", "simpod"])
def test_values_in_link_urls_are_percent_encoded(json_datasource):
    for dash in render_dashboards(Settings(), json_datasource).values():
        for link, _ in _links(dash):
            url = link["url"]
            if link.get("internal") or url in ("${__value.raw}", "${__data.fields.diagnosis_url}"):
                continue  # a whole URL from opdiag's row, or a query, not a URL part
            for name, fmt in re.findall(r"\$\{([\w.]+)(?::(\w+))?\}", url):
                if name != "__url_time_range":
                    assert fmt == "percentencode", (name, url)


@pytest.mark.parametrize("json_datasource", ["infinity", "simpod"])
def test_operation_rows_link_to_their_own_diagnosis_url(json_datasource):
    checked = 0
    for dash in render_dashboards(Settings(), json_datasource).values():
        for link, panel in _links(dash):
            if link["url"] != "${__data.fields.diagnosis_url}":
                continue
            assert panel is not None
            target = panel["targets"][0]
            if json_datasource == "infinity":
                assert "diagnosis_url" in [c["selector"] for c in target["columns"]]
            organize = [t for t in panel["transformations"] if t["id"] == "organize"]
            assert not organize[0]["options"]["excludeByName"].get("diagnosis_url")
            hidden = [
                o for o in panel["fieldConfig"]["overrides"]
                if o["matcher"]["options"] == "diagnosis_url"
                and {"id": "custom.hidden", "value": True} in o["properties"]
            ]
            assert hidden, panel["title"]
            checked += 1
    assert checked >= 3  # Operations, Worker Status, Diagnosis summary


@pytest.fixture
def hostile(service, settings):
    d = replace(failed_diagnosis(settings), operation_id=HOSTILE_ID)
    d.links = build_links(d, Settings.model_validate({"links": {"opdiag_url": PUBLIC}}).links)
    service.diagnoses = {HOSTILE_ID: d}
    return d


def _follow(client, url: str) -> int:
    assert url.startswith(PUBLIC + "/"), url
    path = urlsplit(url).path[len(urlsplit(PUBLIC).path):]
    return client.get(path).status_code


@pytest.mark.parametrize("json_datasource", ["infinity", "simpod"])
def test_clicking_a_hostile_id_reaches_its_page_and_dashboard(
    client, hostile, json_datasource
):
    [row] = client.get("/api/v1/operations").get_json()
    assert row["operation_id"] == HOSTILE_ID
    settings = Settings.model_validate({"links": {"opdiag_url": PUBLIC}})
    clicked = 0
    for dash in render_dashboards(settings, json_datasource).values():
        for link, panel in _links(dash):
            if link.get("internal") or panel is None:
                continue
            url = _grafana(link["url"], HOSTILE_ID, row, {"operation_id": HOSTILE_ID})
            if url.startswith("/d/"):
                params = dict(parse_qsl(urlsplit(url).query))
                if "var-operation_id" in params:
                    assert params["var-operation_id"] == HOSTILE_ID, url
                    clicked += 1
            elif url.startswith(PUBLIC):
                assert _follow(client, url) == 200, url
                clicked += 1
    assert clicked >= 6


def test_the_simpod_frame_links_use_the_row_and_encode(client, hostile):
    body = {"targets": [{"target": "operations", "refId": "A"}]}
    [frame] = client.post("/simpod/query", json=body).get_json()
    fields = {f["name"]: f for f in frame["fields"]}
    row = {name: f["values"][0] for name, f in fields.items()}
    links = fields["operation_id"]["config"]["links"]
    urls = [_grafana(link["url"], HOSTILE_ID, row, {}) for link in links]
    assert any(u.startswith(PUBLIC) and _follow(client, u) == 200 for u in urls), urls
    dashboard = next(u for u in urls if u.startswith("/d/"))
    assert dict(parse_qsl(urlsplit(dashboard).query))["var-operation_id"] == HOSTILE_ID


def test_an_id_with_a_slash_is_reachable_from_the_index(client, hostile):
    page = client.get("/").get_data(as_text=True)
    hrefs = re.findall(r'href="(/operations/[^"]+)"', page)
    assert hrefs
    from html import unescape

    for href in hrefs:
        response = client.get(unescape(href))
        assert response.status_code == 200, href
        assert "op/x&amp;y#z ü?=1" in response.get_data(as_text=True)


@pytest.mark.parametrize("suffix", ["", "/flow", "/findings", "/solution"])
def test_the_api_reaches_an_id_with_a_slash(client, hostile, suffix):
    response = client.get("/api/v1/operations/" + quote(HOSTILE_ID, safe="/") + suffix)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()
