"""An operation three days older than now, in a real Jaeger, is found and diagnosed.

The real KTRDR corpus is moved in time so that a healthy training started three days before
the test runs, and the operation gets an id carrying that date (as KTRDR would have made it);
everything goes to a fresh real Jaeger over OTLP/HTTP. The 6-hour look-back does not reach
it, yet the CLI (no flags, ``--now``, ``--lookback``), the REST routes (with and without a
range) and the HTML page all find it — and a range that does not hold it says where it looked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from opdiag.api.app import create_app
from opdiag.cli.main import main as opdiag_main
from opdiag.settings import load_settings
from opdiag.timeutil import format_rfc3339, parse_now, wall_clock_us
from real_jaeger import REAL_RUN1, RealJaeger, send_otlp_json

pytest_plugins = ("real_jaeger_fixtures",)
pytestmark = pytest.mark.xdist_group("real-jaeger-old")

ORIGINAL = "op_training_20261204_154305_f6579e1a"
ORIGINAL_CREATED = parse_now("2026-12-04T15:43:05Z")
AGE = timedelta(days=3)
_TIME_KEYS = ("startTimeUnixNano", "endTimeUnixNano", "timeUnixNano")


def shifted(node: Any, delta_ns: int) -> Any:
    """An OTLP-JSON document with every timestamp moved by ``delta_ns``."""
    if isinstance(node, dict):
        return {
            k: str(int(v) + delta_ns) if k in _TIME_KEYS and v else shifted(v, delta_ns)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [shifted(v, delta_ns) for v in node]
    return node


class Old:
    """The moved corpus: the operation's new id, its time, and the moved files."""

    def __init__(self, tmp: Path) -> None:
        now_us = wall_clock_us()
        created_us = now_us - int(AGE.total_seconds() * 1_000_000)
        created_us -= created_us % 1_000_000
        delta_ns = (created_us - ORIGINAL_CREATED) * 1000
        stamp = datetime.fromtimestamp(created_us / 1e6, tz=UTC).strftime("%Y%m%d_%H%M%S")
        self.ident = f"op_training_{stamp}_f6579e1a"
        self.created_us = created_us
        self.dir = tmp / "traces"
        self.dir.mkdir()
        self.bodies: list[bytes] = []
        for path in sorted((REAL_RUN1 / "traces").glob("*.json")):
            text = path.read_text(encoding="utf-8").replace(ORIGINAL, self.ident)
            body = json.dumps(shifted(json.loads(text), delta_ns)).encode()
            (self.dir / path.name).write_bytes(body)
            self.bodies.append(body)

    def ms(self, offset: timedelta) -> int:
        return (self.created_us + int(offset.total_seconds() * 1_000_000)) // 1000


@pytest.fixture(scope="module")
def old(tmp_path_factory: pytest.TempPathFactory) -> Old:
    return Old(tmp_path_factory.mktemp("old-corpus"))


@pytest.fixture(scope="module")
def jaeger(
    jaeger_binary: Path, tmp_path_factory: pytest.TempPathFactory, old: Old
) -> Iterator[RealJaeger]:
    with RealJaeger(tmp_path_factory.mktemp("jaeger-old"), jaeger_binary) as real:
        send_otlp_json(real.otlp_http_url, old.bodies)
        yield real


@pytest.fixture(scope="module")
def from_files(old: Old) -> dict[str, Any]:
    """What the file source says of the moved operation."""
    from opdiag.render.json_render import render_json
    from opdiag.service import DiagnosisService
    from opdiag.sources.files import FileSource

    settings = load_settings(environ={}, overrides={"trace_paths": [str(old.dir)]})
    service = DiagnosisService(FileSource([old.dir]), settings)
    return json.loads(render_json(service.diagnose(old.ident)))


@pytest.fixture
def client(jaeger: RealJaeger) -> Iterator[FlaskClient]:
    settings = load_settings(environ={}, overrides={"jaeger": {"url": jaeger.query_url}})
    app = create_app(settings)
    app.testing = True
    with app.test_client() as test_client:
        yield test_client


def essentials(d: dict[str, Any]) -> tuple[Any, ...]:
    return (d["operation_id"], d["verdict"], d["root_cause"], d["bottleneck"], d["duration_ms"])


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = opdiag_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("JAEGER_URL", "OPDIAG_JAEGER_URL", "OPDIAG_JAEGER_API", "OPDIAG_CONFIG",
                "OPDIAG_JAEGER_LOOKBACK", "OPDIAG_TRACES"):
        monkeypatch.delenv(var, raising=False)


