"""The shortcuts of issue 10 give what the plain computations give.

The engine's one walk (``diagnosis.survey``) against each step computed on its own, the rule
shape index against evaluating every static match, the critical path of childless roots and
the walk copy without hidden spans against the general algorithm, the file source's range
test against sorted starts, the URL encoders against ``quote``, the listing's row-by-row JSON
against ``dumps`` of the whole list, and the listing's iterator against the list.
"""

from __future__ import annotations

import io
import json
import random
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import DEMO_TRACES, JAEGER_FIXTURES, REAL_KTRDR
from opdiag.analysis.critical_path import (
    CriticalPath,
    _copiers,
    _copy_walked,
    _critical_path_plain,
    _critical_path_reattached,
    critical_path,
)
from opdiag.analysis.gaps import work_spans
from opdiag.diagnosis.bottleneck import noise_check
from opdiag.diagnosis.candidates import MAX_SHAPES, ShapeIndex, has_exception, static_match
from opdiag.diagnosis.facts import scoped_walk
from opdiag.diagnosis.matching import SpanContext, exceptions_of, match_own, match_span
from opdiag.diagnosis.neighbours import workers_of
from opdiag.diagnosis.op_values import declared_values
from opdiag.diagnosis.probes import WorkerView
from opdiag.diagnosis.rules import Rule, SpanMatch, load_rules
from opdiag.diagnosis.span_rules import meeting_of, span_rule_hits
from opdiag.diagnosis.survey import survey
from opdiag.errors import InputError, TraceFormatError
from opdiag.globs import Globs, any_of
from opdiag.model import CHILD_OF, Event, Reference, Span, Trace, build_trace
from opdiag.operations import group_operations
from opdiag.render import links
from opdiag.render.json_render import dumps, write_list
from opdiag.settings import DiagnosisSettings, LinkSettings, load_settings
from opdiag.sources.files import FileSource, trace_files
from opdiag.sources.readers import read_file

RULES = load_rules()
NOISE = noise_check(Globs.of(DiagnosisSettings().noise_span_patterns))


def _traces(paths: list[Path]) -> list[Trace]:
    out: list[Trace] = []
    for path in paths:
        try:
            out.extend(read_file(path))
        except TraceFormatError:
            continue
    return out


CORPORA = {
    "fixtures": _traces(sorted(JAEGER_FIXTURES.glob("*.json"))),
    "demo": _traces(list(trace_files(DEMO_TRACES))),
    "real": _traces(list(trace_files(REAL_KTRDR / "run1" / "traces"))),
}


def _operations(name: str) -> list[list[tuple[Trace, list[tuple[Span, int]]]]]:
    """The scoped walks of every operation of a corpus, as the engine makes them, and every
    trace alone (the Jaeger fixtures hold no KTRDR operation)."""
    out = [[(trace, trace.walk_list())] for trace in CORPORA[name]]
    for group in group_operations(CORPORA[name]):
        walks = []
        for trace in group.traces:
            walk, _ = scoped_walk(trace, group.operation_id)
            if walk:
                walks.append((trace, walk))
        if walks:
            out.append(walks)
    return out


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_the_one_walk_finds_what_each_step_found_alone(name: str) -> None:
    operations = _operations(name)
    assert operations
    globs = RULES.neighbours.worker_globs()
    for walks in operations:
        found = survey(walks, RULES, NOISE, globs)
        for (trace, _), ids in zip(walks, found.noisy, strict=True):
            assert ids == {s.span_id for s in trace.spans if NOISE(s)}
        assert found.work == work_spans(walks, NOISE)
        spans = [span for _, walk in walks for span, _ in walk]
        children = {trace.trace_id: trace.children for trace, _ in walks}
        view = WorkerView([])
        assert workers_of(found.calls, children, globs, view) == workers_of(
            spans, children, globs, view
        )
        for service, end in found.worker_ends.items():
            assert end == max(s.end_us for s in spans if s.service == service)
        assert declared_values(found.valued, RULES.values) == declared_values(spans, RULES.values)
        bare = SpanContext()
        whens = {id(m): m for r in RULES.rules for m in r.when}
        held = {k for k, m in whens.items() if any(match_span(m, s, bare)[0] for s in spans)}
        assert found.held == held
        assert found.meeting == meeting_of(walks, RULES.own_index)


