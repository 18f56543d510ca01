"""``opdiag serve``: the app on waitress (a production WSGI server, not Flask's dev server),
bound to loopback by default, with a clean stop on SIGINT/SIGTERM.

The server raises the collector's first-generation threshold (``tune_gc``): decoding a
Jaeger window search allocates millions of small containers, and with Python's default
threshold (700) the cyclic collector ran so often that it cost ~4x the decode itself
(measured: 0.5-0.85 s instead of 0.12 s for a 21 MB answer). Reference counting still frees
everything at once; only cycles wait a little longer. The CLI's one-shot commands keep the
defaults.
"""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
from types import FrameType
from typing import Any, TextIO

from waitress import wasyncore
from waitress.server import create_server

from opdiag.api.app import create_app, needs_demo
from opdiag.api.probe_lane import ProbeLaneDispatcher
from opdiag.api.queries import is_file_source
from opdiag.api.state import EXTENSION as STATE_EXTENSION
from opdiag.api.state import AppState
from opdiag.api.waitress_errors import use_json_errors
from opdiag.errors import InputError, OpdiagError
from opdiag.settings import Settings, default_demo_traces
from opdiag.timeutil import wall_clock_us
from opdiag.web.pages import default_window

log = logging.getLogger("opdiag.server")
EXAMPLE_LIMIT = 1
WAITRESS_BODY_FACTOR = 4
GC_GEN0_THRESHOLD = 50_000


def tune_gc() -> None:
    """Collect young objects every ``GC_GEN0_THRESHOLD`` allocations instead of 700 (see the
    module docstring); the older generations keep their ratios."""
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(GC_GEN0_THRESHOLD, gen0), gen1, gen2)


M_ARENA_MAX = -8  # glibc's mallopt parameter number
MALLOC_ARENAS = 2


def limit_malloc_arenas() -> bool:
    """glibc gives each of waitress' worker threads its own malloc arena; every 10 s refetch
    of a large Jaeger answer then leaves freed memory scattered over up to 8 × cores arenas
    and the server's RSS creeps up (+13 % over a 60 s soak, flat with two arenas, measured by
    ``bench.load_bench``). Same effect as ``MALLOC_ARENA_MAX=2``; only arenas created after
    the call are affected, which is why it runs before the worker threads start. A no-op
    where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, MALLOC_ARENAS))


def _example_id(state: AppState) -> str | None:
    """The newest operation, for the printed example URL — only for a file source: asking a
    live Jaeger would delay the start and warm the cache before the first real request."""
    if not is_file_source(state.source):
        return None
    from opdiag.api.params import TimeRange
    from opdiag.api.queries import Filters, operations

    window = TimeRange(*default_window(state))
    try:
        found = operations(state.service, window, Filters(), EXAMPLE_LIMIT)
    except OpdiagError as exc:
        log.warning("could not list operations at start: %s", exc.message)
        return None
    return found[0].operation_id if found else None


def _banner(base: str, state: AppState, example: str | None) -> str:
    from urllib.parse import quote

    lines = [
        f"opdiag serving traces from {state.source.describe()}",
        f"  operations      {base}/",
    ]
    shown = quote(example, safe="") if example else "<operation id or trace id>"
    lines.append(f"  diagnosis page  {base}/operations/{shown}")
    lines += [
        f"  REST API        {base}/api/v1/operations   (OpenAPI: {base}/api/v1/openapi.json)",
        f"  simpod          {base}/simpod/",
        f"  metrics         {base}/metrics",
        f"  health          {base}/healthz  {base}/readyz",
    ]
    if state.store is not None:
        interval = state.settings.watcher.interval_s
        lines.append(f"  verdict store   {state.store.describe()} (watcher every {interval:g} s)")
    lines += [
        "Stop with Ctrl-C.",
    ]
    return "\n".join(lines)


def build_server(settings: Settings) -> tuple[Any, AppState]:
    """The waitress server (already bound) and the app state, for serve() and tests."""
    if needs_demo(settings) and not settings.use_demo:
        settings = settings.model_copy(update={"use_demo": True})
    if settings.use_demo and needs_demo(settings) and not default_demo_traces().exists():
        raise InputError(
            "no trace source: give --traces or --jaeger-url (or set JAEGER_URL); the demo "
            f"corpus served without one is not at {default_demo_traces()}"
        )
    store = None
    if settings.watcher.enabled:
        from opdiag.store.factory import open_store

        store = open_store(settings, now_ms=wall_clock_us() // 1000)
    app = create_app(settings, store=store)
    # /healthz has a thread of its own: it answers while every worker waits on Jaeger.
    dispatcher = ProbeLaneDispatcher()
    dispatcher.set_thread_count(settings.server.threads)
    try:
        server = create_server(
            app,
            host=settings.server.host,
            port=settings.server.port,
            threads=settings.server.threads,
            _dispatcher=dispatcher,  # waitress' own hook for a dispatcher of one's choice
            ident="opdiag",
            clear_untrusted_proxy_headers=True,
            # Flask refuses bodies over max_request_bytes with a JSON 413 naming the body;
            # waitress stops absurd ones before they are read (JSON too, see waitress_errors).
            max_request_body_size=WAITRESS_BODY_FACTOR * settings.server.max_request_bytes,
        )
    except BaseException:
        close_state(app.extensions[STATE_EXTENSION])
        dispatcher.shutdown()
        raise
    use_json_errors(server)
    return server, app.extensions[STATE_EXTENSION]


def _address(host: str, port: int) -> str:
    """``host:port``, an IPv6 host in brackets."""
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}"


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """SIGTERM behaves like Ctrl-C: waitress' loop stops its workers on KeyboardInterrupt."""
    raise KeyboardInterrupt


