"""Spans meet a rule candidate only when they hold one of the keys the candidates require,
and are examined only when they answer one of the HTTP statuses the candidates require
(issue 10: a pack's attribute-only rule is a candidate of every shape, and 4xx rules meet
every span of a polling loop): the gates leave out only spans no candidate could match, so
the span rules fire exactly as with every shape-meeting span examined."""

from __future__ import annotations

import random
from pathlib import Path

import msgspec
import pytest
from conftest import DEMO_TRACES, REAL_KTRDR
from opdiag.diagnosis.facts import scoped_walk
from opdiag.diagnosis.matching import match_own
from opdiag.diagnosis.rules import load_rules
from opdiag.diagnosis.span_rules import key_gate, meeting_of, span_rule_hits, status_gate
from opdiag.model import Span, Trace, build_trace, http_status
from opdiag.operations import group_operations
from opdiag.sources.files import trace_files
from opdiag.sources.readers import read_file

RULES = load_rules()
FACTS = {"status": "failed", "finished": True, "found": True}


def _walks(directory: Path) -> list[list[tuple[Trace, list[tuple[Span, int]]]]]:
    traces = [t for path in trace_files(directory) for t in read_file(path)]
    out = [[(t, t.walk_list())] for t in traces]
    for group in group_operations(traces):
        walks = [(t, w) for t in group.traces if (w := scoped_walk(t, group.operation_id)[0])]
        if walks:
            out.append(walks)
    return out


def _ungated(walks: list[tuple[Trace, list[tuple[Span, int]]]]) -> list[list[object]]:
    of = RULES.own_index.of
    return [[(s, d, m) for s, d in walk if (m := of(s))] for _, walk in walks]


@pytest.mark.parametrize("directory", [DEMO_TRACES, REAL_KTRDR / "run1" / "traces"])
def test_the_gate_changes_no_hit(directory: Path) -> None:
    for walks in _walks(directory):
        kwargs = {"withins": RULES.withins, "nested": RULES.nested_index}
        gated = span_rule_hits(walks, RULES.own_index, FACTS, **kwargs)
        ungated = span_rule_hits(walks, RULES.own_index, FACTS, meeting=_ungated(walks), **kwargs)
        assert gated == ungated


def test_a_span_without_the_required_keys_meets_no_attribute_only_rule() -> None:
    dates = {"data.start_date": "2024-02-01", "data.end_date": "2024-01-01"}
    spans = [
        Span("ab" * 16, "1".rjust(16, "0"), "x", "svc", 0, 10),
        Span("ab" * 16, "2".rjust(16, "0"), "x", "svc", 1, 5, attributes=dates),
    ]
    spans[1].references = []
    trace = build_trace("ab" * 16, spans)
    [meets] = meeting_of([(trace, trace.walk_list())], RULES.own_index)
    assert [s.span_id for s, _, _ in meets] == [spans[1].span_id]
    hits = span_rule_hits(
        [(trace, trace.walk_list())],
        RULES.own_index,
        FACTS,
        withins=RULES.withins,
        nested=RULES.nested_index,
    )
    assert "date-range-inverted" in {rule.id for rule, *_ in hits}


def test_a_candidate_without_required_keys_opens_the_gate() -> None:
    with_keys = [r.match for r in RULES.rules if r.match is not None and r.match.required]
    without = [r.match for r in RULES.rules if r.match is not None and not r.match.required]
    assert with_keys and without
    assert key_gate(with_keys[:2]) == frozenset(m.required[0] for m in with_keys[:2])
    assert key_gate([with_keys[0], without[0]]) is None
    assert key_gate([None]) is None


def _statuses_answered(span: Span, ranges: tuple) -> bool:
    status = http_status(span)
    return status is not None and any(r.low <= status <= r.high for r in ranges)


@pytest.mark.parametrize("directory", [DEMO_TRACES, REAL_KTRDR / "run1" / "traces"])
def test_spans_the_gates_leave_out_match_no_candidate(directory: Path) -> None:
    spans = [s for path in trace_files(directory) for t in read_file(path) for s in t.spans]
    rng = random.Random(9)
    for span in list(spans):  # the corpus, and its spans answering other statuses
        twin = msgspec.structs.replace(span, attributes=dict(span.attributes))
        twin.attributes["http.status_code"] = rng.choice([200, 404, 422, 500, 503, "x"])
        twin.error = span.error
        spans.append(twin)
    left_out = 0
    for span in spans:
        matches = [r.match for r in RULES.own_index.of(span) if r.match is not None]
        keys, statuses = key_gate(matches), status_gate(matches)
        out = (keys is not None and span.attributes.keys().isdisjoint(keys)) or (
            statuses is not None and not _statuses_answered(span, statuses)
        )
        if out:
            left_out += 1
            assert not any(match_own(m, span)[0] for m in matches)
    assert left_out


def test_a_match_without_a_status_or_with_no_status_opens_the_status_gate() -> None:
    with_status = [
        r.match
        for r in RULES.rules
        if r.match is not None and r.match.http_status and not r.match.http_no_status
    ]
    without = [r.match for r in RULES.rules if r.match is not None and not r.match.http_status]
    assert with_status and without
    assert status_gate(with_status[:1]) == with_status[0].http_status
    assert status_gate([with_status[0], without[0]]) is None
    both = msgspec.structs.replace(with_status[0], http_no_status=True)
    assert status_gate([both]) is None
