"""The Flask app factory (flaskr's pattern): settings in, an app out, no module-level app.

The trace source and the diagnosis service are built here (or injected by tests) and kept on
``app.extensions``; blueprints: ``rest`` (Infinity), ``simpod``, ``pages``, ``health``.
Given a verdict store, the factory also builds the watcher that fills it (the server starts
it) and serves the operations list, counts, variables and annotations from the store.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from opdiag.api import health, rest, simpod
from opdiag.api.access_log import init_access_log
from opdiag.api.auth import init_auth
from opdiag.api.errors import register_error_handlers
from opdiag.api.metrics import AppMetrics, cache_stats_of, source_cache_stats_of
from opdiag.api.params import IdentConverter
from opdiag.api.state import EXTENSION as STATE_EXTENSION
from opdiag.api.state import AppState, install_state
from opdiag.settings import Settings, load_settings
from opdiag.sources.base import TraceSource
from opdiag.web import pages


def needs_demo(settings: Settings) -> bool:
    """No traces and no Jaeger configured: serve the bundled demo corpus."""
    return not settings.trace_paths and not settings.jaeger.url


def build_source(settings: Settings, metrics: AppMetrics) -> TraceSource:
    """The configured source; a live Jaeger reports each call's latency to our metrics."""
    from opdiag.sources.factory import make_source

    return make_source(settings, observer=metrics.observe_jaeger)


def create_app(
    settings: Settings | None = None,
    *,
    source: TraceSource | None = None,
    service: Any | None = None,
    store: Any | None = None,
) -> Flask:
    """Build the app. ``service`` wins over ``source``, which wins over the settings;
    ``store`` (an open verdict store) adds the watcher and the store-backed lists."""
    if settings is None:
        settings = load_settings()
    if source is None and service is None and needs_demo(settings) and not settings.use_demo:
        settings = settings.model_copy(update={"use_demo": True})

    app = Flask("opdiag")
    app.url_map.converters["ident"] = IdentConverter
    app.config.from_mapping(MAX_CONTENT_LENGTH=settings.server.max_request_bytes)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]

    metrics = AppMetrics(
        lambda: cache_stats_of(current_service(app)),
        lambda: source_cache_stats_of(app.extensions[STATE_EXTENSION].source),
    )
    if service is None:
        if source is None:
            source = build_source(settings, metrics)
        from opdiag.service import DiagnosisService

        service = DiagnosisService(source, settings)
    elif source is None:
        source = getattr(service, "source", None)
    state = AppState(settings=settings, source=source, service=service)
    if store is not None:
        _add_store(state, store, metrics)
    install_state(app, state)

    init_access_log(app)
    _init_jaeger_budget(app)
    metrics.init_app(app)
    init_auth(
        app,
        settings.server.auth_token,
        open_pages=settings.server.open_pages,
        open_metrics=settings.server.open_metrics,
    )
    register_error_handlers(app)
    app.register_blueprint(rest.bp)
    app.register_blueprint(simpod.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(health.bp)
    return app


def _init_jaeger_budget(app: Flask) -> None:
    """Each request's Jaeger calls share one ``jaeger.budget_s``: a listing that needs more
    than that answers 504 saying so, instead of holding a worker for minutes."""
    from flask import g

    from opdiag.sources.budget import close_budget, open_budget

    @app.before_request
    def _open() -> None:
        g.opdiag_jaeger_budget = open_budget()

    @app.teardown_request
    def _close(_exc: BaseException | None) -> None:
        token = g.pop("opdiag_jaeger_budget", None)
        if token is not None:
            close_budget(token)


def _add_store(state: AppState, store: Any, metrics: AppMetrics) -> None:
    """The watcher that fills ``store``, and the service reading lists from it once it
    holds something (before: from the traces)."""
    from opdiag.store.reads import StoredReads
    from opdiag.watcher import Watcher

    watcher = Watcher(state.service, store, state.settings, metrics.enable_verdicts())
    filled = store.has_operations()

    def ready() -> bool:
        return filled or watcher.ready.is_set()

    state.service = StoredReads(state.service, store, ready, state.settings.server.max_rows)
    state.store, state.watcher = store, watcher


def current_service(app: Flask) -> Any:
    """The app's diagnosis service (for collectors that run outside a request)."""
    state: AppState = app.extensions[STATE_EXTENSION]
    return state.service
