"""The ``dashboards`` section of opdiag's settings: everything a dashboard query may name.

Like a monitoring mixin's ``_config``: job selectors, datasource uids and URLs, dashboard uids,
tags and refresh live here, so no query in this package hard-codes a job, an instance or a
uid. This module depends on pydantic only (``opdiag.settings`` imports it).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DatasourceSettings(BaseModel):
    """One provisioned Grafana datasource: fixed uid (what dashboards store), name and URL."""

    model_config = ConfigDict(extra="forbid")

    uid: str
    name: str
    url: str


class DashboardSettings(BaseModel):
    """Selectors, datasources and dashboard identity used by the generator.

    Defaults fit the docker-compose stack (services grafana, prometheus :9090, jaeger :16686,
    opdiag :8080) and KTRDR's scrape configs (jobs ``ktrdr-backend``, ``ktrdr-workers*``,
    ``ktrdr-gpu-worker``; design-era ``backend``).
    """

    model_config = ConfigDict(extra="forbid")

    # Regex of every KTRDR scrape job. Matches the backend under both names it has had
    # (`ktrdr-backend` now, `backend` in the design era); change it when your jobs differ.
    service_job_regex: str = "ktrdr-.*|backend"
    # Regex of the scrape jobs that hold workers (one job or several, as in homelab).
    worker_job_regex: str = "ktrdr-workers.*|ktrdr-.*-worker.*"
    # Label that carries the environment (an external label or relabelled target label).
    # Series without it still match when "All" is selected (the all value is `.*`).
    environment_label: str = "environment"
    prometheus: DatasourceSettings = Field(
        default_factory=lambda: DatasourceSettings(
            uid="prometheus", name="Prometheus", url="http://prometheus:9090"
        )
    )
    # Its uid must equal links.jaeger_datasource_uid (the backend builds Explore links with it).
    jaeger: DatasourceSettings = Field(
        default_factory=lambda: DatasourceSettings(
            uid="jaeger", name="Jaeger", url="http://jaeger:16686"
        )
    )
    # opdiag as Grafana's server reaches it (docker-internal), not the browser-visible URL.
    opdiag: DatasourceSettings = Field(
        default_factory=lambda: DatasourceSettings(
            uid="opdiag", name="opdiag", url="http://opdiag:8080"
        )
    )
    # Environment variable Grafana reads the opdiag bearer token from (empty = no auth).
    auth_token_env: str = "OPDIAG_AUTH_TOKEN"
    # File, as Prometheus sees it, that holds opdiag's token (OPDIAG_AUTH_TOKEN): when set,
    # the generated scrape config sends it to opdiag's /metrics (authorization.credentials_file).
    # Leave it unset when opdiag has no token or serves /metrics open (server.open_metrics).
    opdiag_token_file: str | None = None
    # Prometheus scrape interval; feeds $__rate_interval.
    scrape_interval: str = "15s"
    # Exemplar label that holds the trace id.
    exemplar_trace_label: str = "trace_id"
    system_overview_uid: str = "ktrdr-system-overview"
    worker_status_uid: str = "ktrdr-worker-status"
    operations_uid: str = "ktrdr-operations"
    tags: list[str] = Field(default_factory=lambda: ["ktrdr", "opdiag"])
    refresh: str = "30s"
    time_from: str = "now-6h"
    timezone: str = "browser"
    # Rows the recent-operations table asks opdiag for.
    operations_limit: int = 200
    # Grafana folder, and where the provider reads the dashboard JSON inside Grafana: mounting
    # provisioning/ at /etc/grafana/provisioning puts dashboards/json/ exactly there.
    folder: str = "KTRDR"
    dashboards_path: str = "/etc/grafana/provisioning/dashboards/json"