def _answering(statuses: list[int | None]) -> list[tuple[Trace, list[tuple[Span, int]]]]:
    """One trace of client calls to the backend's start endpoint and server spans of it,
    answering each of ``statuses`` (None: no status attribute)."""
    spans = [Span("1" * 32, "0" * 15 + "1", "cli.backtest", "ktrdr-cli", 1_000, 9_000_000)]
    for i, status in enumerate(statuses):
        for kind, name, service in (
            ("client", "POST", "ktrdr-cli"),
            ("server", "POST /api/v1/backtests/start", "ktrdr-api"),
        ):
            attrs: dict[str, object] = {"http.url": "http://backend:8000/api/v1/backtests/start"}
            if status is not None:
                attrs["http.status_code"] = status
            spans.append(
                Span(
                    "1" * 32,
                    f"{len(spans) + 1:016x}",
                    name,
                    service,
                    2_000 + i * 10_000,
                    5_000,
                    kind=kind,
                    attributes=attrs,
                    references=[Reference(CHILD_OF, "1" * 32, "0" * 15 + "1")],
                )
            )
    trace = build_trace("1" * 32, spans)
    return [(trace, trace.walk_list())]


def test_the_status_sieve_drops_only_what_the_status_rules_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``span_rule_hits`` tries a span only against the candidates its HTTP status allows;
    without that sieve every operation of every corpus (and calls answering 200, 404, 422,
    500, 503 and nothing) meets the same rules on the same spans."""
    from opdiag.diagnosis import span_rules

    operations = [w for name in sorted(CORPORA) for w in _operations(name)]
    operations.append(_answering([200, 503, None, 422, 500, 404, 200, 503]))
    facts = {"found": True, "worker_ran": False, "status": "failed"}
    sieved = [
        span_rule_hits(w, RULES.own_index, facts, withins=RULES.withins, nested=RULES.nested_index)
        for w in operations
    ]
    assert any(hits for hits in sieved)
    here = span_rules._here

    def unsieved(maybe: tuple[Rule, ...], taking_part: tuple[bool, ...]) -> span_rules.Here:
        return (*here(maybe, taking_part)[:6], None)

    monkeypatch.setattr(span_rules, "_here", unsieved)
    fresh = load_rules()  # its index has derived nothing yet: every ``here`` is unsieved
    plain = [
        span_rule_hits(w, fresh.own_index, facts, withins=fresh.withins, nested=fresh.nested_index)
        for w in operations
    ]
    assert [[(r.id, s.span_id, n) for r, s, _, n in hits] for hits in sieved] == [
        [(r.id, s.span_id, n) for r, s, _, n in hits] for hits in plain
    ]


def _failing(types: list[str]) -> list[tuple[Trace, list[tuple[Span, int]]]]:
    """A worker's spans in error, each recording one exception of ``types`` (as an event,
    or as the ``exception.type`` attribute some exporters set), under a training start."""
    tid = "2" * 32
    root = Span(tid, "0" * 15 + "1", "POST /api/v1/trainings/start", "ktrdr-api", 1_000, 9_000_000)
    spans = [root]
    for i, exc_type in enumerate(types):
        exc = {"exception.type": exc_type, "exception.message": f"failure {i}: Connection refused"}
        spans.append(
            Span(
                tid,
                f"{i + 2:016x}",
                ("training.data_loading", "ib.connect", "POST", "data.fetch")[i % 4],
                "ktrdr-training-worker-1a2b3c4d" if i % 3 else "ktrdr-api",
                2_000 + i * 1_000,
                500,
                kind="client" if i % 2 else "internal",
                attributes={"error": True, **({} if i % 2 else exc)},
                events=[Event("exception", 2_100 + i * 1_000, exc)] if i % 2 else [],
                references=[Reference(CHILD_OF, tid, "0" * 15 + "1")],
                status="error",
            )
        )
    trace = build_trace(tid, spans)
    return [(trace, trace.walk_list())]


def test_the_exception_type_sieve_drops_only_what_the_types_rule_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``span_rule_hits`` tries an error span only against the candidates without exception
    globs or whose globs take one of its exception types; without that sieve every operation
    of every corpus, and spans failing with types many rules name, meet the same rules."""
    from opdiag.diagnosis import span_rules

    types = [
        "httpx.ConnectError",
        "ConnectionRefusedError",
        "ValueError",
        "asyncio.TimeoutError",
        "ib_insync.ConnectionError",
        "KeyError",
        "httpx.ReadTimeout",
        "",
    ]
    operations = [w for name in sorted(CORPORA) for w in _operations(name)]
    operations += [_failing(types * 3), _failing(types[:1] * 10)]
    facts = {"found": True, "worker_ran": True, "status": "failed"}

    def hits(rules: Any) -> list[list[tuple[str, str, str | None, int]]]:
        out = []
        for w in operations:
            found = span_rule_hits(
                w, rules.own_index, facts, withins=rules.withins, nested=rules.nested_index
            )
            out.append([(r.id, s.span_id, e and e.type, n) for r, s, e, n in found])
        return out

    sieved = hits(RULES)
    assert any(sieved[-2]) and any(sieved[-1])
    monkeypatch.setattr(span_rules, "_typed", lambda rules_here, excs, by_types: rules_here)
    assert hits(load_rules()) == sieved