def stop_server(server: Any, *, loop_running: bool = False) -> None:
    """Stop the worker threads and close every socket; ``server.run()`` then returns. While
    the loop runs in another thread the sockets are closed by the loop itself (through its
    trigger): closed under a ``select`` in progress, they would fail it with EBADF."""
    server.task_dispatcher.shutdown()
    if loop_running:
        try:
            server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
            return
        except OSError:  # the loop closed its trigger on its way out: nobody to wake
            pass
    wasyncore.close_all(server._map)


class ServerThread:
    """Waitress in a background thread, for tests and the load benchmark; given the app
    state, its watcher runs beside it (as under ``serve``)."""

    def __init__(self, server: Any, state: AppState | None = None) -> None:
        self.server = server
        self.state = state
        self.thread = threading.Thread(target=server.run, name="opdiag-waitress", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.effective_port}"

    def start(self) -> ServerThread:
        self.thread.start()
        if self.state is not None and self.state.watcher is not None:
            self.state.watcher.start()
        return self

    def stop(self) -> None:
        stop_server(self.server, loop_running=self.thread.is_alive())
        self.thread.join(timeout=10)
        if self.state is not None:
            close_state(self.state)


def close_state(state: AppState) -> None:
    """Stop the watcher, close the store and the trace source (in that order: a pass under
    way still needs both)."""
    if state.watcher is not None:
        state.watcher.stop()
    if state.store is not None:
        state.store.close()
    close = getattr(state.source, "close", None)
    if callable(close):
        close()


def configure_logging() -> None:
    """opdiag's loggers to stderr at INFO (one access line per request, warnings), unless
    the embedding program configured them already."""
    logger = logging.getLogger("opdiag")
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def serve(settings: Settings, *, out: TextIO | None = None) -> int:
    """Run until SIGINT/SIGTERM; 0 on a clean stop, the error's exit code otherwise."""
    stream = out or sys.stdout
    configure_logging()
    tune_gc()
    limit_malloc_arenas()
    try:
        server, state = build_server(settings)
    except OpdiagError as exc:
        print(f"opdiag serve: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except (OSError, ValueError) as exc:  # waitress: ValueError for a host it cannot resolve
        where = _address(settings.server.host, settings.server.port)
        reason = getattr(exc, "strerror", None) or "invalid host or port"
        print(f"opdiag serve: cannot listen on {where}: {reason}", file=sys.stderr)
        return 2
    base = f"http://{_address(settings.server.host, server.effective_port)}"
    print(_banner(base, state, _example_id(state)), file=stream, flush=True)
    if state.watcher is not None:
        state.watcher.start()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()  # returns after KeyboardInterrupt, having stopped its workers
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        wasyncore.close_all(server._map)
        close_state(state)
    print("opdiag stopped.", file=stream, flush=True)
    return 0
