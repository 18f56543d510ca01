"""Probes and self-metrics: ``/healthz`` (the process answers), ``/readyz`` (the trace source
answers) and ``/metrics`` (Prometheus exposition of this app's own registry)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from opdiag.api.metrics import EXTENSION as METRICS_EXTENSION
from opdiag.api.metrics import AppMetrics
from opdiag.api.state import current_state
from opdiag.errors import OpdiagError

bp = Blueprint("health", __name__)
log = logging.getLogger("opdiag.api")


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: no I/O, so it is also the latency floor of the load benchmark."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: 503 with the reason while the trace source cannot answer."""
    source = current_state().source
    try:
        source.check()
    except OpdiagError as exc:
        response = jsonify({"status": "unavailable", "error": exc.message, "field": "source"})
        response.status_code = 503
        return response
    except Exception:
        log.exception("readiness check failed unexpectedly")
        response = jsonify(
            {"status": "unavailable", "error": "trace source check failed", "field": "source"}
        )
        response.status_code = 503
        return response
    return jsonify({"status": "ready", "source": source.describe()})


@bp.get("/metrics")
def metrics() -> Response:
    app_metrics: AppMetrics = current_app.extensions[METRICS_EXTENSION]
    return Response(generate_latest(app_metrics.registry), content_type=CONTENT_TYPE_LATEST)
