"""The alert rules on opdiag's verdict metrics, defined once for both alerting systems.

Each rule is a PromQL condition over the metrics ``opdiag serve``'s watcher exports (README,
"Verdict metrics"), a ``for`` duration, a severity, and texts with placeholders that
``alerting.py`` fills with each system's template syntax: ``{type}`` (the operation type
label), ``{verdict}``, ``{value}`` / ``{value_pct}`` / ``{value_duration}`` (the value,
humanised). Every rule is per operation type (except the watcher's own, labelled
``operation_type="all"``) and links to the Operations dashboard filtered on that type and
verdict.

Replicas: counters are summed over instances (only the leading replica's watcher counts),
gauges taken as the ``max`` (every replica reads the same store).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from opdiag.settings import Settings
from opdiag.timeutil import US_PER_S, parse_duration_us

from opdiag_dashboards.links import dashboard_url
from opdiag_dashboards.queries import selectors as sel

FINISHED = "opdiag_operations_finished_total"
IN_PROGRESS = "opdiag_operations_in_progress"
LAST_PASS = "opdiag_watcher_last_success_timestamp_seconds"
# Verdicts that mean the operation ran and failed (refusals and busy workers have their own
# rules; slow and cancelled are no failure).
FAILURE_VERDICTS = ("failed", "invalid_input", "data_missing", "service_unreachable", "worker_lost")
REFUSAL_VERDICTS = ("no_workers", "no_capable_workers")
TYPE_LABEL = "operation_type"


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One alert, independent of the system that evaluates it."""

    name: str
    uid: str  # Grafana's rule uid (stable, at most 40 characters)
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    # The verdict the Operations dashboard is filtered on: a code, or "{verdict}".
    link_verdict: str
    static_labels: tuple[tuple[str, str], ...] = ()


def _about_opdiag(name: str, **fields: str) -> AlertRule:
    """A rule about opdiag itself: every operation type, linked to the unfiltered list."""
    uid = "opdiag-" + "-".join(w.lower() for w in re.findall(r"[A-Z][a-z]+", name)[1:])
    return AlertRule(
        name=name, uid=uid, link_verdict="All", static_labels=((TYPE_LABEL, "all"),), **fields
    )


def seconds(duration: str) -> int:
    """A Prometheus duration in whole seconds."""
    return parse_duration_us(duration, name="alert duration") // US_PER_S


def _match(settings: Settings, **labels: str) -> str:
    """The matchers of opdiag's own series: its job(s), then ``labels`` (a value with ``|``
    is a regex)."""
    parts = [f'job=~"{settings.dashboards.alerts.opdiag_job_regex}"']
    for key, value in labels.items():
        op = "=~" if "|" in value else "="
        parts.append(f'{key}{op}"{value}"')
    return "{" + ", ".join(parts) + "}"


def _finished_in(settings: Settings, window: str, by: str = TYPE_LABEL, **labels: str) -> str:
    return f"sum by ({by}) (increase({FINISHED}{_match(settings, **labels)}[{window}]))"


def dashboard_link(settings: Settings, op_type: str, verdict: str) -> str:
    """The Operations dashboard (browser URL) filtered on a type and a verdict."""
    base = settings.links.grafana_url.rstrip("/")
    uid = settings.dashboards.operations_uid
    return (
        f"{base}{dashboard_url(uid)}?var-{sel.OPERATION_TYPE}={op_type}"
        f"&var-{sel.VERDICT}={verdict}"
    )


