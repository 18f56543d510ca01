"""What a trace source held at a moment in its past: the spans that had ended by then.

A span is exported when it ends, so at ``now`` a source held exactly the spans that had ended
by ``now``: a span that started later did not exist yet, and one still open had not been
exported (its children that had ended were there, their parent missing, as in a snapshot
taken at that moment). Judging a recording "at ``now``" therefore means judging these traces:
a later transition (the orphan detector's failure at 16:07 of a training judged at 16:00) is
the future, and a later health check too. ``opdiag.service`` cuts every trace it reads this
way when ``now`` lies in the source's past. Pure functions; the given traces are not changed.
"""

from __future__ import annotations

from collections.abc import Iterable

from msgspec.structs import replace

from opdiag.model import ORPHANS_WARNING, Trace, build_trace


def trace_as_of(trace: Trace, now_us: int) -> Trace | None:
    """``trace`` as it was at ``now_us`` (itself when every span had ended by then), None
    when no span of it had ended yet. A span whose parent was still open becomes a root,
    with ``build_trace``'s warning that its parent may still be open."""
    if trace.end_us <= now_us:
        return trace
    if trace.start_us > now_us:
        return None
    ended = [span for span in trace.spans if span.end_us <= now_us]
    if not ended:
        return None
    # copies: build_trace sets each span's parent (a parent left out changes it) and may note
    # a warning on it; the whole trace keeps its own spans untouched
    copies = [replace(span, warnings=list(span.warnings)) for span in ended]
    seen = build_trace(
        trace.trace_id,
        copies,
        sources=trace.sources,
        warnings=[w for w in trace.warnings if not w.endswith(ORPHANS_WARNING)],
    )
    seen.cut_at_us = now_us
    return seen


def as_of(traces: Iterable[Trace], now_us: int) -> list[Trace]:
    """Every trace as it was at ``now_us``, those with no span ended by then left out (the
    order kept)."""
    out: list[Trace] = []
    for trace in traces:
        seen = trace_as_of(trace, now_us)
        if seen is not None:
            out.append(seen)
    return out
