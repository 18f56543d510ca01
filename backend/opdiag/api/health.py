"""Probes and self-metrics: ``/healthz`` (the process answers), ``/readyz`` (the trace source
answers) and ``/metrics`` (Prometheus exposition of this app's own registry)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from opdiag.api.auth import authenticated
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
    """Readiness: 200 ready or 503 unavailable. The probe is open, so an anonymous caller
    learns only that; a request carrying the token also gets the source (paths, Jaeger URL)
    and the reason. The reason is always in the server's log."""
    state = current_state()
    source = state.source
    detail: dict[str, str] = {}
    try:
        source.check()
    except OpdiagError as exc:
        log.warning("not ready: %s", exc.message)
        detail = {"error": exc.message, "field": "source"}
    except Exception:
        log.exception("readiness check failed unexpectedly")
        detail = {"error": "trace source check failed", "field": "source"}
    watcher = state.watcher
    if not detail and watcher is not None and watcher.last_error_stage == "store":
        # the lists are read from the store: one the watcher cannot write serves stale rows
        log.warning("not ready: the verdict store failed: %s", watcher.last_error)
        detail = {"error": f"verdict store: {watcher.last_error}", "field": "store"}
    ready = not detail
    body: dict[str, str] = {"status": "ready" if ready else "unavailable"}
    if authenticated():
        body.update({"source": source.describe()} if ready else detail)
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    response.status_code = 200 if ready else 503
    return response


@bp.get("/metrics")
def metrics() -> Response:
    app_metrics: AppMetrics = current_app.extensions[METRICS_EXTENSION]
    return Response(generate_latest(app_metrics.registry), content_type=CONTENT_TYPE_LATEST)