def test_the_shape_index_answers_what_every_static_match_answers() -> None:
    index = RULES.own_index
    rng = random.Random(5)
    names = sorted({s.name for trace in CORPORA["real"] for s in trace.spans})
    for _ in range(300):
        span = Span(
            "ab" * 16,
            "cd" * 8,
            rng.choice([*names, "x", "GET"]),
            "svc",
            0,
            1,
            rng.choice(["internal", "server", "client", "producer", "consumer"]),
            {"exception.type": "X"} if rng.random() < 0.3 else {},
        )
        span.error = rng.random() < 0.5
        want = tuple(
            r
            for r in index.items
            if r.match is not None
            and static_match(r.match, span.name, span.kind, span.error, has_exception(span))
        )
        assert index.of(span) == want


def _shape_names() -> list[str]:
    """Span names of every corpus, a name each rule glob takes (``*`` filled in) and names
    no glob takes: routes with ids, as an instrumentation that does not template them sends."""
    names = {s.name for corpus in CORPORA.values() for trace in corpus for s in trace.spans}
    for r in RULES.rules:
        for m in (r.match, *r.when):
            if m is not None and m.names is not None:
                names.update(p.replace("*", "abc").replace("?", "z") for p in m.names.patterns)
    names.update(f"GET /api/v1/items/{i}" for i in range(50))
    names.update(["", "x", "GET", "cli.", "POST /api/v1/data/", "ib.connect ", "IB.CONNECT"])
    return sorted(names)


_KINDS = ["internal", "server", "client", "producer", "consumer", "other"]


def _every_static_match(index: ShapeIndex[Any], key: tuple[str, str, bool]) -> tuple[Any, Any]:
    name, kind, error = key
    matches = [(item, index._match_of(item)) for item in index.items]
    return tuple(
        item for item, m in matches if m is not None and static_match(m, name, kind, error, False)
    ), tuple(
        item for item, m in matches if m is not None and static_match(m, name, kind, error, True)
    )


@pytest.mark.parametrize("which", ["own_index", "near_index", "when_index", "nested_index"])
def test_every_shape_gets_what_every_static_match_gives(which: str) -> None:
    """Whether a name no glob takes is told by one regex, or the globs are tried one by one
    (their flags differ), each shape's candidates are the items whose static match holds."""
    items = getattr(RULES, which).items
    match_of = getattr(RULES, which)._match_of
    fresh = ShapeIndex(items, match_of)
    alone = ShapeIndex(items, match_of)
    if alone._any_name is not None:
        alone._any_name = None  # as for globs compiled with flags of their own
    for name in _shape_names():
        for kind in _KINDS:
            for error in (False, True):
                key = (name, kind, error)
                want = _every_static_match(fresh, key)
                for index in (fresh, alone):
                    plain, with_exc = index.entry(key)
                    assert (plain, with_exc) == want, (which, key)
                    assert (with_exc is plain) == (want[0] == want[1])


def test_one_regex_for_several_globs_takes_what_one_of_them_takes() -> None:
    groups = [Globs.of(["cli.*", "POST /api/v1/data/*"]), Globs.of(["ib.connect"]), Globs.of([])]
    union = any_of(groups)
    assert union is not None
    texts = ["cli.train", "cli.", "POST /api/v1/data/load", "ib.connect", "ib.connect2", ""]
    for text in [*texts, "xcli.a", "POST /api/v1/data", "ib.connec"]:
        assert (union.match(text) is not None) == any(g(text) for g in groups), text
    assert any_of([]) is None
    folded = Globs(("ib.*",), re.compile("ib\\..*", re.IGNORECASE))
    assert any_of([Globs.of(["x"]), folded]) is None  # flags differ: tried one by one


def test_a_name_tells_its_type_hint_as_every_hint_in_turn_does() -> None:
    hints = RULES.type_hints
    assert hints
    for name in _shape_names():
        want = next((h.type for h in hints if h.span(name)), None)
        assert load_rules().name_info(name) == (want, RULES.phases(name)), name


