"""The ``dashboards`` section of opdiag's settings: everything a dashboard query may name.

Like a monitoring mixin's ``_config``: job selectors, datasource uids and URLs, dashboard uids,
tags and refresh live here, so no query in this package hard-codes a job, an instance or a
uid. This module depends on ``opdiag.config_types`` only (``opdiag.settings`` imports it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opdiag.config_types import Section


@dataclass(kw_only=True)
class DatasourceSettings(Section):
    """One provisioned Grafana datasource: fixed uid (what dashboards store), name and URL."""

    uid: str
    name: str
    url: str


@dataclass(kw_only=True)
class AlertSettings(Section):
    """Thresholds of the generated alert rules (Prometheus rule file and Grafana alerting).

    Durations are Prometheus durations (``5m``, ``1h``). Each says when to change it.
    """

    # Regex of the scrape job(s) that hold opdiag itself (several replicas: one job).
    opdiag_job_regex: str = "opdiag"
    # How often the rules are evaluated (Grafana rule group interval).
    evaluation_interval: str = "1m"
    # An operation stuck (no span for diagnosis.stuck_after_s) for this long pages.
    stuck_for: str = "5m"
    # A lost worker (or an operation that ended with worker_lost) pages after this long.
    lost_for: str = "1m"
    # Refusals (no workers, no capable workers) and lost workers are looked for over this.
    refused_window: str = "15m"
    # Failures above this share of the operations that finished in failure_window ...
    failure_ratio: float = field(default=0.25, metadata={"gt": 0, "le": 1})
    # ... and at least this many failures (one failed run of three is no outage).
    failure_min: int = field(default=3, metadata={"ge": 1})
    failure_window: str = "30m"
    # Operations refused because every capable worker was busy, in every evaluation for
    # busy_for (each looking back busy_window): the workers stay saturated.
    busy_window: str = "10m"
    busy_for: str = "15m"
    # This many slow runs of one type in slow_window.
    slow_min: int = field(default=2, metadata={"ge": 1})
    slow_window: str = "1h"
    # opdiag's watcher without a successful pass for this long (Jaeger or the store down).
    watcher_stale: str = "5m"
    # The Grafana contact point the rules notify: fill in its address (or change its type in
    # the generated provisioning/alerting/opdiag-contact-points.yaml).
    contact_point: str = "opdiag-oncall"
    contact_email: str = "oncall@example.com"


@dataclass(kw_only=True)
class DashboardSettings(Section):
    """Selectors, datasources and dashboard identity used by the generator.

    Defaults fit the docker-compose stack (services grafana, prometheus :9090, jaeger :16686,
    opdiag :8080) and KTRDR's scrape configs (jobs ``ktrdr-backend``, ``ktrdr-workers*``,
    ``ktrdr-gpu-worker``; design-era ``backend``).
    """

    # Regex of every KTRDR scrape job. Matches the backend under both names it has had
    # (`ktrdr-backend` now, `backend` in the design era); change it when your jobs differ.
    service_job_regex: str = "ktrdr-.*|backend"
    # Regex of the scrape jobs that hold workers (one job or several, as in homelab).
    worker_job_regex: str = "ktrdr-workers.*|ktrdr-.*-worker.*"
    # Label that carries the environment (an external label or relabelled target label).
    # Series without it still match when "All" is selected (the all value is `.*`).
    environment_label: str = "environment"
    prometheus: DatasourceSettings = field(
        default_factory=lambda: DatasourceSettings(
            uid="prometheus", name="Prometheus", url="http://prometheus:9090"
        )
    )
    # Its uid must equal links.jaeger_datasource_uid (the backend builds Explore links with it).
    jaeger: DatasourceSettings = field(
        default_factory=lambda: DatasourceSettings(
            uid="jaeger", name="Jaeger", url="http://jaeger:16686"
        )
    )
    # opdiag as Grafana's server reaches it (docker-internal), not the browser-visible URL.
    opdiag: DatasourceSettings = field(
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
    tags: list[str] = field(default_factory=lambda: ["ktrdr", "opdiag"])
    refresh: str = "30s"
    time_from: str = "now-6h"
    timezone: str = "browser"
    # Rows the recent-operations table asks opdiag for.
    operations_limit: int = 200
    # Grafana folder, and where the provider reads the dashboard JSON inside Grafana: mounting
    # provisioning/ at /etc/grafana/provisioning puts dashboards/json/ exactly there.
    folder: str = "KTRDR"
    dashboards_path: str = "/etc/grafana/provisioning/dashboards/json"
    alerts: AlertSettings = field(default_factory=AlertSettings)
