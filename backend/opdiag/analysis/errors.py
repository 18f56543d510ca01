"""Error causal chains: from the deepest error span up through its error ancestors.

An error usually surfaces several times on its way up (the failing call, the server span that
answered 500, the CLI command that gave up). The span that *started* it is an error span with
no error below it — the origin. Its chain runs from the origin through every error ancestor
(non-error ancestors in between are skipped: a background task's failure still explains the
failed command that polled it). Chains are sorted deepest origin first, then earliest, so the
first chain is the best root-cause candidate.

::

    cli.backtest   (error) ─┐
      POST                  │  chain: data_loading → cli.backtest
        POST /start         │  origin = data_loading, top = cli.backtest
          data_loading (error, FileNotFoundError)
"""

from __future__ import annotations

import msgspec

from opdiag.model import Span, Trace


class ErrorChain(msgspec.Struct, frozen=True):
    """``spans`` runs from ``origin`` (deepest, first) up to ``top`` (last)."""

    spans: tuple[Span, ...]
    depth: int  # depth of the origin in the span tree (roots are 0)

    @property
    def origin(self) -> Span:
        return self.spans[0]

    @property
    def top(self) -> Span:
        return self.spans[-1]

    @property
    def span_ids(self) -> list[str]:
        return [s.span_id for s in self.spans]


def depths(trace: Trace) -> dict[str, int]:
    """Depth of every span in the tree (roots 0), computed iteratively."""
    return {span.span_id: depth for span, depth in trace.walk()}


def error_chains(
    trace: Trace, walked: list[tuple[Span, int]] | None = None
) -> list[ErrorChain]:
    """Every error origin with its chain of error ancestors, deepest origin first.

    ``walked`` may pass ``trace.walk_list()`` when the caller has it already.
    """
    if walked is None:
        walked = trace.walk_list()  # parents before children
    order = [span for span, _ in walked]
    depth = {s.span_id: d for s, d in walked if s.error}
    by_id = trace.by_id
    # nearest error ancestor of every span, top-down
    error_up: dict[str, str | None] = {}
    for span in order:
        parent = by_id.get(span.parent_id) if span.parent_id is not None else None
        if parent is None:
            error_up[span.span_id] = None
        else:
            error_up[span.span_id] = parent.span_id if parent.error else error_up[parent.span_id]
    # error spans that have an error below them, bottom-up
    has_error_below: set[str] = set()
    for span in reversed(order):
        if (span.error or span.span_id in has_error_below) and span.parent_id is not None:
            has_error_below.add(span.parent_id)
    chains: list[ErrorChain] = []
    for span in order:
        if not span.error or span.span_id in has_error_below:
            continue
        chain = [span]
        up = error_up[span.span_id]
        while up is not None:
            chain.append(by_id[up])
            up = error_up[up]
        chains.append(ErrorChain(tuple(chain), depth[span.span_id]))
    chains.sort(key=lambda c: (-c.depth, c.origin.start_us, c.origin.span_id))
    return chains
