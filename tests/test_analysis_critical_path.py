"""Critical-path invariants on seeded random traces, and the jump-pointer ancestor search
checked against a plain walk up the tree."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest
from opdiag.analysis.critical_path import (
    NO_NODE,
    SYNTHETIC_ROOT_ID,
    copy_subtree,
    critical_path,
    prune_non_blocking,
    reattach_outliving,
)
from opdiag.model import CONSUMER, PRODUCER, Reference, Span, Trace, build_trace


def _random_trace(seed: int, n: int = 300) -> Trace:
    rnd = random.Random(seed)
    spans = [Span("t", "s0", "root", "svc", 0, 10_000)]
    for i in range(1, n):
        if rnd.random() < 0.03:  # an extra root or an orphan
            parent = None
            start = rnd.randint(0, 12_000)
        else:
            parent = spans[rnd.randint(max(0, i - 30), i - 1)]
            start = parent.start_us + rnd.randint(-50, parent.duration_us + 100)
        kind = rnd.choice(["internal"] * 6 + [PRODUCER, CONSUMER])
        refs = [Reference("CHILD_OF", "t", parent.span_id if parent else "gone")] if (
            parent or rnd.random() < 0.5) else []
        spans.append(Span("t", f"s{i}", "op", "svc", start, rnd.randint(0, 3_000), kind=kind,
                          references=refs))
    return build_trace("t", spans)


SEEDS = range(40)


@pytest.mark.parametrize("seed", SEEDS)
def test_plain_path_covers_every_root_exactly(seed):
    """Jaeger UI's path tiles each root's interval: contiguous, no overlap, nothing missing."""
    trace = _random_trace(seed)
    cp = critical_path(trace)
    assert cp.failed == []
    assert cp.length_us == sum(r.duration_us for r in trace.roots)
    for strict in (True, False):
        assert critical_path(trace, strict_boundary=strict).length_us == cp.length_us


@pytest.mark.parametrize("seed", SEEDS)
def test_reattach_path_is_contiguous_and_spans_the_work(seed):
    trace = _random_trace(seed)
    cp = critical_path(trace, reattach_async=True)
    assert cp.failed == []
    secs = cp.sections
    if SYNTHETIC_ROOT_ID in cp.reattached.values():
        # one timeline over the whole trace: newest first, gap-free
        assert all(a.start_us == b.end_us for a, b in pairwise(secs))
        assert secs[0].end_us - secs[-1].start_us == cp.length_us
    else:
        assert cp.length_us == sum(r.duration_us for r in trace.roots)
    assert all(s.start_us < s.end_us for s in secs)
    assert SYNTHETIC_ROOT_ID not in cp.span_ids()


def _naive_targets(trace: Trace) -> dict[str, str]:
    """Re-attachment computed the slow, obvious way (walk up one ancestor at a time)."""
    out: dict[str, str] = {}
    for root in trace.roots:
        nodes = copy_subtree(trace, root)
        prune_non_blocking(nodes)
        parent = [n.parent for n in nodes]
        eff = [0] * len(nodes)
        for i, n in enumerate(nodes):
            if n.dropped:
                continue
            p = parent[i]
            if p != NO_NODE and (n.start >= nodes[p].end or n.end > nodes[p].end):
                a = parent[p]
                while a != NO_NODE and not (nodes[a].end >= n.end and eff[a] <= n.start):
                    a = parent[a]
                parent[i] = a
                out[n.span_id] = nodes[a].span_id if a != NO_NODE else "-"
            eff[i] = n.start if parent[i] == NO_NODE else max(n.start, eff[parent[i]])
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_jump_pointer_search_matches_a_plain_walk(seed):
    trace = _random_trace(seed, n=400)
    got: dict[str, str] = {}
    for root in trace.roots:
        nodes = copy_subtree(trace, root)
        prune_non_blocking(nodes)
        for i, p in reattach_outliving(nodes).items():
            got[nodes[i].span_id] = nodes[p].span_id if p != NO_NODE else "-"
    assert got == _naive_targets(trace)
    assert got  # the generator does produce outliving children


def test_deep_nested_chain_with_late_leaves_stays_fast_enough_to_finish():
    """Adversarial for a linear ancestor search: leaf i must skip i/2 ancestors."""
    m = 30_000
    spans = []
    for i in range(m):
        refs = [Reference("CHILD_OF", "t", f"s{i - 1}")] if i else []
        # s_i = [i, 2m - i]; l_i = [2m - i, 2m - i // 2] starts when s_i ends
        spans.append(Span("t", f"s{i}", "op", "svc", i, 2 * m - 2 * i, references=refs))
        spans.append(Span("t", f"l{i}", "leaf", "svc", 2 * m - i, i - i // 2,
                          references=[Reference("CHILD_OF", "t", f"s{i}")]))
    cp = critical_path(build_trace("t", spans), reattach_async=True)
    assert cp.failed == []
    assert cp.reattached["l5"] == "s2"  # the nearest s_j with 2m - j >= 2m - 5 // 2
    assert cp.reattached[f"l{m - 1}"] == f"s{(m - 1) // 2}"
    assert cp.reattached["l1"] == "s0"
    assert cp.reattached["l0"] == SYNTHETIC_ROOT_ID  # s0 has no ancestor to cover it