def test_the_exceptions_of_a_span_read_once_match_as_read_per_rule() -> None:
    """``span_rule_hits`` reads a span's exceptions once for all the rules it tries."""
    tried = 0
    spans = [s for corpus in CORPORA.values() for trace in corpus for s in trace.spans]
    spans.append(
        _excepting(["ValueError", "httpx.ConnectError", "builtins.ConnectionRefusedError"])
    )
    spans.append(
        Span("ab" * 16, "ef" * 8, "POST", "svc", 0, 1, "client", {"error.type": "ReadTimeout"})
    )
    for span in spans:
        excs = exceptions_of(span)
        for r in RULES.rules:
            for m in (r.match, *r.when):
                if m is not None:
                    assert match_own(m, span, excs) == match_own(m, span), (r.id, span.name)
                    tried += 1
    assert tried > 10_000
    # a span without an error or an event offers no exception as evidence, read once or not
    quiet = spans[-1]
    assert not quiet.error and not quiet.events
    for excs_given in (None, exceptions_of(quiet)):
        assert match_own(SpanMatch(), quiet, excs_given) == (True, None)


def _excepting(types: list[str]) -> Span:
    span = Span("ab" * 16, "cd" * 8, "POST /api/v1/data/load", "svc", 0, 1, "server")
    span.events = [
        Event("exception", 0, {"exception.type": t, "exception.message": t}) for t in types
    ]
    span.error = True
    return span


def test_the_shape_index_forgets_rather_than_grows() -> None:
    index = ShapeIndex(RULES.own_index.items, lambda r: r.match)
    for i in range(MAX_SHAPES + 10):
        index.of(Span("ab" * 16, "cd" * 8, f"name-{i}", "svc", 0, 1))
    assert len(index._memo) <= MAX_SHAPES


def test_what_is_derived_from_an_index_answer_is_made_once_per_answer_and_part() -> None:
    """``span_rule_hits`` keeps its per-candidates work with the rule set's index (no module
    global): made once per (answer, part), made again for another answer, bounded."""
    index = ShapeIndex(RULES.own_index.items, lambda r: r.match)
    made: list[tuple[int, ...]] = []

    def make(answer: tuple[Any, ...], part: tuple[bool, ...]) -> tuple[int, ...]:
        made.append((id(answer), *part))
        return (len(answer), sum(part))

    answer = index.of(Span("ab" * 16, "cd" * 8, "POST /api/v1/trainings/start", "svc", 0, 1))
    assert answer
    part = tuple(True for _ in answer)
    first = index.derived(answer, part, lambda: make(answer, part))
    assert index.derived(answer, part, lambda: make(answer, part)) is first
    assert len(made) == 1
    other = tuple(list(answer))  # equal, but another tuple: not the index's answer
    index.derived(other, part, lambda: make(other, part))
    index.derived(answer, (), lambda: make(answer, ()))
    assert len(made) == 3
    for i in range(MAX_SHAPES + 10):
        index.derived(answer, (i,), lambda: (0,))
    assert len(index._derived) <= MAX_SHAPES


def test_the_surveys_shape_memo_forgets_rather_than_grows() -> None:
    """Span names that hold ids (a route not templated, a file per name) never repeat: what
    the survey keeps per shape stays bounded, with the rule set, and answers the same after
    it forgot."""
    rules = load_rules()
    spans = [
        Span("ab" * 16, f"{i + 1:016x}", f"GET /files/{i}", "svc", i, 1)
        for i in range(MAX_SHAPES + 10)
    ]
    trace = build_trace("ab" * 16, spans)
    walks = [(trace, trace.walked())]
    first = survey(walks, rules, NOISE, ())
    assert 0 < len(rules.shapes) <= MAX_SHAPES
    again = survey(walks, rules, NOISE, ())
    assert [[s.span_id for s in w] for w in again.work] == [
        [s.span_id for s in w] for w in first.work
    ]
    assert again.noisy == first.noisy and again.held == first.held
    assert load_rules().shapes == {}  # each rule set keeps its own


def _forest(rng: random.Random, n: int) -> Trace:
    spans = [
        Span(
            "ab" * 16,
            f"{i + 1:016x}",
            "op",
            "svc",
            rng.randrange(0, 5) * 10,
            rng.randrange(0, 3) * 10,
            rng.choice(["internal", "server", "client", "producer", "consumer"]),
        )
        for i in range(n)
    ]
    return build_trace("ab" * 16, spans)


def _general(trace: Trace, hidden: set[str] | None, reattach: bool) -> CriticalPath:
    """The algorithm itself, without the childless-roots shortcut."""
    for roots, copy in _copiers(trace, hidden):
        run = _critical_path_reattached if reattach else _critical_path_plain
        found = run(False, roots, copy)
        if found is not None:
            return found
    raise AssertionError


