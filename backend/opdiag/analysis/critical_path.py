"""The critical path of a trace, with Jaeger UI's rules, iteratively and in O(n log n).

The critical path is the chain of work that decided when the trace ended: walking back from
the end, at every moment exactly one span is "on the path". Jaeger UI
(``components/TracePage/CriticalPath/``) computes it per root span in five steps, and so do we,
one small function each:

1. :func:`copy_subtree` — copy the root's subtree into minimal, private nodes (the input trace
   is never touched);
2. :func:`prune_non_blocking` — drop producer→consumer children (and their subtrees): a
   consumer does not block its producer;
3. :func:`sanitize_overflowing_children` — clip children to their parent, drop the ones
   entirely outside it (with their descendants);
4. :func:`last_finishing_child` — the child that finished last (before a limit);
5. :func:`walk_back` — from the root's end, descend into the last-finishing child; when a
   span has no (more) children, go back to its parent with the span's start as the new limit.

Sections of every root are appended to one list, newest first within a root. A root whose
computation fails is reported in ``CriticalPath.failed`` ("Root span <id>: <reason>") while the
other roots still produce sections.

Where we differ from Jaeger UI, on purpose:

* **Back-to-back children are on the path.** Jaeger UI (and its Go port in jaeger#9173) only
  picks a child that ends *strictly* before the limit, so with ``A[10,20]`` and ``B[20,30]``
  under ``X[0,40]`` it gives ``X 30-40, B 20-30, X 0-20`` and A vanishes. We pick a child
  that ends at or before the limit and *starts* before it (the start condition keeps
  zero-length children from looping): ``X 30-40, B 20-30, A 10-20, X 0-10``.
  ``strict_boundary=True`` reproduces Jaeger UI exactly.
* **A limit of 0 is a limit.** Jaeger UI tests the limit for truthiness; we never do.
* **No recursion, no quadratic scans.** The walk is a loop; each span's children are sorted
  once by end and scanned with a cursor, since the limits a span sees only ever decrease.

``reattach_async=True`` — opdiag's mode for systems whose children outlive their parents.
KTRDR workers answer the dispatch call at once and keep working in background tasks, so the
phase spans (``backtest.data_loading`` …) start after their parent server span has ended and
Jaeger UI's rules drop them (and the real work) from the path. In this mode, after pruning and
before sanitizing, a child that starts at/after its parent's end, or ends after it, is
re-attached to the nearest ancestor whose interval still covers it (start at or before the
child's, end at or after the child's; an ancestor's start counts as clipped to its own
ancestors). When no ancestor covers it, it goes under a synthetic root ``"__trace__"`` that
spans all blocking spans of the trace; every real root then becomes a child of that synthetic
root and one path is computed for the whole trace. Time on ``"__trace__"`` means nobody was
working (dispatch latency, queueing): it is reported by ``CriticalPath.idle_us`` and never
shows up in ``time_by_span()`` / ``span_ids()`` unless asked, so it can never be a bottleneck.
Walking back, a re-attached span hands over to the ancestor that was running when it started
(its old parent when it forked before that one ended), so the work before the fork is not
mistaken for idle time.
``CriticalPath.reattached`` says which span moved where. When nothing needs re-attaching the
result equals the plain mode's.

::

    default                                  reattach_async=True
    api   |==|                               __trace__ |..........................|
    worker  |=|        (phases dropped)        api   |==|
              data_loading |=======|           worker  |=|
                       compute     |====|               data_loading |=======|
                                                                compute      |====|
    path: api, worker (ends at 0.05 s)       path: api, worker, idle, data_loading, compute

``transparent={span ids}`` computes the path as if those spans were not in the trace: each
of their children hangs from the nearest ancestor that is not transparent (roots when there is
none), among its new siblings in start order (ties: order in ``trace.spans``), exactly as if
the trace had been rebuilt without them. The diagnosis engine uses it to keep transport noise
(a CLI polling ``GET /operations/{id}`` until the end) off the path, without copying the trace.
Usually no hidden span has a visible child (a poll's whole subtree is noise): the trace's
cached walk minus the hidden spans is then already the rebuilt trace's pre-order, and only the
visible spans are copied, in one pass. Otherwise the visible tree is traversed (``Visible``).

To find the covering ancestor fast, ancestors are searched with jump pointers (each node keeps
one pointer to an ancestor at a skew-binary distance, built in O(1)), which works because in
the re-attached tree ends only grow and clipped starts only shrink going up: the covering
ancestors form an unbroken run from some ancestor to the top, found in O(log depth) steps.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from operator import attrgetter
from typing import NamedTuple

import msgspec

from opdiag.model import CONSUMER, PRODUCER, Span, Trace

SYNTHETIC_ROOT_ID = "__trace__"
NO_NODE = -1
_NODE_START = attrgetter("start")
_NODE_END = attrgetter("end")


class Section(NamedTuple):
    """``span_id`` was on the critical path from ``start_us`` to ``end_us`` (epoch µs).

    A named tuple: 100 000-span traces give as many sections, and tuples are cheap.
    """

    span_id: str
    start_us: int
    end_us: int

    @property
    def duration_us(self) -> int:
        return self.end_us - self.start_us


class CriticalPath(msgspec.Struct, frozen=True):
    """Sections newest first (root by root), failures per root, and re-attachments."""

    sections: list[Section]
    failed: list[str] = msgspec.field(default_factory=list)
    reattached: dict[str, str] = msgspec.field(default_factory=dict)

    def time_by_span(self, *, include_idle: bool = False) -> dict[str, int]:
        """µs each span spent on the path (the synthetic idle root only when asked)."""
        out: dict[str, int] = {}
        get = out.get
        for span_id, start, end in self.sections:  # unpacked: 100k sections on big traces
            out[span_id] = get(span_id, 0) + end - start
        if not include_idle:
            out.pop(SYNTHETIC_ROOT_ID, None)  # (the others keep their order)
        return out

    def span_ids(self, *, include_idle: bool = False) -> set[str]:
        return set(self.time_by_span(include_idle=include_idle))

    @property
    def length_us(self) -> int:
        """Total length of the path, idle time included."""
        return sum(end - start for _, start, end in self.sections)

    @property
    def idle_us(self) -> int:
        """Time on the path during which no span was working (reattach mode only)."""
        return sum(s.end_us - s.start_us for s in self.sections if s.span_id == SYNTHETIC_ROOT_ID)


class Node:
    """The minimal per-span copy the algorithm works on (Jaeger UI's ``CPSpan``)."""

    __slots__ = ("back", "depth", "dropped", "eff_start", "end", "jump", "kind", "parent",
                 "span_id", "start", "up")

    def __init__(self, span_id: str, start: int, end: int, kind: str, parent: int) -> None:
        self.span_id = span_id
        self.start = start
        self.end = end
        self.kind = kind
        self.parent = parent  # index into the node list, NO_NODE for a root
        self.dropped = False
        self.back = NO_NODE  # reattach mode: the ancestor the walk returns to (see walk_back)
        # up, depth, jump, eff_start: set by reattach_outliving for every node it keeps

    def __repr__(self) -> str:
        return f"Node({self.span_id!r}, {self.start}, {self.end}, parent={self.parent})"


class Visible:
    """The tree of ``trace`` without the ``hidden`` spans: their children are handed to the
    nearest visible ancestor and merged into its children by (start, position in
    ``trace.spans``), the order ``build_trace`` gives a trace rebuilt without them."""

    __slots__ = ("_order", "children", "hidden", "spans")

    def __init__(self, trace: Trace, hidden: Collection[str]) -> None:
        self.children = trace.children
        self.spans = trace.spans
        self.hidden = hidden
        self._order: dict[str, int] | None = None

    def of(self, spans: Sequence[Span]) -> Sequence[Span]:
        """``spans`` (siblings in start order) with every hidden one replaced by its visible
        descendants (through hidden ones); the input list itself when none is hidden."""
        hidden, children = self.hidden, self.children
        if not any(s.span_id in hidden for s in spans):
            return spans
        out: list[Span] = []
        hoisted = False
        for span in spans:
            if span.span_id not in hidden:
                out.append(span)
                continue
            stack = list(reversed(children.get(span.span_id, ())))
            while stack:
                below = stack.pop()
                if below.span_id in hidden:
                    kids = children.get(below.span_id)
                    if kids:
                        stack.extend(reversed(kids))
                else:
                    out.append(below)
                    hoisted = True
        if hoisted:
            if self._order is None:
                self._order = {s.span_id: i for i, s in enumerate(self.spans)}
            order = self._order
            out.sort(key=lambda s: (s.start_us, order.get(s.span_id, 0)))
        return out


def copy_subtree(
    trace: Trace,
    root: Span,
    visible: Visible | None = None,
    *,
    prune: bool = False,
    base: int = 0,
) -> list[Node]:
    """Step 1: copy the root's subtree into private nodes, parents before children.

    ::

        Trace spans (shared, never mutated)      nodes (ours)
        root ─┬─ a ── a1                         [0] root  parent -1
              └─ b                               [1] a     parent 0
                                                 [2] a1    parent 1
                                                 [3] b     parent 0

    Children keep the model's order (by start), so ties later resolve as in Jaeger UI.

    ``prune=True`` does step 2 on the way (a node is created after its parent, so the
    parent's ``dropped`` is final); ``base`` is added to every parent index, for nodes that
    will sit at ``base`` in a bigger list.
    """
    nodes: list[Node] = []
    append = nodes.append
    children = trace.children
    # (span, parent index, what pruning says about its parent: 0 nothing, 1 dropped,
    # 2 a producer, so a consumer child is dropped)
    stack: list[tuple[Span, int, int]] = [(root, NO_NODE, 0)]
    pop, extend = stack.pop, stack.extend
    index = base - 1
    while stack:
        span, parent, above = pop()
        index += 1
        start = span.start_us
        node = Node(span.span_id, start, start + span.duration_us, span.kind, parent)
        if above and (above == 1 or node.kind == CONSUMER):
            node.dropped = True
        append(node)
        kids = children.get(span.span_id)
        if kids:
            if visible is not None:
                kids = visible.of(kids)
            state = 0
            if prune:
                state = 1 if node.dropped else 2 if node.kind == PRODUCER else 0
            extend([(kid, index, state) for kid in reversed(kids)])
    return nodes


def _copy_walked(
    walked: list[tuple[Span, int]],
    lo: int,
    hi: int,
    base: int,
    hidden: Collection[str] | None = None,
) -> list[Node] | None:
    """``copy_subtree(trace, root, prune=True, base=base)`` for the root at ``walked[lo]``,
    from the trace's cached pre-order walk (``walked[lo:hi]`` is its subtree, in the order
    copy_subtree visits it): no stack, no second traversal of a 100k-span tree.

    ``hidden`` span ids are left out. While no hidden span has a visible child, the walk
    without them is exactly the pre-order of the trace rebuilt without them (siblings keep
    their start order), so one pass copies only the visible spans; ``None`` when a hidden
    span would hand a child up to its ancestor (the caller then rebuilds the sibling order
    by traversal, see ``Visible``). A hidden root with nothing visible below gives ``[]``."""
    nodes: list[Node] = []
    append = nodes.append
    last: list[int] = []  # local index of the latest node seen at each depth (NO_NODE: hidden)
    for span, depth in walked[lo:hi] if lo or hi != len(walked) else walked:
        if hidden is not None and span.span_id in hidden:
            if depth == len(last):
                last.append(NO_NODE)
            else:
                last[depth] = NO_NODE
            continue
        start = span.start_us
        local = len(nodes)
        if depth:
            parent = last[depth - 1]
            if parent == NO_NODE:
                return None  # its parent is hidden: the child moves up
            above = nodes[parent]
            node = Node(span.span_id, start, start + span.duration_us, span.kind, parent + base)
            if above.dropped or (above.kind == PRODUCER and node.kind == CONSUMER):
                node.dropped = True
        else:
            node = Node(span.span_id, start, start + span.duration_us, span.kind, NO_NODE)
        if depth == len(last):
            last.append(local)
        else:
            last[depth] = local
        append(node)
    return nodes


def _root_ranges(trace: Trace, roots: Sequence[Span]) -> list[tuple[int, int]] | None:
    """Where each root's subtree sits in ``trace.walked()``; None if they do not line up."""
    walked = trace.walked()
    if len(roots) == 1:  # the usual trace: one root, the whole walk
        return [(0, len(walked))] if walked and walked[0][0] is roots[0] else None
    starts = [i for i, (_, depth) in enumerate(walked) if depth == 0]
    if len(starts) != len(roots) or any(
        walked[i][0] is not root for i, root in zip(starts, roots, strict=True)
    ):
        return None
    ends = [*starts[1:], len(walked)] if starts else []
    return list(zip(starts, ends, strict=True))


Copier = Callable[[int, Span, int], "list[Node] | None"]


def _copiers(
    trace: Trace, transparent: Collection[str] | None
) -> Iterator[tuple[Sequence[Span], Copier]]:
    """(roots, copy_subtree with pruning for the i-th root), fastest first: from the cached
    walk (hidden spans skipped; a copy is ``None`` when that does not give the rebuilt
    trace's order), then by traversal of the visible tree."""
    ranges = _root_ranges(trace, trace.roots)
    if ranges is not None:
        walked = trace.walked()
        yield trace.roots, lambda i, _r, base: _copy_walked(walked, *ranges[i], base, transparent)
    visible = Visible(trace, transparent) if transparent else None
    roots = visible.of(trace.roots) if visible is not None else trace.roots
    yield roots, lambda _i, root, base: copy_subtree(trace, root, visible, prune=True, base=base)


def prune_non_blocking(nodes: list[Node]) -> None:
    """Step 2: drop every CONSUMER child of a PRODUCER parent, with its whole subtree.

    ::

        producer |=====|                 the producer does not wait for its consumer:
        consumer     |.........|  ──►    consumer and everything under it is ignored
          child       |...|

    A FOLLOWS_FROM child without these kinds stays: it is blocking (Jaeger UI since 2026-01).
    """
    for node in nodes:
        if node.parent == NO_NODE:
            continue
        parent = nodes[node.parent]
        if parent.dropped or (parent.kind == PRODUCER and node.kind == CONSUMER):
            node.dropped = True


def _find_cover(nodes: list[Node], index: int, start: int, end: int) -> int:
    """Nearest ancestor-or-self of ``index`` (search tree) covering ``[start, end]``.

    Covering is monotone along the chain (ends grow, clipped starts shrink going up), so a
    jump pointer that lands on a non-covering node may be taken: everything skipped is
    non-covering too.
    """
    while index != NO_NODE:
        node = nodes[index]
        if node.end >= end and node.eff_start <= start:
            return index
        jump = node.jump
        if jump != NO_NODE:
            target = nodes[jump]
            if target.end < end or target.eff_start > start:
                index = jump
                continue
        index = node.up
    return NO_NODE


def _link_search_parent(nodes: list[Node], index: int, up: int) -> None:
    """Set the search parent and the skew-binary jump pointer of a node in O(1)."""
    node = nodes[index]
    node.up = up
    if up == NO_NODE:
        node.depth, node.jump, node.eff_start = 0, NO_NODE, node.start
        return
    parent = nodes[up]
    node.depth = parent.depth + 1
    node.eff_start = node.start if node.start > parent.eff_start else parent.eff_start
    pj = parent.jump
    if pj != NO_NODE and nodes[pj].jump != NO_NODE and (
        parent.depth - nodes[pj].depth == nodes[pj].depth - nodes[nodes[pj].jump].depth
    ):
        node.jump = nodes[pj].jump
    else:
        node.jump = up


def reattach_outliving(nodes: list[Node], synthetic: int = NO_NODE) -> dict[int, int]:
    """Step 2b (reattach mode only): move children that outlive their parent up the tree.

    ::

        before                                after
        api     |====|                        api     |====|
        worker    |=|                         worker    |=|
        phase          |=======|  ──►         __trace__ |.....................|
                                                phase        |=======|

        cli  |=================================|    cli  |==========================|
        POST   |==|                           ──►    POST   |==|
        phase        |=======|                       phase        |=======|  (under cli)

    A child starting at/after its parent's end, or ending after it, goes to the nearest
    ancestor covering it, else to ``synthetic`` (an index, or NO_NODE to leave it a root).
    Its ``back`` is set to the nearest ancestor that was still running when it started (its
    old parent, usually): the walk returns there, so the parent's work before the fork stays
    on the path instead of turning into idle time. Returns {moved node index: new parent
    index}. Nodes must be in parent-before-child order.
    """
    moved: dict[int, int] = {}
    for index, node in enumerate(nodes):
        if node.dropped or index == synthetic:
            continue
        parent_index = node.parent
        if parent_index in (NO_NODE, synthetic):
            _link_search_parent(nodes, index, NO_NODE)
            continue
        parent = nodes[parent_index]
        if node.start < parent.end and node.end <= parent.end:
            # _link_search_parent(nodes, index, parent_index), inlined: once per node
            node.up = parent_index
            node.depth = depth = parent.depth + 1
            start = node.start
            eff = parent.eff_start
            node.eff_start = start if start > eff else eff
            pj = parent.jump
            if pj != NO_NODE:
                jumped = nodes[pj]
                if jumped.jump != NO_NODE and (
                    depth - 1 - jumped.depth == jumped.depth - nodes[jumped.jump].depth
                ):
                    node.jump = jumped.jump
                    continue
            node.jump = parent_index
            continue
        target = _find_cover(nodes, parent.up, node.start, node.end)
        new_parent = target if target != NO_NODE else synthetic
        running = _find_cover(nodes, parent_index, node.start - 1, node.start)
        if running != NO_NODE and (
            target == NO_NODE or nodes[running].depth > nodes[target].depth
        ):
            node.back = running
        node.parent = new_parent
        moved[index] = new_parent
        _link_search_parent(nodes, index, target)
    return moved


def sanitize_overflowing_children(nodes: list[Node]) -> None:
    """Step 3: make every child fit inside its (already sanitized) parent.

    Nodes are processed parents first, so a clipped parent clips its children in turn::

        |----parent----|                      |----parent----|
                          |--child--|  drop      |---child------|    clip the end
        |--child--|  |----parent----|  drop   |---child---|          clip the start
                                              |-------child---------|  clip both
        (a dropped child takes its descendants with it)
    """
    _sanitize_grouped(nodes)


_NO_KIDS: list[int] = []


def _sanitize_grouped(nodes: list[Node]) -> dict[int, list[int]]:
    """Step 3, returning the grouping of :func:`_children_by_end` (unsorted) made in the same
    pass: a node's ``dropped`` is final once its own step 3 is done."""
    kids: dict[int, list[int]] = {}
    for index, node in enumerate(nodes):
        parent_index = node.parent
        if node.dropped or parent_index == NO_NODE:
            continue
        parent = nodes[parent_index]
        if parent.dropped:
            node.dropped = True
            continue
        p_start, p_end = parent.start, parent.end
        if node.start >= p_start:
            if node.start >= p_end:
                node.dropped = True
            elif node.end > p_end:
                node.end = p_end
        elif node.end <= p_start:
            node.dropped = True
        else:
            node.start = p_start
            node.end = min(node.end, p_end)
        if node.dropped:
            continue
        lst = kids.get(parent_index)
        if lst is None:
            kids[parent_index] = [index]
        else:
            lst.append(index)
    return kids


def _children_by_end(nodes: list[Node], *, ordered: bool = True) -> dict[int, list[int]]:
    """Each node's surviving children, last-finishing first (ties: earlier start, then order);
    ``ordered=False`` leaves the sorting to :func:`_by_end`, for the nodes a walk visits."""
    kids: dict[int, list[int]] = {}
    for index, node in enumerate(nodes):
        if not node.dropped and node.parent != NO_NODE:
            lst = kids.get(node.parent)
            if lst is None:
                kids[node.parent] = [index]
            else:
                lst.append(index)
    if ordered:
        for lst in kids.values():
            _by_end(nodes, lst)
    return kids


def _by_end(nodes: list[Node], kids: list[int]) -> list[int]:
    if len(kids) > 1:
        kids.sort(key=lambda i: (-nodes[i].end, nodes[i].start, i))
    return kids


def last_finishing_child(
    nodes: list[Node],
    kids: list[int],
    cursor: list[int],
    index: int,
    limit: int | None,
    *,
    strict_boundary: bool = False,
) -> int:
    """Step 4: the child of ``index`` that finished last (before ``limit`` when given).

    ::

        |---------------span-----------------|
           |--a--|   |--b--|   |--c--|              no limit: c
                             ^ limit = c.start      limit:    a (b is still running)

    ``kids`` is sorted by end, descending; ``cursor[index]`` only moves forward because the
    limits one span sees only decrease — O(children) per span over the whole walk.
    """
    if not kids:
        return NO_NODE
    if limit is None:
        return kids[0]
    pos = cursor[index]
    while pos < len(kids):
        child = nodes[kids[pos]]
        if strict_boundary:
            if child.end < limit:
                break
        elif child.end <= limit and child.start < limit:
            break
        pos += 1
    cursor[index] = pos
    return kids[pos] if pos < len(kids) else NO_NODE


def walk_back(
    nodes: list[Node],
    root: int = 0,
    *,
    strict_boundary: bool = False,
    kids: dict[int, list[int]] | None = None,
) -> list[Section]:
    """Step 5: walk back in time from the root's end; newest section first.

    ::

        |-------------------X-------------------|
            |----A----|
                   |------C------|
        X 60-101   C 20-60   X 1-20       (A ends after C starts: not on the path)

    At a span: take its last-finishing child (ending before the limit); the span owns
    ``[child.end, limit or end]`` and we descend into the child. Without such a child the
    span owns ``[start, limit or end]`` and we return to its parent with ``limit = start``.
    Zero-length sections are skipped. A loop, not recursion.

    A re-attached span returns instead to ``back`` (the ancestor running when it started)
    when that one still spans its start: the time is then cursor-contiguous and only ever
    decreases, so every span's limits still only decrease.

    Children are sorted by end only when the walk first reaches their parent; ``kids`` may
    pass the (unsorted) grouping when the caller has it.
    """
    if kids is None:
        kids = _children_by_end(nodes, ordered=False)
    ready: dict[int, list[int]] = {}
    cursor = [0] * len(nodes)
    out: list[Section] = []
    index, limit = root, None
    while True:
        node = nodes[index]
        end = node.end if limit is None else limit
        own = ready.get(index)
        if own is None:
            own = ready[index] = _by_end(nodes, kids.get(index, _NO_KIDS))
        child = last_finishing_child(
            nodes, own, cursor, index, limit, strict_boundary=strict_boundary
        )
        if child != NO_NODE:
            child_end = nodes[child].end
            if child_end != end:
                out.append(Section(node.span_id, child_end, end))
            index, limit = child, None
            continue
        if node.start != end:
            out.append(Section(node.span_id, node.start, end))
        if node.parent == NO_NODE:
            return out
        index, limit = _return_to(nodes, node), node.start


def _return_to(nodes: list[Node], node: Node) -> int:
    back = node.back
    if back != NO_NODE:
        target = nodes[back]
        if not target.dropped and target.start < node.start <= target.end:
            return back
    return node.parent


def _rebase(nodes: list[Node], lo: int, hi: int) -> list[Node]:
    """One root's slice of a forest, parent indexes made local."""
    part = nodes[lo:hi]
    for node in part:
        node.parent = node.parent - lo if node.parent >= lo else NO_NODE
        node.back = node.back - lo if node.back >= lo else NO_NODE
    return part


def _one_root(nodes: list[Node], strict_boundary: bool) -> list[Section]:
    kids = _sanitize_grouped(nodes)
    return walk_back(nodes, 0, strict_boundary=strict_boundary, kids=kids)


def critical_path(
    trace: Trace,
    *,
    reattach_async: bool = False,
    strict_boundary: bool = False,
    transparent: Collection[str] | None = None,
    ends: Mapping[str, int] | None = None,
) -> CriticalPath:
    """The critical path of ``trace`` (see the module docstring for the two modes and for
    ``transparent`` span ids). ``ends``: span id -> the time a span counts until, when that
    is before its end (a server span still working for a caller that timed out: its time
    after that is nobody's, and reattached it would carry the path minutes past the
    operation)."""
    hidden = transparent or None
    if not trace.children and not ends:
        # No span has a child (one-span traces: a listing holds thousands): in either mode
        # each visible root's path is the root itself.
        alone = _roots_alone(trace, hidden)
        if alone is not None:
            return alone
    for roots, copier in _copiers(trace, hidden):
        copy = _ending(copier, ends) if ends else copier
        if reattach_async:
            found = _critical_path_reattached(strict_boundary, roots, copy)
        else:
            found = _critical_path_plain(strict_boundary, roots, copy)
        if found is not None:
            return found
    raise AssertionError("the traversal copier always copies")  # pragma: no cover


def _ending(copy: Copier, ends: Mapping[str, int]) -> Copier:
    """``copy`` whose nodes end by ``ends`` (never before they start)."""

    def copied(i: int, root: Span, base: int) -> list[Node] | None:
        nodes = copy(i, root, base)
        for node in nodes or ():
            limit = ends.get(node.span_id)
            if limit is not None and limit < node.end:
                node.end = max(node.start, limit)
        return nodes

    return copied


def _roots_alone(trace: Trace, hidden: Collection[str] | None) -> CriticalPath | None:
    """The path of a trace of childless roots; None when a root's times are unusable (the
    general path reports those)."""
    sections: list[Section] = []
    for root in trace.roots:
        if hidden is not None and root.span_id in hidden:
            continue
        start, duration = root.start_us, root.duration_us
        if type(start) is not int or type(duration) is not int:
            return None
        if duration:
            sections.append(Section(root.span_id, start, start + duration))
    return CriticalPath(sections)


def _critical_path_plain(
    strict_boundary: bool, roots: Sequence[Span], copy: Copier
) -> CriticalPath | None:
    sections: list[Section] = []
    failed: list[str] = []
    for i, root in enumerate(roots):
        try:
            nodes = copy(i, root, 0)
            if nodes is None:
                return None
            if not nodes:
                continue
            part = _one_root(nodes, strict_boundary)
        except Exception as exc:  # a bad root is reported, the others still count
            failed.append(f"Root span {root.span_id}: {exc!r}")
            continue
        sections.extend(part)
    return CriticalPath(sections, failed)


def _critical_path_reattached(
    strict_boundary: bool, roots: Sequence[Span], copy: Copier
) -> CriticalPath | None:
    failed: list[str] = []
    forest: list[Node] = [Node(SYNTHETIC_ROOT_ID, 0, 0, "", NO_NODE)]
    ranges: list[tuple[int, int]] = []
    for i, root in enumerate(roots):
        offset = len(forest)
        try:
            nodes = copy(i, root, offset)
        except Exception as exc:
            failed.append(f"Root span {root.span_id}: {exc!r}")
            continue
        if nodes is None:
            return None
        if nodes:
            forest.extend(nodes)
            ranges.append((offset, len(forest)))
    try:
        moved = reattach_outliving(forest, synthetic=0)
    except Exception as exc:
        failed.append(f"Root span {SYNTHETIC_ROOT_ID}: {exc!r}")
        return CriticalPath([], failed)
    reattached = {forest[i].span_id: forest[p].span_id for i, p in moved.items()}
    if 0 not in moved.values():
        sections: list[Section] = []
        for lo, hi in ranges:
            try:
                part = _one_root(_rebase(forest, lo, hi), strict_boundary)
            except Exception as exc:
                failed.append(f"Root span {forest[lo].span_id}: {exc!r}")
                continue
            sections.extend(part)
        return CriticalPath(sections, failed, reattached)
    try:
        live = [n for n in forest[1:] if not n.dropped]
        synthetic = forest[0]
        synthetic.start = min(map(_NODE_START, live))
        synthetic.end = max(map(_NODE_END, live))
        for lo, _ in ranges:
            forest[lo].parent = 0
        sections = _one_root(forest, strict_boundary)
        return CriticalPath(sections, failed, reattached)
    except Exception as exc:
        failed.append(f"Root span {SYNTHETIC_ROOT_ID}: {exc!r}")
        return CriticalPath([], failed, reattached)
