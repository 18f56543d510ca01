"""Span rules: every rule's ``match`` evaluated on every span once, linear in spans.

Rule candidates are looked up per distinct span shape (name, kind, error flag, has an
exception), so most spans meet no rule at all; ``within`` sets are computed only for spans
that meet a candidate that uses one, and nested ``without_*`` matches are decided in one
pass over a trace, leaves first, only when a candidate needs them. ``when`` (what the
operation's own spans must show for a rule to apply) is decided once per rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from opdiag.diagnosis.conditions import evaluate, missing
from opdiag.diagnosis.matching import ExceptionInfo, SpanContext, match_span
from opdiag.diagnosis.rules import Rule, SpanMatch
from opdiag.model import Span, Trace

Walks = Sequence[tuple[Trace, Sequence[tuple[Span, int]]]]
_EMPTY: frozenset[tuple[str, ...]] = frozenset()
_NO_IDS: frozenset[int] = frozenset()


def when_holds(rule: Rule, walks: Walks) -> bool:
    """A rule with ``when`` applies only if one of the operation's own spans matches one of
    its ``when`` matches (static shape first: most spans are ruled out by name and kind)."""
    if not rule.when:
        return True
    bare = SpanContext()
    shapes: dict[tuple[str, str, bool, bool], tuple[SpanMatch, ...]] = {}
    for _, walk in walks:
        for span, _ in walk:
            attrs = span.attributes
            has_exc = bool(span.events) or "exception.type" in attrs or "error.type" in attrs
            shape = (span.name, span.kind, span.error, has_exc)
            maybe = shapes.get(shape)
            if maybe is None:
                maybe = shapes[shape] = tuple(m for m in rule.when if _static_match(m, *shape))
            if any(match_span(m, span, bare)[0] for m in maybe):
                return True
    return False


def facts_hold(rule: Rule, facts: dict[str, Any]) -> bool:
    nothing = missing()
    return all(evaluate(c, facts.get(c.key, nothing)) for c in rule.facts)


def span_rule_hits(
    walks: Walks,
    rules: Sequence[Rule],
    facts: dict[str, Any],
    bottleneck: Span | None = None,
    bottleneck_share: float = 0.0,
) -> list[tuple[Rule, Span, ExceptionInfo | None, int]]:
    """Evaluate every span rule on every span of ``walks``, once; keep per rule the deepest
    (then latest) matching span and the number of matches. ``rules`` are the candidates
    (their scope, facts and ``when`` already checked by the caller)."""
    active = [r for r in rules if r.match is not None and facts_hold(r, facts)]
    withins = list(
        {
            r.match.within.patterns: r.match.within
            for r in active
            if r.match is not None and r.match.within is not None
        }.values()
    )
    # nested ``without_descendant``/``without_child`` matches, by id(): precomputed in one
    # pass over a trace, only once a span of it meets a candidate rule that uses one
    no_desc: dict[int, SpanMatch] = {}
    no_child: dict[int, SpanMatch] = {}
    for r in active:
        if r.match is not None and r.match.without_descendant is not None:
            no_desc[id(r.match.without_descendant)] = r.match.without_descendant
        if r.match is not None and r.match.without_child is not None:
            no_child[id(r.match.without_child)] = r.match.without_child
    # (name, kind, error, has an exception) -> rules that may match, does one use ``within``,
    # does one use ``without_*``
    candidates: dict[tuple[str, str, bool, bool], tuple[list[Rule], bool, bool]] = {}
    own_within: dict[str, frozenset[tuple[str, ...]]] = {}
    best: dict[str, tuple[tuple[int, int], Span, ExceptionInfo | None]] = {}
    counts: dict[str, int] = {}
    b_span = bottleneck
    b_share = bottleneck_share

    def own_within_of(name: str) -> frozenset[tuple[str, ...]]:
        own = own_within.get(name)
        if own is None:
            own = own_within[name] = frozenset(w.patterns for w in withins if w(name))
        return own

    for trace, walk in walks:
        error_below: set[str] = set()
        for span, _ in reversed(walk):
            if (span.error or span.span_id in error_below) and span.parent_id is not None:
                error_below.add(span.parent_id)
        # ``within`` sets are computed only for spans that meet a candidate rule (few), from
        # their ancestors up, and memoised: a scoped walk holds every ancestor of its spans.
        within_of: dict[str, frozenset[tuple[str, ...]]] = {}
        by_id = trace.by_id
        below_sets: tuple[dict[int, set[str]], dict[int, set[str]]] | None = None
        for span, depth in walk:
            name = span.name
            attrs = span.attributes
            has_exc = bool(span.events) or "exception.type" in attrs or "error.type" in attrs
            key = (name, span.kind, span.error, has_exc)
            here = candidates.get(key)
            if here is None:
                maybe = [r for r in active if _may_match(r, name, span.kind, span.error, has_exc)]
                uses_within = any(r.match is not None and r.match.within is not None for r in maybe)
                uses_without = any(_uses_without(r) for r in maybe)
                here = candidates[key] = (maybe, uses_within, uses_without)
            rules_here, uses_within, uses_without = here
            if not rules_here:
                continue
            if uses_without and below_sets is None:
                below_sets = _below(trace, no_desc, no_child)
            with_desc, with_child = below_sets or ({}, {})
            within = _within(span, by_id, within_of, own_within_of) if uses_within else _EMPTY
            below = span.span_id in error_below
            is_bottleneck = span is b_span
            ctx = SpanContext(
                depth=depth,
                within=within,
                error_chain=span.error or below,
                error_origin=span.error and not below,
                bottleneck=is_bottleneck,
                share=b_share if is_bottleneck else 0.0,
                descendants=_holding(with_desc, span.span_id),
                children=_holding(with_child, span.span_id),
            )
            for rule in rules_here:
                assert rule.match is not None
                ok, exc = match_span(rule.match, span, ctx)
                if not ok:
                    continue
                counts[rule.id] = counts.get(rule.id, 0) + 1
                key = (depth, span.start_us)
                current = best.get(rule.id)
                if current is None or key > current[0]:
                    best[rule.id] = (key, span, exc)
    return [
        (rule, best[rule.id][1], best[rule.id][2], counts[rule.id])
        for rule in active
        if rule.id in best
    ]


def _within(
    span: Span,
    by_id: dict[str, Span],
    memo: dict[str, frozenset[tuple[str, ...]]],
    own_within_of: Callable[[str], frozenset[tuple[str, ...]]],
) -> frozenset[tuple[str, ...]]:
    """The ``match.within`` patterns satisfied by the span or one of its ancestors."""
    chain: list[Span] = []
    current: Span | None = span
    found = _EMPTY
    while current is not None:
        known = memo.get(current.span_id)
        if known is not None:
            found = known
            break
        chain.append(current)
        parent_id = current.parent_id
        current = by_id.get(parent_id) if parent_id is not None else None
    for below in reversed(chain):
        own = own_within_of(below.name)
        if own:
            found = found | own
        memo[below.span_id] = found
    return found


def _below(
    trace: Trace, no_desc: dict[int, SpanMatch], no_child: dict[int, SpanMatch]
) -> tuple[dict[int, set[str]], dict[int, set[str]]]:
    """For each nested ``without_descendant`` (``without_child``) match, the ids of the spans
    that have a matching descendant (direct child). One pass over the whole trace, leaves
    first (reversed pre-order: a span's subtree comes before it), so linear in spans × nested
    matches; the static part of each match is decided once per distinct span shape. The whole
    trace, not the operation's scope: a call counts wherever its spans were attributed."""
    nested = {**no_desc, **no_child}
    with_desc: dict[int, set[str]] = {k: set() for k in no_desc}
    with_child: dict[int, set[str]] = {k: set() for k in no_child}
    shapes: dict[tuple[str, str, bool, bool], tuple[int, ...]] = {}
    bare = SpanContext()
    for span, _ in reversed(trace.walked()):
        parent = span.parent_id
        if parent is None:
            continue
        attrs = span.attributes
        has_exc = bool(span.events) or "exception.type" in attrs or "error.type" in attrs
        shape = (span.name, span.kind, span.error, has_exc)
        maybe = shapes.get(shape)
        if maybe is None:
            maybe = shapes[shape] = tuple(k for k, m in nested.items() if _static_match(m, *shape))
        hits = tuple(k for k in maybe if match_span(nested[k], span, bare)[0]) if maybe else ()
        sid = span.span_id
        for k, ids in with_desc.items():
            if k in hits or sid in ids:
                ids.add(parent)
        for k in hits:
            if k in with_child:
                with_child[k].add(parent)
    return with_desc, with_child


def _uses_without(rule: Rule) -> bool:
    m = rule.match
    return m is not None and (m.without_descendant is not None or m.without_child is not None)


def _holding(sets: dict[int, set[str]], span_id: str) -> frozenset[int]:
    """The nested matches (ids) whose span-id set holds ``span_id``."""
    if not sets:
        return _NO_IDS
    return frozenset(k for k, ids in sets.items() if span_id in ids)


def _may_match(rule: Rule, name: str, kind: str, error: bool, has_exc: bool) -> bool:
    """The static part of a span match (name, kind, error flag, an exception recorded at all),
    decided once per distinct combination so most spans meet no candidate rule."""
    m = rule.match
    if m is None:
        return False
    return _static_match(m, name, kind, error, has_exc)


def _static_match(m: SpanMatch, name: str, kind: str, error: bool, has_exc: bool) -> bool:
    """``_may_match`` for one span match."""
    if m.names is not None and not m.names(name):
        return False
    if m.kinds and kind not in m.kinds:
        return False
    if m.error is not None and m.error is not error:
        return False
    return has_exc or (m.exceptions is None and m.exception_message is None)