@pytest.mark.parametrize("seed", range(20))
def test_childless_roots_are_their_own_path(seed: int) -> None:
    rng = random.Random(seed)
    trace = _forest(rng, rng.randrange(1, 12))
    assert not trace.children
    hidden = {s.span_id for s in trace.spans if rng.random() < 0.3} or None
    for reattach in (False, True):
        got = critical_path(trace, reattach_async=reattach, transparent=hidden)
        assert got == _general(trace, hidden, reattach)


def test_the_walk_copy_hands_over_only_when_no_hidden_span_has_a_visible_child() -> None:
    spans = [Span("ab" * 16, "0" * 15 + "1", "root", "svc", 0, 100)]
    for i, parent in ((2, 1), (3, 2), (4, 1)):
        spans.append(
            Span(
                "ab" * 16,
                f"{i:016x}",
                f"s{i}",
                "svc",
                i,
                10,
                references=[Reference(CHILD_OF, "ab" * 16, f"{parent:016x}")],
            )
        )
    trace = build_trace("ab" * 16, spans)
    walked = trace.walked()
    whole = (0, len(walked))
    copied = _copy_walked(walked, *whole, 0, {f"{4:016x}"})  # a leaf: nothing moves up
    assert copied is not None
    assert [n.span_id for n in copied] == [f"{i:016x}" for i in (1, 2, 3)]
    assert _copy_walked(walked, *whole, 0, {f"{2:016x}"}) is None  # its child moves up
    hidden_subtree = {f"{2:016x}", f"{3:016x}"}
    copied = _copy_walked(walked, *whole, 0, hidden_subtree)
    assert copied is not None and [n.span_id for n in copied] == [f"{i:016x}" for i in (1, 4)]


def test_a_file_source_finds_the_traces_with_a_span_starting_in_a_range() -> None:
    paths = list(trace_files(REAL_KTRDR / "run1" / "traces"))
    source = FileSource([REAL_KTRDR / "run1" / "traces"])
    traces = source.all_traces()
    rng = random.Random(3)
    starts = sorted(s.start_us for t in traces for s in t.spans)
    assert paths and starts
    for _ in range(200):
        lo, hi = sorted(rng.choice(starts) + rng.randrange(-(10**6), 10**6) for _ in range(2))
        want = {t.trace_id for t in traces if any(lo <= s.start_us < hi for s in t.spans)}
        got = {t.trace_id for t in source.recent_traces(lo, hi, 10**6)}
        assert got == want


def test_ids_go_into_urls_encoded_as_quote_encodes_them() -> None:
    rng = random.Random(11)
    alphabet = "abcXYZ019_.~-/?&#% é+=:@"
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
        assert links._q(text) == quote(text, safe="")


@pytest.mark.parametrize("uid", ["jaeger", "a b&c", 'q"\\x', "\x00opdiag\x00"])
def test_explore_links_are_the_encoded_panes(uid: str) -> None:
    settings = LinkSettings().model_copy(update={"jaeger_datasource_uid": uid})
    for trace_id in ("ab" * 16, "x/y?&#", "é"):
        assert links.explore_url(settings, trace_id) == links._explore_url(
            settings, trace_id, "now-1h", "now"
        )
        assert links.explore_url(settings, trace_id, 5_000_000, 9_000_000) == (
            links._explore_url(settings, trace_id, "4940000", "9060000")
        )


@pytest.mark.parametrize(
    "items",
    [[], [{"a": 1}], [{"a": "x\ny", "b": [1, {"c": None}], "d": 1.5, "e": True}, {"z": "é"}]],
)
def test_rows_written_one_by_one_are_the_list_dumped_whole(items: list[object]) -> None:
    out = io.StringIO()
    write_list(out, iter(items))
    assert out.getvalue() == dumps(items) + "\n"
    assert json.loads(out.getvalue()) == items


def test_the_listing_iterator_is_the_list_and_checks_its_arguments_first() -> None:
    from opdiag.service import DiagnosisService

    settings = load_settings(overrides={"trace_paths": [str(DEMO_TRACES)]})
    service = DiagnosisService(FileSource([DEMO_TRACES]), settings)
    now = 1_795_508_760_000_000
    listed = service.operations(0, 2**62, now)
    again = DiagnosisService(FileSource([DEMO_TRACES]), settings)
    assert [d.to_dict() for d in again.each_operation(0, 2**62, now)] == [
        d.to_dict() for d in listed
    ]
    assert [d.key for d in service.each_operation(0, 2**62, now, limit=3)] == [
        d.key for d in listed[:3]
    ]
    with pytest.raises(InputError):
        service.each_operation(10, 5, now)
    with pytest.raises(InputError):
        service.each_operation(0, 5, now, limit=-1)
