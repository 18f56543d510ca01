"""Rule packs: the diagnosis knowledge as data, compiled once.

The compiled form the engine evaluates (``Rule``, ``SpanMatch``, ``RuleSet`` with its shape
indexes) and how packs merge. Pack files are YAML, read and validated with file and line by
``diagnosis.pack_yaml``, and kept compiled by ``diagnosis.pack_cache`` so that a diagnosis
neither parses YAML nor imports PyYAML at start. The format is documented in
``opdiag/rules/README.md``; the default pack is ``opdiag/rules/ktrdr.yaml``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from msgspec.structs import force_setattr

from opdiag.diagnosis.candidates import ShapeIndex
from opdiag.diagnosis.conditions import ATTRIBUTE_OPERATORS, Condition
from opdiag.diagnosis.neighbour_spec import NeighbourSpec, merge_specs
from opdiag.diagnosis.patterns import Pattern
from opdiag.diagnosis.result import VERDICTS
from opdiag.diagnosis.templates import Template
from opdiag.errors import InputError
from opdiag.globs import Globs, any_of
from opdiag.model import SERVER, Span, failed, url_path

DEFAULT_PACK = Path(__file__).resolve().parents[1] / "rules" / "ktrdr.yaml"

# Operation facts a rule's ``facts`` may test, with the type of their values.
FACTS: dict[str, type] = {
    "status": str,
    "finished": bool,
    "stuck": bool,
    "running": bool,
    "slow": bool,
    # in flight, quiet (its worker still answering) for longer than its earlier runs took
    # in all: decided once the baseline is known, like ``slow``
    "overdue": bool,
    # completed far faster than its good runs for its data, the span-less phase that holds
    # their time nearly absent (``diagnosis.rushed``): decided once the baseline is known
    "rushed": bool,
    "has_lifecycle": bool,
    "found": bool,
    "trace_count": int,
    "request_traces": int,
    "work_traces": int,
    "unlinked_calls": int,
    "ended_before": bool,
    "followed": bool,
    "failed_late": bool,
    "failed_at_restart": bool,
    "error_spans": int,
    "operation_type": str,
    "duration_s": float,
    "idle_s": float,
    # KTRDR holds no record of it: every read of it answered 404 (its worker died before
    # saving it); nothing, not even its orphan detector, will ever end it
    "unrecorded": bool,
    # from neighbouring traces (the pack's ``neighbours`` and ``workers``)
    "worker_ran": bool,
    "worker_lost": bool,
    "worker_replaced": bool,
    "capable_workers_lost": bool,
    "capable_workers_unseen": bool,
    "workers_unseen": bool,
    "system_quiet": bool,
}
# The facts still known when a diagnosis is re-assessed without its traces (reassess_slow).
SLOW_FACTS = frozenset(
    {
        "slow", "overdue", "rushed", "status", "finished", "operation_type", "trace_count",
        "duration_s",
    }
)
# The facts only a baseline decides: a rule testing one is judged with ``slow``'s.
BASELINE_FACTS = frozenset({"slow", "overdue", "rushed"})
# Facts every operation has a value of its own (no two operations share a combination).
MEASURED_FACTS = frozenset({"duration_s", "idle_s"})
SUBJECTS = frozenset(
    {
        "root",
        "last_span",
        "last_phase",
        "bottleneck",
        "error_origin",
        "last_transition",
        "worker_probe",
        "unlinked_call",
    }
)
SCOPES = frozenset({"own", "neighbours"})
CAUSES = frozenset({"origin", "matched", "none"})
# ``bottleneck: none``: the verdict says no work went on (its process died with it)
BOTTLENECKS = frozenset({"named", "none"})
PORTIONS = ("some", "all")  # of an ``out_of`` whole that must match (``some``: not all)
_MAX_NAMES = 8192


class StatusRange(msgspec.Struct, frozen=True):
    low: int
    high: int


class SpanMatch(msgspec.Struct, frozen=True):
    """What a span must look like for the rule to fire; ``None``/empty means "any"."""

    names: Globs | None = None
    kinds: frozenset[str] = frozenset()
    # the span's own status as its instrumentation set it (unset, ok, error): a KTRDR CLI
    # command that exited with sys.exit is left unset, one that returned is ok
    statuses: frozenset[str] = frozenset()
    services: Globs | None = None
    error: bool | None = None
    error_chain: bool | None = None
    error_origin: bool | None = None
    exceptions: Globs | None = None
    exception_message: Pattern | None = None
    http_no_status: bool = False
    http_status: tuple[StatusRange, ...] = ()
    attributes: tuple[Condition, ...] = ()
    within: Globs | None = None
    duration_ms: tuple[Condition, ...] = ()
    bottleneck: bool | None = None
    bottleneck_share: tuple[Condition, ...] = ()
    # the span has no descendant (``without_child``: no direct child) matching this
    without_descendant: SpanMatch | None = None
    without_child: SpanMatch | None = None
    # Derived: attribute keys every span that matches has (a cheap first test; the
    # conditions themselves decide). Whatever is passed is replaced.
    required: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        keys: list[str] = []
        for cond in self.attributes:
            if cond.op == "absent" or (cond.op == "exists" and cond.value is False):
                continue
            keys.append(cond.key.partition("#")[0])  # "cli.args#kwargs.x": cli.args
            if cond.op in ATTRIBUTE_OPERATORS:
                keys.append(str(cond.value).partition("#")[0])
        force_setattr(self, "required", tuple(dict.fromkeys(keys)))

    def may_hold_on(self, attributes: dict[str, Any]) -> bool:
        """Whether a span with these attributes can match at all (every required key is
        there)."""
        for key in self.required:  # noqa: SIM110 - per span and rule: no generator
            if key not in attributes:
                return False
        return True


class SolutionTemplate(msgspec.Struct, frozen=True):
    title: Template
    steps: tuple[Template, ...]
    commands: tuple[Template, ...]


class Rule(msgspec.Struct, frozen=True):
    """One validated rule. ``verdict`` is ``None`` for an advisory rule (reported, never
    deciding the verdict)."""

    id: str
    description: str
    verdict: str | None
    severity: str
    priority: int
    summary: Template
    solution: SolutionTemplate
    match: SpanMatch | None = None
    facts: tuple[Condition, ...] = ()
    subject: str = "root"
    evidence: tuple[str, ...] = ()
    source: str = ""
    line: int = 0
    # ``in: neighbours``: ``match`` runs on spans of neighbouring traces (health checks,
    # background loops), and ``when`` says what the operation's own spans must show.
    scope: str = "own"
    when: tuple[SpanMatch, ...] = ()
    # ``matched``: the matched span is the root cause even below other error spans (a
    # request whose input was wrong fails later with a misleading error); ``none``: the
    # verdict has no root cause (a user cancelled it: nothing broke).
    cause: str = "origin"
    # ``none``: the verdict has no bottleneck: the time no span covers was no work (the
    # backend that ran a data load died with it; a backend-run task's thread has no span)
    bottleneck: str = "named"
    # ``out_of``: the whole the matches are part of; the rule fires only when some, not all,
    # of the operation's spans that match it match ``match`` too (``{out_of}``: how many do).
    out_of: SpanMatch | None = None
    # ``portion``: with ``out_of``, ``some`` (some, not all, match ``match``) or ``all``
    # (every span of the whole does: a load none of whose requests brought anything).
    portion: str = "some"
    # ``only_errors``: the rule fires only when every error span of the operation (bar a
    # failed attempt a retry made good) matches ``match``: nothing else failed.
    only_errors: bool = False

    # Derived once when the pack is compiled: the engine asks for both many times per
    # diagnosis (a 200k-operation listing asked for ``uses_slow`` 21 million times).
    # Whatever is passed is replaced.
    template_keys: tuple[str, ...] = ()
    uses_slow: bool = False

    def __post_init__(self) -> None:
        keys: list[str] = list(self.summary.keys) + list(self.solution.title.keys)
        for t in (*self.solution.steps, *self.solution.commands):
            keys.extend(t.keys)
        force_setattr(self, "template_keys", tuple(dict.fromkeys(keys)))
        force_setattr(self, "uses_slow", any(c.key in BASELINE_FACTS for c in self.facts))


class TypeHint(msgspec.Struct, frozen=True):
    """A span name that reveals the operation type (a dispatch route, a CLI command)."""

    span: Globs
    type: str


class StatusRequest(msgspec.Struct, frozen=True):
    """A request that sets an operation's status and writes no transition span of its own:
    KTRDR's training worker, stopped with SIGTERM, PATCHes ``/operations/{id}/status`` to
    CANCELLED. Its server span (named by ``span``, answered under 400, the operation's id in
    its path) counts as a transition to ``status``."""

    span: Globs
    status: str


class Follower(msgspec.Struct, frozen=True):
    """A command that follows an operation to its end and says how it ended by how it ends:
    KTRDR's CLI in follow mode (``ktrdr backtest … --follow``, cli/operation_runner.py) polls
    ``GET /operations/{id}`` until the status is completed, failed or cancelled, then returns
    (its span ends OK) on completed or cancelled and raises ``SystemExit(1)`` on failed (its
    span ends UNSET). Its span (named by ``span``, attribute ``flag`` true, status OK) whose
    last poll (a server span named by ``polls`` below it, answered under 400, the operation's
    id in its path) answered counts as a transition to ``status`` when no transition says the
    operation finished and no request named by ``unless`` (answered under 400, the id in its
    path: a cancel, after which the same OK end means cancelled) is among its spans."""

    span: Globs
    flag: str
    polls: Globs
    status: str
    unless: Globs | None = None


class RulePack(msgspec.Struct):
    """One loaded pack file."""

    name: str
    source: str
    rules: list[Rule]
    verdicts: dict[str, str] = msgspec.field(default_factory=dict)
    id_pattern: Pattern | None = None
    type_hints: list[TypeHint] = msgspec.field(default_factory=list)
    phases: list[str] = msgspec.field(default_factory=list)
    values: dict[str, tuple[str, ...]] = msgspec.field(default_factory=dict)
    neighbours: NeighbourSpec | None = None
    status_requests: list[StatusRequest] = msgspec.field(default_factory=list)
    followers: list[Follower] = msgspec.field(default_factory=list)
    failed_at_restart: list[str] = msgspec.field(default_factory=list)


@dataclass(slots=True)
class RuleSet:
    """The default pack plus user packs, merged: what the engine evaluates."""

    rules: list[Rule]
    verdicts: tuple[str, ...]
    id_pattern: Pattern | None
    type_hints: list[TypeHint]
    phases: Globs
    sources: list[str] = field(default_factory=list)
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    neighbours: NeighbourSpec = field(default_factory=NeighbourSpec)
    status_requests: tuple[StatusRequest, ...] = ()
    followers: tuple[Follower, ...] = ()
    # operation types a restarted backend fails at its start without a transition span
    failed_at_restart: frozenset[str] = frozenset()
    _by_id: dict[str, Rule] = field(default_factory=dict)
    # Compiled with the set: which rules (``when`` matches, nested ``without_*`` matches)
    # may hold on a span of a given shape, each shape decided once (diagnosis.candidates).
    own_index: ShapeIndex[Rule] = field(init=False, repr=False, compare=False)
    near_index: ShapeIndex[Rule] = field(init=False, repr=False, compare=False)
    when_index: ShapeIndex[SpanMatch] = field(init=False, repr=False, compare=False)
    nested_index: ShapeIndex[SpanMatch] = field(init=False, repr=False, compare=False)
    # What every diagnosis would otherwise work out again from the rule list.
    order: dict[str, int] = field(init=False, repr=False, compare=False)  # rule id -> rank
    with_when: tuple[Rule, ...] = field(init=False, repr=False, compare=False)
    operation_rules: tuple[Rule, ...] = field(init=False, repr=False, compare=False)
    slow_rules: tuple[Rule, ...] = field(init=False, repr=False, compare=False)
    withins: tuple[Globs, ...] = field(init=False, repr=False, compare=False)
    value_keys: frozenset[str] = field(init=False, repr=False, compare=False)
    _names: dict[str, tuple[str | None, bool]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    _any_hint: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    # The facts the operation rules test, when none is a measured time (see
    # ``engine._operation_rules_holding``), and which rules hold per combination of them.
    operation_fact_keys: tuple[str, ...] | None = field(init=False, repr=False, compare=False)
    holding: dict[tuple[Any, ...], tuple[Rule, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    # The rules whose ``when`` fails, per set of ``when`` matches an operation's spans hold
    # (``engine._inapplicable``): the operations of a listing share a handful.
    inapplicable: dict[frozenset[int], frozenset[str]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    # What a span of a (name, kind, error) shape meets in ``own_index`` and ``when_index``,
    # with the gates derived from it (``diagnosis.survey``): decided once per shape, not per
    # operation; bounded as the indexes are (``candidates.MAX_SHAPES``).
    shapes: dict[tuple[str, str, bool], tuple[Any, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        self._by_id = {r.id: r for r in self.rules}
        self.order = {r.id: i for i, r in enumerate(self.rules)}
        self.with_when = tuple(r for r in self.rules if r.when)
        self.operation_rules = tuple(
            r for r in self.rules if r.match is None and not r.uses_slow
        )
        self.slow_rules = tuple(r for r in self.rules if r.uses_slow)
        tested = {c.key for r in self.operation_rules for c in r.facts}
        self.operation_fact_keys = (
            tuple(sorted(tested)) if tested.isdisjoint(MEASURED_FACTS) else None
        )
        self._any_hint = any_of(h.span for h in self.type_hints)
        self.value_keys = frozenset(
            key.partition("#")[0] for keys in self.values.values() for key in keys
        )
        with_match = [r for r in self.rules if r.match is not None]
        self.withins = tuple(
            {
                r.match.within.patterns: r.match.within
                for r in with_match
                if r.match is not None and r.match.within is not None
            }.values()
        )
        self.own_index = ShapeIndex([r for r in with_match if r.scope == "own"], _match_of)
        self.near_index = ShapeIndex([r for r in with_match if r.scope != "own"], _match_of)
        whens = {id(m): m for r in self.rules for m in r.when}
        self.when_index = ShapeIndex(list(whens.values()), _itself)
        nested = {
            id(n): n
            for r in with_match
            if r.match is not None
            for n in (r.match.without_descendant, r.match.without_child)
            if n is not None
        }
        self.nested_index = ShapeIndex(list(nested.values()), _itself)

    def check_verdicts(self, verdicts: Iterable[str] | None, field: str) -> None:
        """Refuse a filter naming a verdict no rule gives: a typo would answer "no such
        operations", which is not true (every query surface asks this, REST, simpod, MCP)."""
        unknown = [v for v in verdicts or () if v not in self.verdicts]
        if unknown:
            raise InputError(
                f"{field}: unknown verdict {unknown[0][:80]!r} (known: {', '.join(self.verdicts)})",
                field=field,
            )

    def get(self, rule_id: str) -> Rule | None:
        return self._by_id.get(rule_id)

    def name_info(self, name: str) -> tuple[str | None, bool]:
        """What a span name alone says: the operation type it hints at, whether it is a
        phase. Remembered per name (bounded) across diagnoses."""
        info = self._names.get(name)
        if info is None:
            any_hint = self._any_hint
            hint = (
                None
                if any_hint is not None and any_hint.match(name) is None
                else next((h.type for h in self.type_hints if h.span(name)), None)
            )
            info = (hint, self.phases(name))
            if len(self._names) >= _MAX_NAMES:
                self._names.clear()
            self._names[name] = info
        return info


    def requested_status(self, span: Span, operation_id: str) -> str | None:
        """The status a server span of a ``status_requests`` entry sets for
        ``operation_id``: not failed (answered under 400) and naming the operation in its
        path. None for any other span (each name's match remembered by its ``Globs``)."""
        if not self.status_requests or span.kind != SERVER:
            return None
        name = span.name
        status = next((r.status for r in self.status_requests if r.span.known(name)), None)
        if status is None or failed(span):
            return None
        return status if operation_id in url_path(span).split("/") else None


