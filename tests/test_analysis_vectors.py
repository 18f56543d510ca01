"""Every analysis vector in tests/vectors/analysis/, and each critical-path step on them.

A vector is a small legacy-Jaeger trace plus, under "expected", its critical path (Jaeger UI
rules, opdiag's reattach mode, and Jaeger UI's strict boundary where it differs), self times,
re-attachments and error chains; "picture" draws it.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from opdiag.analysis.critical_path import (
    NO_NODE,
    Node,
    copy_subtree,
    critical_path,
    last_finishing_child,
    prune_non_blocking,
    reattach_outliving,
    sanitize_overflowing_children,
    walk_back,
)
from opdiag.analysis.errors import error_chains
from opdiag.analysis.self_time import self_times
from vectors.analysis.loader import load_vector, vector_paths

VECTORS = vector_paths()
VECTOR_DIR = VECTORS[0].parent


def _sections(cp) -> list[list]:
    return [[s.span_id, s.start_us, s.end_us] for s in cp.sections]


def _vector(name: str):
    return load_vector(VECTOR_DIR / f"{name}.json")


def test_vector_set_is_complete():
    names = {p.stem for p in VECTORS}
    upstream = {n for n in names if n.startswith("upstream_test")}
    assert len(upstream) == 9
    assert {"back_to_back_children", "multi_root", "orphan_subtree", "duplicate_ids",
            "ktrdr_dispatch_async", "follows_from_without_kinds_is_blocking"} <= names


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
class TestVector:
    def test_has_picture(self, path: Path):
        _, doc = load_vector(path)
        assert doc["picture"] and all(isinstance(line, str) for line in doc["picture"])

    def test_self_times(self, path: Path):
        trace, doc = load_vector(path)
        assert self_times(trace) == doc["expected"]["self_time"]

    def test_critical_path_jaeger_rules(self, path: Path):
        trace, doc = load_vector(path)
        cp = critical_path(trace)
        assert cp.failed == []
        assert _sections(cp) == doc["expected"]["critical_path"]

    def test_critical_path_reattach_mode(self, path: Path):
        trace, doc = load_vector(path)
        cp = critical_path(trace, reattach_async=True)
        assert cp.failed == []
        assert _sections(cp) == doc["expected"]["critical_path_reattach"]
        assert cp.reattached == doc["expected"].get("reattached", {})

    def test_critical_path_strict_boundary(self, path: Path):
        trace, doc = load_vector(path)
        want = doc["expected"].get("critical_path_strict", doc["expected"]["critical_path"])
        assert _sections(critical_path(trace, strict_boundary=True)) == want

    def test_error_chains(self, path: Path):
        trace, doc = load_vector(path)
        assert [c.span_ids for c in error_chains(trace)] == doc["expected"].get("error_chains", [])

    def test_sections_are_contiguous_per_root(self, path: Path):
        """Newest first and gap-free within a root: each section ends where the next began."""
        trace, _ = load_vector(path)
        for mode in (False, True):
            secs = critical_path(trace, reattach_async=mode).sections
            starts = {r.span_id for r in trace.roots} | {"__trace__"}
            for newer, older in pairwise(secs):
                assert newer.start_us < newer.end_us
                if older.span_id in starts and older.end_us != newer.start_us:
                    continue  # the next root begins
                assert older.end_us == newer.start_us


def _nodes(name: str, root_index: int = 0) -> dict[str, Node]:
    trace, _ = _vector(name)
    nodes = copy_subtree(trace, trace.roots[root_index])
    prune_non_blocking(nodes)
    sanitize_overflowing_children(nodes)
    return {n.span_id: n for n in nodes}


def test_copy_subtree_is_preorder_and_private():
    trace, _ = _vector("upstream_test4_descendants_of_dropped_child")
    nodes = copy_subtree(trace, trace.roots[0])
    assert [n.span_id for n in nodes] == ["A", "B", "C"]
    assert [n.parent for n in nodes] == [NO_NODE, 0, 1]
    nodes[1].start = 999
    assert trace.by_id["B"].start_us == 40


def test_prune_drops_consumer_of_producer_with_subtree():
    trace, _ = _vector("upstream_test5_producer_consumer")
    nodes = copy_subtree(trace, trace.roots[0])
    prune_non_blocking(nodes)
    assert {n.span_id: n.dropped for n in nodes} == {"A": False, "B": True, "C": True}


def test_prune_keeps_follows_from_without_kinds():
    trace, _ = _vector("follows_from_without_kinds_is_blocking")
    nodes = copy_subtree(trace, trace.roots[0])
    prune_non_blocking(nodes)
    assert not any(n.dropped for n in nodes)


@pytest.mark.parametrize(
    ("name", "span_id", "want"),
    [
        ("upstream_test3_child_starts_after_parent", "K", None),  # starts after parent end
        ("upstream_test4_descendants_of_dropped_child", "C", None),  # parent dropped
        ("upstream_test6_overflowing_child_and_early_grandchild", "B", (15, 30)),  # end clipped
        ("upstream_test6_overflowing_child_and_early_grandchild", "C", (15, 25)),  # start clipped
        ("upstream_test7_overflowing_chain", "C", (20, 30)),  # clipped to the clipped parent
        ("upstream_test8_child_around_parent", "B", (10, 30)),  # both clipped
        ("upstream_test9_child_before_parent", "B", None),  # ends before parent start
        ("upstream_test2_overlapping_children", "A", (10, 50)),  # fits: untouched
    ],
)
def test_sanitize(name, span_id, want):
    node = _nodes(name)[span_id]
    assert (None if node.dropped else (node.start, node.end)) == want


def _lfc(name: str, span_id: str, limit: int | None, *, strict: bool = False) -> str | None:
    trace, _ = _vector(name)
    nodes = copy_subtree(trace, trace.roots[0])
    sanitize_overflowing_children(nodes)
    index = next(i for i, n in enumerate(nodes) if n.span_id == span_id)
    kids = sorted((i for i, n in enumerate(nodes) if n.parent == index and not n.dropped),
                  key=lambda i: (-nodes[i].end, nodes[i].start, i))
    found = last_finishing_child(nodes, kids, [0] * len(nodes), index, limit,
                                 strict_boundary=strict)
    return None if found == NO_NODE else nodes[found].span_id


@pytest.mark.parametrize(
    ("name", "span_id", "limit", "strict", "want"),
    [
        ("upstream_test2_overlapping_children", "X", None, False, "C"),
        ("upstream_test2_overlapping_children", "X", 20, False, None),  # A still running at 20
        ("upstream_test1_sequential_children", "C", 50, False, "D"),
        ("back_to_back_children", "X", 20, False, "A"),
        ("back_to_back_children", "X", 20, True, None),  # Jaeger UI's strict '<'
        ("zero_length_child_at_boundary", "X", 20, False, "A"),  # Z (20-20) never wins
    ],
)
def test_last_finishing_child(name, span_id, limit, strict, want):
    assert _lfc(name, span_id, limit, strict=strict) == want


def test_walk_back_alone_reproduces_upstream_test1():
    trace, doc = _vector("upstream_test1_sequential_children")
    nodes = copy_subtree(trace, trace.roots[0])
    got = [[s.span_id, s.start_us, s.end_us] for s in walk_back(nodes)]
    assert got == doc["expected"]["critical_path"]


def test_reattach_picks_nearest_covering_ancestor():
    trace, _ = _vector("ktrdr_cli_follows")
    nodes = copy_subtree(trace, trace.roots[0])
    moved = reattach_outliving(nodes)
    by_index = {i: n.span_id for i, n in enumerate(nodes)}
    assert {by_index[i]: by_index[p] for i, p in moved.items()} == {"dl": "cli", "fc": "cli"}
    dl = next(n for n in nodes if n.span_id == "dl")
    assert nodes[dl.back].span_id == "wrk"  # the span running when dl forked


def test_reattach_without_synthetic_leaves_uncovered_as_roots():
    trace, _ = _vector("ktrdr_dispatch_async")
    nodes = copy_subtree(trace, trace.roots[0])
    moved = reattach_outliving(nodes)
    assert set(moved.values()) == {NO_NODE}
    assert {nodes[i].span_id for i in moved} == {"dl", "fc", "t2"}


def test_reattach_mode_exposes_idle_and_never_reports_it_as_a_span():
    trace, _ = _vector("ktrdr_dispatch_async")
    cp = critical_path(trace, reattach_async=True)
    assert cp.idle_us == 5
    assert "__trace__" not in cp.time_by_span()
    assert "__trace__" not in cp.span_ids()
    assert cp.time_by_span(include_idle=True)["__trace__"] == 5
    assert cp.length_us == 910
    assert max(cp.time_by_span().items(), key=lambda kv: kv[1]) == ("dl", 462)


def test_reattach_mode_finds_the_phase_jaeger_rules_miss():
    trace, _ = _vector("ktrdr_cli_follows")
    plain = critical_path(trace).time_by_span()
    async_ = critical_path(trace, reattach_async=True).time_by_span()
    assert max(plain, key=plain.__getitem__) == "cli"
    assert max(async_, key=async_.__getitem__) == "dl"
    assert "fc" not in plain and async_["fc"] == 400
