"""How each kind of client reaches opdiag when ``OPDIAG_AUTH_TOKEN`` is set (issue 11, items
13 and 17): Grafana's datasource with the bearer header, a browser on the pages with HTTP
Basic (the token as the password) or open pages, Prometheus on ``/metrics`` with the token
from the generated scrape config (a real Prometheus scraping a real opdiag), and the open
probes that tell an anonymous caller no more than ready or not."""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_support import FAILED_ID, SOURCE_ERRORS, make_settings, serving
from opdiag.api.app import create_app
from opdiag.settings import Settings, load_settings
from opdiag_dashboards import scrape

pytest_plugins = ("api_fixtures",)

TOKEN = "s3cret-token"
PAGES = ["/", f"/operations/{FAILED_ID}"]
API = ["/api/v1/operations", f"/api/v1/operations/{FAILED_ID}", "/api/v1/openapi.json"]


def _basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


BEARER = {"Authorization": f"Bearer {TOKEN}"}


def _client(service, **server):
    app = create_app(
        make_settings(auth_token=TOKEN, **server), service=service, source=service.source
    )
    return app.test_client()


@pytest.mark.parametrize("route", PAGES)
def test_a_page_without_the_token_asks_the_browser_for_it(service, route):
    response = _client(service).get(route)
    assert response.status_code == 401
    assert response.mimetype == "text/html"
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    page = response.get_data(as_text=True)
    assert "token" in page and "password" in page
    assert FAILED_ID not in page  # nothing of the operation leaks


@pytest.mark.parametrize("route", PAGES)
@pytest.mark.parametrize("headers", [_basic("anyone", TOKEN), _basic("", TOKEN), BEARER])
def test_a_page_with_the_token_is_served(service, route, headers):
    response = _client(service).get(route, headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "text/html"


@pytest.mark.parametrize(
    "headers",
    [_basic("anyone", "wrong"), _basic(TOKEN, ""), {"Authorization": "Basic %%%"},
     {"Authorization": f"Basic {TOKEN}"}],
)
def test_a_page_with_a_wrong_password_is_refused(service, headers):
    assert _client(service).get("/", headers=headers).status_code == 401


@pytest.mark.parametrize("route", API)
def test_the_browser_session_reaches_the_api_links_of_the_page(service, route):
    """The page links to its JSON rows and the OpenAPI document: the browser sends the same
    Basic credentials there."""
    assert _client(service).get(route, headers=_basic("me", TOKEN)).status_code == 200


@pytest.mark.parametrize("route", PAGES)
def test_open_pages_need_no_token_but_the_api_still_does(service, route):
    client = _client(service, open_pages=True)
    assert client.get(route).status_code == 200
    for api in API:
        response = client.get(api)
        assert response.status_code == 401
        assert response.get_json()["field"] == "Authorization"
    assert client.get("/metrics").status_code == 401


def test_metrics_need_the_token_unless_open(service):
    client = _client(service)
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.get_json()["field"] == "Authorization"
    assert client.get("/metrics", headers=BEARER).status_code == 200
    opened = _client(service, open_metrics=True)
    assert opened.get("/metrics").status_code == 200
    assert opened.get(API[0]).status_code == 401


def test_open_pages_and_metrics_are_settings_with_env_vars():
    settings = load_settings(
        environ={
            "OPDIAG_OPEN_PAGES": "true",
            "OPDIAG_OPEN_METRICS": "1",
            "OPDIAG_SCRAPE_TOKEN_FILE": "/run/secrets/opdiag_token",
        }
    )
    assert settings.server.open_pages and settings.server.open_metrics
    assert settings.dashboards.opdiag_token_file == "/run/secrets/opdiag_token"
    defaults = load_settings(environ={})
    assert not defaults.server.open_pages and not defaults.server.open_metrics


# -- /readyz (item 17) ---------------------------------------------------------------------


def test_readyz_tells_an_anonymous_caller_only_ready(service):
    response = _client(service).get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}


def test_readyz_tells_a_caller_with_the_token_the_source(service):
    response = _client(service).get("/readyz", headers=BEARER)
    assert response.get_json() == {"status": "ready", "source": "fake source <test>"}


