"""Span rules: every rule's ``match`` evaluated on every span once, linear in spans.

Rule candidates come from the rule set's shape indexes (``diagnosis.candidates``: decided once
per distinct span name, kind, error flag and exception, and kept with the compiled set), so
most spans meet no rule at all; ``within`` sets are computed only for spans that meet a
candidate that uses one, and nested ``without_*`` matches are decided in one pass over a
trace, leaves first, only when a candidate needs them. ``when`` (what the operation's own spans
must show for a rule to apply) is decided for every rule in the engine's one walk
(``diagnosis.survey``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from opdiag.diagnosis.candidates import ShapeIndex
from opdiag.diagnosis.conditions import evaluate, missing
from opdiag.diagnosis.matching import (
    ExceptionInfo,
    SpanContext,
    exceptions_of,
    match_own,
    match_span,
    matches_context,
    type_matches,
)
from opdiag.diagnosis.rules import MEASURED_FACTS, Rule, SpanMatch, StatusRange
from opdiag.globs import Globs
from opdiag.model import Span, Trace, http_status

Walks = Sequence[tuple[Trace, Sequence[tuple[Span, int]]]]
# per walk: (span, its depth, the candidates its shape meets), in walk order
Meeting = list[tuple[Span, int, tuple[Rule, ...]]]
_EMPTY: frozenset[tuple[str, ...]] = frozenset()
_NO_IDS: frozenset[int] = frozenset()
_BARE = SpanContext()
_NOTHING = missing()


def when_holds(rule: Rule, held: Collection[int]) -> bool:
    """A rule with ``when`` applies only if one of its ``when`` matches is in ``held``."""
    return not rule.when or any(id(m) in held for m in rule.when)


def facts_hold(rule: Rule, facts: dict[str, Any]) -> bool:
    for cond in rule.facts:
        actual = facts.get(cond.key, _NOTHING)
        expected = cond.value
        # Facts are typed: a bool or text fact tested for equality with a value of its own
        # type needs no coercion (``evaluate`` would answer the same, ~20 rules per operation)
        if cond.op == "eq" and actual.__class__ is expected.__class__ and (
            expected.__class__ is bool or expected.__class__ is str
        ):
            if actual != expected:
                return False
        elif not evaluate(cond, actual):
            return False
    return True


def meeting_of(walks: Walks, index: ShapeIndex[Rule]) -> list[Meeting]:
    """Per walk, the spans that meet a candidate of ``index`` (with their depth and the
    candidates), in walk order. A span that holds none of its candidates' ``key_gate`` keys
    meets none of them (a pack's attribute-only rule is a candidate of every shape)."""
    of = index.of
    gates: dict[int, tuple[tuple[Rule, ...], frozenset[str] | None]] = {}
    out: list[Meeting] = []
    for _, walk in walks:
        meets: Meeting = []
        for span, depth in walk:
            maybe = of(span)
            if not maybe:
                continue
            gate = gates.get(id(maybe))
            if gate is None or gate[0] is not maybe:  # (the tuple is held: its id stays its)
                gate = gates[id(maybe)] = (maybe, key_gate(r.match for r in maybe))
            if gate[1] is None or not span.attributes.keys().isdisjoint(gate[1]):
                meets.append((span, depth, maybe))
        out.append(meets)
    return out


def key_gate(matches: Iterable[SpanMatch | None]) -> frozenset[str] | None:
    """Keys one of which a span must hold for one of ``matches`` to hold: each match's first
    required attribute (``SpanMatch.required``); ``None`` when one needs no attribute."""
    keys: set[str] = set()
    for m in matches:
        if m is None or not m.required:
            return None
        keys.add(m.required[0])
    return frozenset(keys)


def span_rule_hits(
    walks: Walks,
    index: ShapeIndex[Rule],
    facts: dict[str, Any],
    *,
    meeting: Sequence[Meeting] | None = None,
    withins: Sequence[Globs],
    nested: ShapeIndex[SpanMatch],
    inapplicable: Collection[str] = (),
    bottleneck: Span | None = None,
    bottleneck_share: float = 0.0,
    traces: dict[str, dict[str, None]] | None = None,
    firsts: dict[str, int] | None = None,
) -> list[tuple[Rule, Span, ExceptionInfo | None, int]]:
    """Evaluate every span rule of ``index`` (one scope of the rule set) on every span of
    ``walks``, once; keep per rule the deepest (then latest) matching span and the number of
    matches. A rule takes part when its ``facts`` hold and it is not ``inapplicable`` (its
    ``when`` failed); that is decided only for the rules some span meets, so an operation
    costs what its spans meet, not what the pack holds. ``meeting``: ``meeting_of(walks,
    index)`` when the caller has it (``diagnosis.survey``); ``withins`` are the rule set's
    ``within`` globs, ``nested`` its ``without_*`` matches. ``traces``, when given, gets per
    rule id the ids of the traces its matches sit in (neighbouring traces are evidence each,
    and a diagnosis names every one it used), at most ``MAX_EVIDENCE_TRACES``; ``firsts``,
    when given, when each rule's first match started (the span kept is the deepest, latest)."""
    active: dict[str, bool] = {}
    # id() of the index's candidates of a shape -> ``_here`` of them for this operation
    here_of: dict[int, Here] = {}
    own_within: dict[str, frozenset[tuple[str, ...]]] = {}
    # (id() of the candidates a span met, its exception types) -> those the types allow: a
    # poller failing 20k times with one error tries its rules' exception globs once
    by_types: dict[tuple[int, tuple[str, ...]], list[tuple[Rule, SpanMatch]]] = {}
    best: dict[str, tuple[tuple[int, int], Span, ExceptionInfo | None]] = {}
    counts: dict[str, int] = {}
    b_span = bottleneck
    b_share = bottleneck_share
    if meeting is None:
        meeting = meeting_of(walks, index)
    # An operation whose spans meet few candidates (a listing's one-span operations) would
    # decide which rules take part for each shape it meets: its spans' keys rule most of
    # them out first (``_holding_keys``). A bigger one decides that once per shape and tries
    # its spans against the candidates (the status sieve drops most).
    few = sum(map(len, meeting)) <= _FEW_SPANS

    def takes_part(rule: Rule) -> bool:
        found = active.get(rule.id)
        if found is None:
            found = active[rule.id] = rule.id not in inapplicable and facts_hold(rule, facts)
        return found

    def own_within_of(name: str) -> frozenset[tuple[str, ...]]:
        own = own_within.get(name)
        if own is None:
            own = own_within[name] = frozenset(w.patterns for w in withins if w(name))
        return own

    for (trace, walk), meets in zip(walks, meeting, strict=True):
        error_below: set[str] | None = None
        # ``within`` sets are computed only for spans that meet a candidate rule (few), from
        # their ancestors up, and memoised: a scoped walk holds every ancestor of its spans.
        within_of: dict[str, frozenset[tuple[str, ...]]] = {}
        by_id = trace.by_id
        below_sets: tuple[dict[int, set[str]], dict[int, set[str]]] | None = None
        for span, depth, met in meets:
            # only the candidates whose required keys the span holds
            maybe = _holding_keys(index, met, span.attributes) if few and len(met) > 2 else met
            if not maybe:
                continue
            here = here_of.get(id(maybe))
            if here is None or here[0] is not maybe:  # (the tuple is held: its id stays its)
                part = _taking_part(index, maybe, facts, inapplicable, takes_part)
                here = here_of[id(maybe)] = index.derived(
                    maybe, part, lambda m=maybe, p=part: _here(m, p)
                )
            _, rules_here, uses_within, uses_without, gate, statuses, sieve = here
            if gate is not None and span.attributes.keys().isdisjoint(gate):
                continue  # an attribute-only rule is a candidate of every shape
            if statuses is not None and not _answered(span, statuses):
                continue  # rules about 4xx/5xx answers, on the spans of a 200 poller
            if sieve is not None:  # only the candidates the span's HTTP status allows
                code = http_status(span)
                rules_here = sieve.get(code)
                if rules_here is None:
                    rules_here = sieve[code] = [
                        (r, m) for r, m in here[1] if status_allows(m, code)
                    ]
            # what the span alone decides first: the context below is built for few spans
            # an error span's exceptions, read once for all its rules, not once per rule
            excs = exceptions_of(span) if len(rules_here) > 1 and span.error else None
            if excs is not None:  # only the candidates one of its exception types allows
                rules_here = _typed(rules_here, excs, by_types)
            own = [
                (r, m, found) for r, m in rules_here if (found := match_own(m, span, excs))[0]
            ]
            if not own:
                continue
            if error_below is None:
                error_below = _error_below(walk, by_id)
            if uses_without and below_sets is None:
                below_sets = _below(trace, nested)
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
            for rule, m, (_, exc) in own:
                if not matches_context(m, ctx):
                    continue
                counts[rule.id] = counts.get(rule.id, 0) + 1
                if firsts is not None and span.start_us < firsts.get(rule.id, span.start_us + 1):
                    firsts[rule.id] = span.start_us
                if traces is not None:
                    seen = traces.setdefault(rule.id, {})
                    if len(seen) < MAX_EVIDENCE_TRACES:
                        seen[span.trace_id] = None
                key = (depth, span.start_us)
                current = best.get(rule.id)
                if current is None or key > current[0]:
                    best[rule.id] = (key, span, exc)
    if not best:
        return []
    return [
        (rule, best[rule.id][1], best[rule.id][2], counts[rule.id])
        for rule in index.items
        if rule.id in best
    ]


def part_of_whole(
    rule: Rule, walks: Walks, left_out: Callable[[Span], bool]
) -> tuple[int, int] | None:
    """For a rule with ``out_of`` or ``only_errors`` whose ``match`` held on the operation's
    spans: how many of its own spans match it and how many match ``out_of`` (0 without),
    the spans ``left_out`` names not counted (context above it, failed attempts a retry
    made good). None when the rule does not hold after all: its ``portion`` of the whole
    does not match (all of it for ``some``, not all for ``all``), or an error span does not
    match (something else failed too).
    Its ``match`` is decided by each span alone (``pack_yaml`` refuses any other); walked
    only for the few rules that matched."""
    m = _match(rule)
    whole_match = rule.out_of
    part = whole = 0
    outside = whole_match is None
    for _, walk in walks:
        for span, _ in walk:
            if left_out(span):
                continue
            inside = match_own(m, span)[0]
            if inside:
                part += 1
            elif rule.only_errors and span.error:
                return None
            if whole_match is not None and match_own(whole_match, span)[0]:
                whole += 1
                outside = outside or not inside
    if not part or outside != (rule.portion == "some"):
        return None
    return part, whole


MAX_EVIDENCE_TRACES = 50  # per rule: the traces a finding names beside its own span's


def _holding_keys(
    index: ShapeIndex[Rule], maybe: tuple[Rule, ...], attributes: dict[str, Any]
) -> tuple[Rule, ...]:
    """Of the candidates ``maybe``, those whose required keys ``attributes`` all hold (the
    others cannot match: ``match_own``), decided once per set of keys held and kept with
    the index (the answer is then held, and its id its own, like the index's). A completed
    transition meets a dozen rules about failures, each needing ``operation.error``: it
    then meets none, and which of them take part is not decided."""
    (required,) = index.derived(
        maybe, _REQUIRED, lambda: (frozenset(k for r in maybe for k in _match(r).required),)
    )
    if attributes.keys() >= required:
        return maybe
    held = frozenset(attributes.keys() & required)
    return index.derived(
        maybe,
        (_REQUIRED, held),
        lambda: tuple(r for r in maybe if held.issuperset(_match(r).required)),
    )


_REQUIRED = "required keys"
_FEW_SPANS = 32
_ABSENT = object()  # a fact the facts do not hold (``facts_hold`` tells it from None)


def _taking_part(
    index: ShapeIndex[Rule],
    maybe: tuple[Rule, ...],
    facts: dict[str, Any],
    inapplicable: Collection[str],
    takes_part: Callable[[Rule], bool],
) -> tuple[bool, ...]:
    """``takes_part`` of each of ``maybe``, decided once per distinct combination of the
    facts they test (values and their types) and of which are ``inapplicable``, and kept
    with the index: the operations of a listing share a handful, and a one-span operation
    meets a dozen candidates. Rules that test a measured time are decided every time."""
    (keys,) = index.derived(maybe, _FACT_KEYS, lambda: (_fact_keys(maybe),))
    if keys is None:
        return tuple(map(takes_part, maybe))
    values = tuple([facts.get(k, _ABSENT) for k in keys])
    key = (
        _TAKING_PART,
        values,
        tuple([v.__class__ for v in values]),
        tuple([r.id in inapplicable for r in maybe]),
    )
    try:
        return index.derived(maybe, key, lambda: tuple(map(takes_part, maybe)))
    except TypeError:  # an unhashable value: not kept
        return tuple(map(takes_part, maybe))


_FACT_KEYS = "fact keys"
_TAKING_PART = "taking part"


def _fact_keys(maybe: tuple[Rule, ...]) -> tuple[str, ...] | None:
    """The facts ``maybe`` test, or None when one is a measured time (no two operations
    share it: not worth keeping)."""
    keys = {c.key for r in maybe for c in r.facts}
    return None if not keys.isdisjoint(MEASURED_FACTS) else tuple(sorted(keys))

Here = tuple[
    tuple[Rule, ...],
    list[tuple[Rule, SpanMatch]],
    bool,
    bool,
    frozenset[str] | None,
    tuple[StatusRange, ...] | None,
    dict[int | None, list[tuple[Rule, SpanMatch]]] | None,
]


def _here(maybe: tuple[Rule, ...], taking_part: tuple[bool, ...]) -> Here:
    """The candidates that take part with their match, whether one uses ``within`` or a
    ``without_*``, the keys one of which a span must hold and the HTTP statuses one of
    which it must answer for one of them to match; when some test a status, their sieve (per
    status, the candidates it allows: a poller's 20k answers of 200 would otherwise be tried
    against every rule about a 503). Decided by the rule set alone: kept with its index
    (``ShapeIndex.derived``); the sieve fills as statuses come."""
    kept = [(r, _match(r)) for r, takes in zip(maybe, taking_part, strict=True) if takes]
    uses_within = any(m.within is not None for _, m in kept)
    uses_without = any(_uses_without(r) for r, _ in kept)
    gate = key_gate(m for _, m in kept)
    statuses = status_gate(m for _, m in kept)
    sieve = {} if any_status(m for _, m in kept) else None
    return (maybe, kept, uses_within, uses_without, gate, statuses, sieve)


def _typed(
    rules_here: list[tuple[Rule, SpanMatch]],
    excs: list[ExceptionInfo],
    by_types: dict[tuple[int, tuple[str, ...]], list[tuple[Rule, SpanMatch]]],
) -> list[tuple[Rule, SpanMatch]]:
    """Of ``rules_here``, those without exception globs or whose globs take one of the types
    of ``excs``: the others cannot match (``match_own`` would refuse them after every other
    test). ``rules_here`` is held by the caller's memo while ``by_types`` lives: its id
    stays its own."""
    key = (id(rules_here), tuple(e.type for e in excs))
    kept = by_types.get(key)
    if kept is None:
        kept = by_types[key] = [
            (r, m)
            for r, m in rules_here
            if m.exceptions is None or any(type_matches(m, t) for t in key[1])
        ]
    return kept


def _error_below(walk: Sequence[tuple[Span, int]], by_id: dict[str, Span]) -> set[str]:
    """Ids of the spans with an error span below them: from each error span up, stopping
    where an earlier climb already went (a scoped walk holds every ancestor of its spans)."""
    out: set[str] = set()
    for span in [s for s, _ in walk if s.error]:
        parent_id = span.parent_id
        while parent_id is not None and parent_id not in out:
            out.add(parent_id)
            parent = by_id.get(parent_id)
            parent_id = parent.parent_id if parent is not None else None
    return out


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
    trace: Trace, nested: ShapeIndex[SpanMatch]
) -> tuple[dict[int, set[str]], dict[int, set[str]]]:
    """For each nested ``without_descendant`` (``without_child``) match of the rule set, the
    ids of the spans that have a matching descendant (direct child), by the match's ``id()``.
    One pass over the whole trace, leaves first (reversed pre-order: a span's subtree comes
    before it), so linear in spans × nested matches; the static part of each match comes from
    the shape index. The whole trace, not the operation's scope: a call counts wherever its
    spans were attributed."""
    with_desc: dict[int, set[str]] = {id(m): set() for m in nested.items}
    with_child: dict[int, set[str]] = {id(m): set() for m in nested.items}
    of = nested.of
    for span, _ in reversed(trace.walked()):
        parent = span.parent_id
        if parent is None:
            continue
        maybe = of(span)
        hits = tuple(id(m) for m in maybe if match_span(m, span, _BARE)[0]) if maybe else ()
        sid = span.span_id
        for k, ids in with_desc.items():
            if k in hits or sid in ids:
                ids.add(parent)
        for k in hits:
            with_child[k].add(parent)
    return with_desc, with_child