def test_the_operation_is_older_than_the_look_back(old: Old, from_files: dict[str, Any]):
    assert from_files["verdict"] == "healthy"
    assert wall_clock_us() - from_files["started_at_ms"] * 1000 > 70 * 3600 * 1_000_000


def test_the_cli_finds_it_by_the_date_in_its_id(
    jaeger: RealJaeger, old: Old, from_files: dict[str, Any], capsys: pytest.CaptureFixture[str]
):
    code, out, err = run_cli(
        capsys, "diagnose", old.ident, "--jaeger-url", jaeger.query_url, "--format", "json"
    )
    assert code == 0, err
    assert essentials(json.loads(out)) == essentials(from_files)


def test_the_cli_searches_around_now_and_the_look_back(
    jaeger: RealJaeger, old: Old, from_files: dict[str, Any], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
):
    """A trace id needs no window; the operations list searches before ``--now`` over the
    look-back, which ``--lookback`` and ``OPDIAG_JAEGER_LOOKBACK`` set."""
    trace_id = from_files["trace_ids"][0]
    code, out, err = run_cli(
        capsys, "diagnose", trace_id, "--jaeger-url", jaeger.query_url, "--format", "json"
    )
    assert code == 0, err
    assert essentials(json.loads(out)) == essentials(from_files)
    then = format_rfc3339(old.ms(timedelta(minutes=30)) * 1000)
    listing = ("operations", "--jaeger-url", jaeger.query_url, "--format", "json")
    code, out, err = run_cli(capsys, *listing)  # now, 6 h back: nothing of three days ago
    assert code == 0, err
    assert old.ident not in {row["operation_id"] for row in json.loads(out)}
    code, out, err = run_cli(capsys, *listing, "--now", then)
    assert code == 0, err
    assert old.ident in {row["operation_id"] for row in json.loads(out)}
    code, out, err = run_cli(capsys, *listing, "--lookback", "4d")
    assert code == 0, err
    assert old.ident in {row["operation_id"] for row in json.loads(out)}
    monkeypatch.setenv("OPDIAG_JAEGER_LOOKBACK", "80h")
    code, out, err = run_cli(capsys, *listing)
    assert code == 0, err
    assert old.ident in {row["operation_id"] for row in json.loads(out)}
    monkeypatch.setenv("OPDIAG_JAEGER_LOOKBACK", "soon")
    code, out, err = run_cli(capsys, *listing)
    assert code == 2 and "OPDIAG_JAEGER_LOOKBACK" in err


def test_the_rest_route_with_and_without_a_range(
    client: FlaskClient, old: Old, from_files: dict[str, Any]
):
    around = f"from={old.ms(-timedelta(hours=1))}&to={old.ms(timedelta(hours=1))}"
    for query in ("", f"?{around}"):
        for suffix in ("", "/flow", "/findings", "/solution"):
            response = client.get(f"/api/v1/operations/{old.ident}{suffix}{query}")
            assert response.status_code == 200, (suffix, query, response.get_json())
        row = client.get(f"/api/v1/operations/{old.ident}{query}").get_json()[0]
        assert (row["operation_id"], row["verdict"]) == (old.ident, from_files["verdict"])
    today = client.get(f"/api/v1/operations/{old.ident}?from=now-6h")
    assert today.status_code == 404
    assert "between" in today.get_json()["error"]  # it names where it searched


def test_the_page_and_the_links_to_it(client: FlaskClient, old: Old, from_files: dict[str, Any]):
    page = client.get(f"/operations/{old.ident}")
    assert page.status_code == 200
    assert from_files["verdict"] in page.get_data(as_text=True)
    listed = client.get(
        f"/api/v1/operations?from={old.ms(-timedelta(hours=1))}&to={old.ms(timedelta(hours=2))}"
    ).get_json()
    row = next(r for r in listed if r["operation_id"] == old.ident)
    link = urlsplit(row["diagnosis_url"])
    assert link.query.startswith("from=")
    linked = client.get(f"{link.path}?{link.query}")
    assert linked.status_code == 200
    assert f"verdict-{from_files['verdict']}" in linked.get_data(as_text=True)