@pytest.mark.parametrize("error_status", SOURCE_ERRORS, ids=["unavailable", "timeout"])
def test_readyz_hides_the_reason_from_an_anonymous_caller(service, error_status, caplog):
    service.source.error = error_status[0]
    client = _client(service)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable"}
    assert error_status[0].message in caplog.text  # the operator still finds it in the log
    detailed = client.get("/readyz", headers=BEARER)
    assert detailed.status_code == 503
    assert detailed.get_json()["error"] == error_status[0].message


def test_readyz_without_auth_configured_says_only_ready_or_not(client, service):
    assert client.get("/readyz").get_json() == {"status": "ready"}
    service.source.error = SOURCE_ERRORS[0][0]
    assert client.get("/readyz").get_json() == {"status": "unavailable"}


# -- Prometheus scrapes opdiag with the token ----------------------------------------------


def _token_settings(token_file: Path) -> Settings:
    return Settings.model_validate({"dashboards": {"opdiag_token_file": str(token_file)}})


def test_the_scrape_config_carries_the_token_file_only_when_set(tmp_path):
    with_token = scrape.scrape_config(_token_settings(tmp_path / "token"))
    jobs = {job["job_name"]: job for job in with_token["scrape_configs"]}
    assert jobs[scrape.OPDIAG_JOB]["authorization"] == {
        "type": "Bearer",
        "credentials_file": str(tmp_path / "token"),
    }
    assert all("authorization" not in j for n, j in jobs.items() if n != scrape.OPDIAG_JOB)
    plain = scrape.scrape_config(Settings())
    assert all("authorization" not in job for job in plain["scrape_configs"])


@pytest.fixture
def opdiag_with_token(demo_traces) -> Iterator[str]:
    with serving(demo_traces, auth_token=TOKEN) as running:
        yield f"127.0.0.1:{running.server.effective_port}"


@pytest.mark.prometheus
def test_a_real_prometheus_scrapes_opdiag_with_the_token(tmp_path, opdiag_with_token):
    binary = shutil.which("prometheus")
    promtool = shutil.which("promtool")
    if binary is None or promtool is None:
        pytest.skip("prometheus is not installed: `make test` installs it")
    from ktrdr_sim.live import launch

    token_file = tmp_path / "opdiag_token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    settings = _token_settings(token_file)
    jobs = scrape.demo_jobs(settings, opdiag=opdiag_with_token)
    jobs = [job for job in jobs if job.name == scrape.OPDIAG_JOB]
    config = tmp_path / "prometheus.yml"
    config.write_text(scrape.render(settings, jobs, scrape_interval="1s"), encoding="utf-8")
    check = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    port = launch.free_ports(1)[0]
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        deadline = time.monotonic() + 120
        found: list = []
        while time.monotonic() < deadline:
            try:
                found = api.get(
                    "/api/v1/query", params={"query": 'opdiag_http_requests_total{job="opdiag"}'}
                ).json()["data"]["result"]
            except (httpx.HTTPError, KeyError, ValueError):
                found = []
            if found:
                break
            time.sleep(0.5)
        assert found, log.read_text()[-3000:]
        up = api.get("/api/v1/query", params={"query": 'up{job="opdiag"}'}).json()
        assert up["data"]["result"][0]["value"][1] == "1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_token_beyond_ascii_works_as_bearer_and_as_basic(demo_traces):
    """HTTP header values travel as bytes and WSGI decodes them as latin-1: the UTF-8 bytes
    of "s3cret-tök" must match the token as Basic (base64 of UTF-8) already did."""
    token = "s3cret-tök"
    with serving(demo_traces, auth_token=token) as running:
        url = f"http://127.0.0.1:{running.server.effective_port}/api/v1/operations"
        bearer = {"Authorization": b"Bearer " + token.encode("utf-8")}
        assert httpx.get(url, headers=bearer, timeout=60).status_code == 200
        raw = base64.b64encode(f"grafana:{token}".encode()).decode()
        basic = {"Authorization": f"Basic {raw}"}
        assert httpx.get(url, headers=basic, timeout=60).status_code == 200
        wrong = {"Authorization": b"Bearer " + b"s3cret-tok"}
        assert httpx.get(url, headers=wrong, timeout=60).status_code == 401
