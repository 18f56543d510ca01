"""The trace-source seam: a directory of files and a live Jaeger look the same to the rest.

Implementations: ``opdiag.sources.files.FileSource`` (files/directories, the demo corpus) and
``opdiag.sources.jaeger.JaegerSource`` (httpx client, api_v3 then legacy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from opdiag.model import SpanQuery, Trace
from opdiag.timeutil import TimeRange

__all__ = ["SpanQuery", "TraceSource", "holds_wanted_span"]


def holds_wanted_span(
    trace: Trace, queries: Sequence[SpanQuery], start_us: int, end_us: int
) -> bool:
    """Does ``trace`` hold a span a query asks for that starts in ``[start_us, end_us)``?"""
    return any(
        start_us <= span.start_us < end_us
        and any(q.matches(span.service, span.name) for q in queries)
        for span in trace.spans
    )


class TraceSource(Protocol):
    """Where traces come from. Every method raises ``SourceUnavailableError`` (or its
    ``SourceTimeoutError``) when the backend cannot answer, never a transport exception."""

    def describe(self) -> str:
        """Human-readable origin, e.g. ``jaeger http://jaeger:16686 (api_v3)`` or a path."""
        ...

    def check(self) -> None:
        """Raise ``SourceUnavailableError`` unless the source can answer right now."""
        ...

    def traces_for(self, ident: str, window: TimeRange | None = None) -> list[Trace]:
        """Every trace holding operation id ``ident`` (attribute ``operation.id``) or, when
        ``ident`` looks like a trace id, that trace. Empty list when none. A live source
        searches the spans starting in ``window`` (None: its look-back before now); a
        trace id is fetched whatever the window, and files hold all of their time."""
        ...

    def recent_traces(self, start_us: int, end_us: int, limit: int = 500) -> list[Trace]:
        """Traces with at least one span starting in ``[start_us, end_us)`` that belong to
        operations (noise such as health checks may be left out), newest first."""
        ...

    def all_services(self) -> list[str]:
        """Service names the source knows."""
        ...

    def neighbour_traces(
        self, start_us: int, end_us: int, queries: Sequence[SpanQuery], limit: int
    ) -> list[Trace]:
        """Traces holding a span that one of ``queries`` asks for and that starts in
        ``[start_us, end_us)``: the evidence an operation leaves outside its own traces
        (health checks of its worker, the IB host service's connection loop, the orphan
        detector). At most ``limit`` traces, newest first; bounded work whatever the
        source holds."""
        ...
