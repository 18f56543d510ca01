"""Label selectors, built only from settings and template variables (never a literal job).

Template variables are named once here; ``variables.py`` defines them with the same names.
"""

from __future__ import annotations

from opdiag.settings import Settings

ENVIRONMENT = "environment"
JOB = "job"
INSTANCE = "instance"
WORKER_JOB = "worker_job"
WORKER_INSTANCE = "worker_instance"
WORKER_TYPE = "worker_type"
OPERATION_TYPE = "operation_type"
VERDICT = "verdict"
OPERATION_ID = "operation_id"
TRACE_ID = "trace_id"


def environment(settings: Settings) -> str:
    """Matcher on the configured environment label."""
    return f'{settings.dashboards.environment_label}=~"${ENVIRONMENT}"'


def services(settings: Settings) -> str:
    """Every selected KTRDR service (backend and workers) and instance."""
    return f'{environment(settings)}, job=~"${JOB}", instance=~"${INSTANCE}"'


def workers(settings: Settings) -> str:
    """Every selected worker instance: by job, never by a port regex."""
    return f'{environment(settings)}, job=~"${WORKER_JOB}", instance=~"${WORKER_INSTANCE}"'


def registry(settings: Settings) -> str:
    """The backend's worker-registry gauges, per selected worker type."""
    return (
        f'{environment(settings)}, job=~"{settings.dashboards.service_job_regex}", '
        f'worker_type=~"${WORKER_TYPE}"'
    )


def operations(settings: Settings) -> str:
    """Operation metrics of every selected service and operation type."""
    return f'{environment(settings)}, job=~"${JOB}", operation_type=~"${OPERATION_TYPE}"'