def _match(rule: Rule) -> SpanMatch:
    assert rule.match is not None  # rules without a match never reach the span walk
    return rule.match


def status_gate(matches: Iterable[SpanMatch]) -> tuple[StatusRange, ...] | None:
    """The HTTP status ranges one of which a span must answer for one of ``matches`` to hold
    (each needs ``http_status``); ``None`` when one does not need a status."""
    ranges: list[StatusRange] = []
    for m in matches:
        if not m.http_status or m.http_no_status:  # (``http_no_status`` wins in match_own)
            return None
        ranges.extend(m.http_status)
    return tuple(ranges)


def _answered(span: Span, ranges: tuple[StatusRange, ...]) -> bool:
    status = http_status(span)
    return status is not None and any(r.low <= status <= r.high for r in ranges)


def any_status(matches: Iterable[SpanMatch]) -> bool:
    """Whether one of ``matches`` tests the HTTP status (a sieve by status can help)."""
    return any(m.http_status or m.http_no_status for m in matches)


def status_allows(m: SpanMatch, status: int | None) -> bool:
    """``match_own``'s HTTP status test alone, for a span answering ``status``."""
    if m.http_no_status:
        return status is None
    if m.http_status:
        return status is not None and any(r.low <= status <= r.high for r in m.http_status)
    return True


def _uses_without(rule: Rule) -> bool:
    m = rule.match
    return m is not None and (m.without_descendant is not None or m.without_child is not None)


def _holding(sets: dict[int, set[str]], span_id: str) -> frozenset[int]:
    """The nested matches (ids) whose span-id set holds ``span_id``."""
    if not sets:
        return _NO_IDS
    return frozenset(k for k, ids in sets.items() if span_id in ids)