def alert_rules(settings: Settings) -> list[AlertRule]:
    """Every rule, in a fixed order."""
    a = settings.dashboards.alerts
    stuck_after = settings.diagnosis.stuck_after_s
    failures = "|".join(FAILURE_VERDICTS)
    refusals = "|".join(REFUSAL_VERDICTS)
    by_verdict = f"{TYPE_LABEL}, verdict"
    last_pass = f"max by (job) ({LAST_PASS}{_match(settings)})"
    up = f"up{_match(settings)}"
    return [
        AlertRule(
            name="OperationStuck",
            uid="opdiag-operation-stuck",
            expr=f"max by ({TYPE_LABEL}) ({IN_PROGRESS}{_match(settings, state='stuck')}) > 0",
            for_=a.stuck_for,
            severity="critical",
            summary="{value} {type} operation(s) stuck",
            description=(
                "{value} {type} operation(s) have shown no activity for longer than "
                f"{stuck_after:g} s and are not finished (opdiag verdict stuck). The "
                "Operations dashboard lists them with the phase they are stuck in."
            ),
            link_verdict="stuck",
        ),
        AlertRule(
            name="OperationWorkerLost",
            uid="opdiag-worker-lost",
            expr=(
                f"max by ({TYPE_LABEL}) ({IN_PROGRESS}{_match(settings, state='lost')}) > 0 "
                f"or {_finished_in(settings, a.refused_window, verdict='worker_lost')} > 0"
            ),
            for_=a.lost_for,
            severity="critical",
            summary="{type}: the worker of {value} operation(s) stopped answering",
            description=(
                "The worker running a {type} operation (or the only capable one) stopped "
                "answering its health checks or dropped the operation (opdiag verdict "
                "worker_lost); the diagnosis names the worker and when it went silent."
            ),
            link_verdict="worker_lost",
        ),
        AlertRule(
            name="OperationNoWorkers",
            uid="opdiag-no-workers",
            expr=f"{_finished_in(settings, a.refused_window, by_verdict, verdict=refusals)} > 0",
            for_="0m",
            severity="critical",
            summary="{value} {type} operation(s) refused: {verdict}",
            description=(
                "The backend refused {type} operations in the last "
                f"{a.refused_window} because no worker (no_workers) or no worker of the "
                "needed type (no_capable_workers) was registered."
            ),
            link_verdict="{verdict}",
        ),
        AlertRule(
            name="OperationFailureRate",
            uid="opdiag-failure-rate",
            expr=(
                f"({_finished_in(settings, a.failure_window, verdict=failures)} "
                f"/ {_finished_in(settings, a.failure_window)} > {a.failure_ratio:g}) "
                f"and {_finished_in(settings, a.failure_window, verdict=failures)} "
                f">= {a.failure_min}"
            ),
            for_="0m",
            severity="critical",
            summary="{value_pct} of {type} operations failed in the last "
            f"{a.failure_window}",
            description=(
                f"More than {a.failure_ratio:.0%} of the {{type}} "
                f"operations that finished in the last {a.failure_window} failed (at least "
                f"{a.failure_min}): verdicts {', '.join(FAILURE_VERDICTS)}."
            ),
            link_verdict="failed",
        ),
        AlertRule(
            name="OperationWorkersBusy",
            uid="opdiag-workers-busy",
            expr=f"{_finished_in(settings, a.busy_window, verdict='workers_busy')} > 0",
            for_=a.busy_for,
            severity="warning",
            summary=f"{{type}} operations refused for busy workers for {a.busy_for}",
            description=(
                "Every capable worker has been busy for at least "
                f"{a.busy_for}: {{type}} operations keep being refused (opdiag verdict "
                "workers_busy). Add workers or spread the load."
            ),
            link_verdict="workers_busy",
        ),
        AlertRule(
            name="OperationsSlow",
            uid="opdiag-operations-slow",
            expr=f"{_finished_in(settings, a.slow_window, verdict='slow')} >= {a.slow_min}",
            for_="0m",
            severity="warning",
            summary=f"{{value}} slow {{type}} operation(s) in the last {a.slow_window}",
            description=(
                "{type} operations took far longer than the last good runs of their type "
                f"(more than {settings.diagnosis.slow_factor:g} x the baseline): the "
                "diagnosis names the phase that grew."
            ),
            link_verdict="slow",
        ),
        _about_opdiag(
            "OpdiagWatcherStale",
            expr=f"time() - {last_pass} > {seconds(a.watcher_stale)}",
            for_="2m",
            severity="warning",
            summary="opdiag has recorded no verdict for {value_duration}",
            description=(
                "opdiag's watcher has not finished a pass for longer than "
                f"{a.watcher_stale}: the trace source (Jaeger) or the verdict store is "
                "unreachable, so the other alerts see nothing new. See "
                "opdiag_watcher_errors_total and opdiag's log."
            ),
        ),
        # the stale rule needs opdiag's own series: when opdiag is down there are none, and
        # every rule above goes quiet instead of firing
        _about_opdiag(
            "OpdiagDown",
            expr=f"{up} == 0 or absent({up})",
            for_="5m",
            severity="critical",
            summary="opdiag is down or not scraped: its verdict alerts cannot fire",
            description=(
                f"Prometheus has not scraped opdiag (job matching {a.opdiag_job_regex}) for "
                "5 minutes, or has no such target: no operation alert (stuck, worker lost, "
                "failures) can fire meanwhile. Check the opdiag process and its /readyz."
            ),
        ),
    ]
