"""Error causal chains and tree depths."""

from __future__ import annotations

from opdiag.analysis.errors import depths, error_chains
from opdiag.model import Reference, Span, build_trace


def _trace(*rows: tuple[str, str | None, int, bool]):
    """rows: (span id, parent id, start, error)."""
    spans = [
        Span(
            trace_id="t",
            span_id=sid,
            name=sid,
            service="svc",
            start_us=start,
            duration_us=10,
            attributes={"error": True} if err else {},
            references=[Reference("CHILD_OF", "t", parent)] if parent else [],
        )
        for sid, parent, start, err in rows
    ]
    return build_trace("t", spans)


def test_no_errors_no_chains():
    assert error_chains(_trace(("r", None, 0, False), ("a", "r", 1, False))) == []


def test_chain_runs_from_origin_through_error_ancestors_skipping_healthy_ones():
    trace = _trace(
        ("r", None, 0, True),
        ("a", "r", 1, False),  # handled nothing, but not in error: skipped
        ("b", "a", 2, True),
        ("c", "b", 3, True),  # origin: no error below
        ("d", "c", 4, False),
    )
    [chain] = error_chains(trace)
    assert chain.span_ids == ["c", "b", "r"]
    assert chain.origin.span_id == "c" and chain.top.span_id == "r"
    assert chain.depth == 3


def test_sorted_deepest_origin_first_then_earliest():
    trace = _trace(
        ("r", None, 0, False),
        ("late", "r", 50, True),  # depth 1
        ("a", "r", 1, False),
        ("early", "a", 30, True),  # depth 2, later start than deep2? no: tie-break below
        ("deep2", "a", 20, True),  # depth 2, earliest of the depth-2 origins
        ("x", "a", 5, False),
        ("deep3", "x", 40, True),  # depth 3
    )
    assert [c.origin.span_id for c in error_chains(trace)] == ["deep3", "deep2", "early", "late"]


def test_single_error_root_is_its_own_chain():
    [chain] = error_chains(_trace(("r", None, 0, True)))
    assert chain.span_ids == ["r"] and chain.depth == 0


def test_depths():
    trace = _trace(("r", None, 0, False), ("a", "r", 1, False), ("b", "a", 2, False),
                   ("o", "missing", 3, False))
    assert depths(trace) == {"r": 0, "a": 1, "b": 2, "o": 0}


def test_deep_chain_is_iterative():
    n = 50_000
    rows = [("s0", None, 0, False)] + [(f"s{i}", f"s{i - 1}", i, i == n - 1) for i in range(1, n)]
    rows[1] = ("s1", "s0", 1, True)
    [chain] = error_chains(_trace(*rows))
    assert chain.span_ids == [f"s{n - 1}", "s1"]
    assert chain.depth == n - 1
