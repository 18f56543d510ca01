"""Which trace source the settings ask for: files, a live Jaeger, or the bundled demo.

Imports are lazy on purpose: ``opdiag diagnose --traces f.json`` must not pay for httpx.
"""

from __future__ import annotations

from collections.abc import Callable

from opdiag.errors import InputError
from opdiag.settings import Settings, default_demo_traces
from opdiag.sources.base import TraceSource

NO_SOURCE_MESSAGE = "no trace source: pass --traces or --jaeger-url, or set JAEGER_URL"


def make_source(
    settings: Settings, *, observer: Callable[[str, float, str], None] | None = None
) -> TraceSource:
    """``--traces`` paths first, then a Jaeger URL, then the demo corpus (``serve`` only).
    ``observer`` sees every Jaeger call (endpoint label, seconds, outcome)."""
    if settings.trace_paths:
        from opdiag.sources.files import FileSource

        return FileSource(list(settings.trace_paths), settings.max_trace_file_bytes)
    if settings.jaeger.url:
        from opdiag.sources.jaeger import JaegerSource

        return JaegerSource(
            settings.jaeger,
            observer=observer,
            noise_patterns=settings.diagnosis.noise_span_patterns,
        )
    if settings.use_demo:
        from opdiag.sources.files import FileSource

        return FileSource([default_demo_traces()], settings.max_trace_file_bytes)
    raise InputError(NO_SOURCE_MESSAGE)