def _match_of(rule: Rule) -> SpanMatch | None:
    return rule.match


def _itself(match: SpanMatch) -> SpanMatch:
    return match


def load_rule_pack(path: str | os.PathLike[str]) -> RulePack:
    """Load and validate one pack file; any problem raises ``RulePackError`` (file:line)."""
    from opdiag.diagnosis.pack_yaml import load_rule_pack as load

    return load(path)


def parse_rule_pack(text: str, source: str) -> RulePack:
    """Validate pack text; ``source`` names it in error messages."""
    from opdiag.diagnosis.pack_yaml import parse_rule_pack as parse

    return parse(text, source)


def default_rule_pack() -> RulePack:
    """The bundled KTRDR pack."""
    return load_rule_pack(DEFAULT_PACK)


def merge_packs(packs: Iterable[RulePack]) -> RuleSet:
    """Later packs override earlier ones: a rule with the same id replaces the old one in
    place; verdict codes, type hints and phases add up (later type hints are tried first)."""
    rules: dict[str, Rule] = {}
    verdicts: dict[str, None] = dict.fromkeys(VERDICTS)
    hints: list[TypeHint] = []
    phases: list[str] = []
    id_pattern: Pattern | None = None
    sources: list[str] = []
    values: dict[str, tuple[str, ...]] = {}
    specs: list[NeighbourSpec | None] = []
    status_requests: list[StatusRequest] = []
    followers: list[Follower] = []
    failed_at_restart: set[str] = set()
    for pack in packs:
        sources.append(pack.source)
        status_requests.extend(pack.status_requests)
        followers.extend(pack.followers)
        failed_at_restart.update(pack.failed_at_restart)
        values.update(pack.values)
        specs.append(pack.neighbours)
        for rule in pack.rules:
            rules[rule.id] = rule
        verdicts.update(dict.fromkeys(pack.verdicts))
        hints = pack.type_hints + hints
        phases.extend(p for p in pack.phases if p not in phases)
        id_pattern = pack.id_pattern or id_pattern
    return RuleSet(
        rules=list(rules.values()),
        verdicts=tuple(verdicts),
        id_pattern=id_pattern,
        type_hints=hints,
        phases=Globs.of(phases),
        sources=sources,
        values=values,
        neighbours=merge_specs(specs),
        status_requests=tuple(status_requests),
        followers=tuple(followers),
        failed_at_restart=frozenset(failed_at_restart),
    )


def load_rules(extra_paths: Iterable[str | os.PathLike[str]] = ()) -> RuleSet:
    """The default pack plus the user's packs, in order; any bad pack refuses the whole set.
    Packs compiled before come from the compiled-pack cache (``diagnosis.pack_cache``)."""
    from opdiag.diagnosis.pack_cache import load_rule_pack_cached

    packs = [load_rule_pack_cached(DEFAULT_PACK)]
    packs.extend(load_rule_pack_cached(p) for p in extra_paths)
    return merge_packs(packs)
