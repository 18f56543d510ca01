"""Reading a rule pack file: YAML nodes with line marks, validated into a ``RulePack``.

A pack that does not validate is refused with ``RulePackError`` naming file, line and reason
(``rules.yaml:14: rule 'x': unknown operator 'gtt'``): lines come from ``yaml.compose`` node
marks, so every message points at the offending key. The format is documented in
``opdiag/rules/README.md``. Only this module imports PyYAML, and only when a pack is read
rather than taken from the compiled-pack cache (``diagnosis.pack_cache``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from opdiag.diagnosis.conditions import (
    ATTRIBUTE_OPERATORS,
    OPERATORS,
    Condition,
    check_operand,
)
from opdiag.diagnosis.matching import decided_by_span
from opdiag.diagnosis.neighbour_spec import HealthCheck, NeighbourSpec
from opdiag.diagnosis.patterns import compile_pattern
from opdiag.diagnosis.result import LIFECYCLE_STATUSES, SEVERITIES, VERDICTS
from opdiag.diagnosis.rules import (
    BASELINE_FACTS,
    BOTTLENECKS,
    CAUSES,
    DEFAULT_PACK,
    FACTS,
    PORTIONS,
    SCOPES,
    SLOW_FACTS,
    SUBJECTS,
    Follower,
    Rule,
    RulePack,
    SolutionTemplate,
    SpanMatch,
    StatusRange,
    StatusRequest,
    TypeHint,
)
from opdiag.diagnosis.templates import Template, parse_template
from opdiag.errors import RulePackError
from opdiag.globs import Globs
from opdiag.model import SPAN_KINDS, SPAN_STATUSES, SpanQuery

_ID = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
_STATUS_RANGE = re.compile(r"^([1-5])xx$|^(\d{3})-(\d{3})$")

_RULE_KEYS = frozenset(
    {
        "id",
        "description",
        "verdict",
        "severity",
        "priority",
        "match",
        "facts",
        "subject",
        "evidence",
        "summary",
        "solution",
        "in",
        "when",
        "cause",
        "bottleneck",
        "out_of",
        "portion",
        "only_errors",
    }
)
_MATCH_KEYS = frozenset(
    {
        "span",
        "kind",
        "status",
        "service",
        "error",
        "error_chain",
        "error_origin",
        "exception",
        "exception_message",
        "http_status",
        "attributes",
        "within",
        "duration_ms",
        "bottleneck",
        "bottleneck_share",
        "without_descendant",
        "without_child",
    }
)
# Keys a nested ``without_descendant``/``without_child`` match may not use: they need the
# per-span context of the engine's walk (or would nest again), which the one-pass
# precomputation of "has a matching descendant" does not give.
_NESTED_REFUSED = frozenset(
    {
        "within",
        "error_chain",
        "error_origin",
        "bottleneck",
        "bottleneck_share",
        "without_descendant",
        "without_child",
    }
)
_PACK_KEYS = frozenset(
    {"pack", "description", "verdicts", "operation", "neighbours", "workers", "rules"}
)
_NEIGHBOUR_KEYS = frozenset(
    {
        "before_s",
        "after_s",
        "settle_s",
        "max_traces",
        "timeouts_to_lose",
        "health_checks",
        "spans",
        "heartbeats",
        "occupancy",
    }
)


class _Reader:
    """Walks composed YAML nodes, turning bad shapes into RulePackError with the node's line."""

    def __init__(self, source: str, vetted: bool = False) -> None:
        self.source = source
        self.vetted = vetted  # the bundled pack: its regexes stay on ``re`` (patterns)
        self.context = ""
        self._constructor = SafeConstructor()

    def error(self, node: Node | None, message: str) -> RulePackError:
        line = node.start_mark.line + 1 if node is not None else None
        prefix = f"{self.context}: " if self.context else ""
        return RulePackError(prefix + message, source=self.source, line=line)

    def mapping(
        self, node: Node, what: str, allowed: frozenset[str] | None = None
    ) -> dict[str, tuple[Node, Node]]:
        if not isinstance(node, MappingNode):
            raise self.error(node, f"{what} must be a mapping")
        out: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key = self.scalar(key_node)
            if not isinstance(key, str):
                raise self.error(key_node, f"{what}: keys must be strings, got {key!r}")
            if key in out:
                raise self.error(key_node, f"{what}: duplicate key '{key}'")
            if allowed is not None and key not in allowed:
                raise self.error(key_node, f"{what}: unknown field '{key}'")
            out[key] = (key_node, value_node)
        return out

    def scalar(self, node: Node) -> Any:
        if not isinstance(node, ScalarNode):
            raise self.error(node, "expected a single value")
        try:
            return self._constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, KeyError, AttributeError, TypeError, OverflowError):
            # an explicit tag the text does not fit: !!bool maybe, !!binary x, !!timestamp 1
            tag = str(node.tag).rsplit(":", 1)[-1]
            raise self.error(node, f"{str(node.value)[:60]!r} is not a valid {tag}") from None

    def value(self, node: Node) -> Any:
        """A scalar or a list of scalars (for ``in``)."""
        if isinstance(node, SequenceNode):
            return [self.scalar(n) for n in node.value]
        return self.scalar(node)

    def string(self, node: Node, what: str) -> str:
        value = self.scalar(node)
        if not isinstance(value, str) or not value.strip():
            raise self.error(node, f"{what} must be a non-empty string")
        return value

    def one_of(
        self, fields: dict[str, Any], key: str, options: Sequence[str], default: str
    ) -> str:
        """The rule key ``key``, one of ``options`` (named in that order when it is not), or
        ``default`` when the rule leaves it out."""
        if key not in fields:
            return default
        node = fields[key][1]
        value = self.string(node, key)
        if value not in options:
            raise self.error(node, f"'{key}' must be one of {', '.join(options)}")
        return value

    def strings(self, node: Node, what: str) -> list[str]:
        if isinstance(node, SequenceNode):
            if not node.value:
                raise self.error(node, f"{what} must not be empty")
            return [self.string(n, what) for n in node.value]
        return [self.string(node, what)]

    def boolean(self, node: Node, what: str) -> bool:
        value = self.scalar(node)
        if not isinstance(value, bool):
            raise self.error(node, f"{what} must be true or false")
        return value

    def template(self, node: Node, what: str) -> Template:
        text = self.string(node, what)
        try:
            return parse_template(text)
        except ValueError as exc:
            raise self.error(node, f"{what}: {exc}") from None

    def conditions(
        self, node: Node, key: str, what: str, *, between_attributes: bool = False
    ) -> list[Condition]:
        """``{gt: 0, lte: 5}`` → conditions on ``key``; a bare scalar means ``eq``.
        ``gt_attr`` & co. compare two attributes: only ``match.attributes`` may use them."""
        if not isinstance(node, MappingNode):
            return [self.condition(node, key, "eq", node, what)]
        items = self.mapping(node, what)
        if not items:
            raise self.error(node, f"{what}: no operator given")
        for op, (op_node, _) in items.items():
            if op in ATTRIBUTE_OPERATORS and not between_attributes:
                raise self.error(op_node, f"{what}: '{op}' compares span attributes only")
        return [self.condition(k, key, op, v, what) for op, (k, v) in items.items()]

    def condition(self, op_node: Node, key: str, op: str, value_node: Node, what: str) -> Condition:
        if op not in OPERATORS:
            raise self.error(op_node, f"{what}: unknown operator '{op}'")
        try:
            operand = check_operand(op, self.value(value_node), vetted=self.vetted)
        except ValueError as exc:
            raise self.error(value_node, f"{what}: {exc}") from None
        return Condition(key, op, operand, value_node.start_mark.line + 1)


def load_rule_pack(path: str | os.PathLike[str]) -> RulePack:
    """Load and validate one pack file; any problem raises ``RulePackError`` (file:line)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulePackError(f"cannot read rule pack: {exc}", source=source) from None
    return parse_rule_pack(text, source, vetted=Path(path).resolve() == DEFAULT_PACK)


def _compose(text: str) -> Node | None:
    """YAML nodes with line marks: libyaml's parser when PyYAML has it (several times faster;
    every ``opdiag diagnose`` loads the default pack), the pure-Python one to word an error
    exactly as before."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return yaml.compose(text, Loader=fast)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


def parse_rule_pack(text: str, source: str, *, vetted: bool = False) -> RulePack:
    """Validate pack text; ``source`` names it in error messages; ``vetted``: the bundled
    pack (see ``patterns``)."""
    try:
        root = _compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line = mark.line + 1 if mark is not None else None
        raise RulePackError(f"not valid YAML: {problem}", source=source, line=line) from None
    except RecursionError:
        raise RulePackError("nested too deeply to be a rule pack", source=source) from None
    try:
        return _read_pack(root, source, vetted)
    except RecursionError:
        raise RulePackError("nested too deeply to be a rule pack", source=source) from None


def _read_pack(root: Node | None, source: str, vetted: bool) -> RulePack:
    reader = _Reader(source, vetted)
    if root is None:
        raise RulePackError("rule pack is empty", source=source)
    top = reader.mapping(root, "rule pack", _PACK_KEYS)
    if "rules" not in top:
        raise reader.error(root, "rule pack has no 'rules'")
    name = reader.string(top["pack"][1], "pack") if "pack" in top else Path(source).stem
    verdicts = _read_verdicts(reader, top["verdicts"][1]) if "verdicts" in top else {}
    pack = RulePack(name=name, source=source, rules=[], verdicts=verdicts)
    if "operation" in top:
        _read_operation(reader, top["operation"][1], pack)
    if "neighbours" in top or "workers" in top:
        pack.neighbours = _read_neighbours(reader, top.get("neighbours"), top.get("workers"))
    rules_node = top["rules"][1]
    if not isinstance(rules_node, SequenceNode):
        raise reader.error(rules_node, "'rules' must be a list")
    seen: dict[str, int] = {}
    allowed_verdicts = set(VERDICTS) | set(verdicts)
    for rule_node in rules_node.value:
        rule = _read_rule(reader, rule_node, allowed_verdicts)
        if rule.id in seen:
            reader.context = f"rule '{rule.id}'"
            raise reader.error(rule_node, f"duplicate rule id (first at line {seen[rule.id]})")
        seen[rule.id] = rule.line
        pack.rules.append(rule)
    return pack


def _read_verdicts(reader: _Reader, node: Node) -> dict[str, str]:
    """``verdicts: {code: description}``: new verdict codes this pack may use."""
    out: dict[str, str] = {}
    for code, (key_node, value_node) in reader.mapping(node, "verdicts").items():
        if not _ID.match(code):
            raise reader.error(key_node, f"verdicts: bad code '{code}'")
        out[code] = reader.string(value_node, f"verdicts: '{code}'")
    return out


def _read_operation(reader: _Reader, node: Node, pack: RulePack) -> None:
    """Pack-level knowledge of operations: id pattern, type hints, phase span names."""
    fields = reader.mapping(
        node,
        "operation",
        frozenset(
            {
                "id_pattern", "types", "phases", "values", "status_requests", "followers",
                "failed_at_restart",
            }
        ),
    )
    if "id_pattern" in fields:
        value_node = fields["id_pattern"][1]
        text = reader.string(value_node, "operation.id_pattern")
        try:
            pack.id_pattern = compile_pattern(text, vetted=reader.vetted)
        except ValueError as exc:
            raise reader.error(value_node, f"operation.id_pattern: {exc}") from None
        if "type" not in pack.id_pattern.groupindex:
            raise reader.error(value_node, "operation.id_pattern needs a group named 'type'")
    if "types" in fields:
        types_node = fields["types"][1]
        for span_glob, (_, value_node) in reader.mapping(types_node, "operation.types").items():
            pack.type_hints.append(
                TypeHint(Globs.of([span_glob]), reader.string(value_node, "operation.types"))
            )
    if "phases" in fields:
        pack.phases = reader.strings(fields["phases"][1], "operation.phases")
    if "values" in fields:
        for name, (key_node, value_node) in reader.mapping(
            fields["values"][1], "operation.values"
        ).items():
            if not _ID.match(name):
                raise reader.error(key_node, f"operation.values: bad name '{name}'")
            keys = reader.strings(value_node, f"operation.values.{name}")
            for key in keys:
                if not _VALUE_KEY.match(key):
                    raise reader.error(
                        value_node,
                        f"operation.values.{name}: bad attribute key '{key}' "
                        "(an attribute, or attribute#json.path into a JSON text)",
                    )
            pack.values[name] = tuple(keys)
    if "status_requests" in fields:
        what = "operation.status_requests"
        pack.status_requests = [
            _read_status_request(reader, n, what)
            for n in _items(reader, fields["status_requests"][1], what)
        ]
    if "followers" in fields:
        what = "operation.followers"
        pack.followers = [
            _read_follower(reader, n, what) for n in _items(reader, fields["followers"][1], what)
        ]
    if "failed_at_restart" in fields:
        pack.failed_at_restart = reader.strings(
            fields["failed_at_restart"][1], "operation.failed_at_restart"
        )


def _read_follower(reader: _Reader, node: Node, what: str) -> Follower:
    """``{span: GLOBS, flag: KEY, polls: GLOB, status: completed, unless: GLOBS}``: a command
    whose OK end, after its polls of the operation answered, says the operation's status."""
    fields = reader.mapping(node, what, frozenset({"span", "flag", "polls", "status", "unless"}))
    for key in ("span", "flag", "polls", "status"):
        if key not in fields:
            raise reader.error(node, f"{what}: missing '{key}'")
    status = _lifecycle_status(reader, fields["status"][1], f"{what}.status")
    flag_node = fields["flag"][1]
    flag = reader.string(flag_node, f"{what}.flag")
    if not _VALUE_KEY.match(flag):
        raise reader.error(flag_node, f"{what}.flag: bad attribute key '{flag}'")
    unless = (
        Globs.of(reader.strings(fields["unless"][1], f"{what}.unless"))
        if "unless" in fields
        else None
    )
    return Follower(
        span=Globs.of(reader.strings(fields["span"][1], f"{what}.span")),
        flag=flag,
        polls=Globs.of([reader.string(fields["polls"][1], f"{what}.polls")]),
        status=status,
        unless=unless,
    )


def _lifecycle_status(reader: _Reader, node: Node, what: str) -> str:
    """One of KTRDR's operation statuses (``completed``), in any case."""
    status = reader.string(node, what).strip().lower()
    if status not in LIFECYCLE_STATUSES:
        raise reader.error(
            node, f"{what}: '{status}' is none of {', '.join(LIFECYCLE_STATUSES)}"
        )
    return status


def _read_status_request(reader: _Reader, node: Node, what: str) -> StatusRequest:
    """``{span: GLOB, status: cancelled}``: a request whose server span sets the status."""
    fields = reader.mapping(node, what, frozenset({"span", "status"}))
    for key in ("span", "status"):
        if key not in fields:
            raise reader.error(node, f"{what}: missing '{key}'")
    status = _lifecycle_status(reader, fields["status"][1], f"{what}.status")
    span = reader.string(fields["span"][1], f"{what}.span")
    return StatusRequest(Globs.of([span]), status)


_VALUE_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(#[A-Za-z0-9_][A-Za-z0-9_.\-]*)?$")


_MAX_MARGIN_S = 31 * 86_400  # a month around an operation is as far as evidence reaches
_MAX_TRACES = 100_000
_MAX_TIMEOUTS = 1_000


def _read_neighbours(
    reader: _Reader,
    entry: tuple[Node, Node] | None,
    workers_entry: tuple[Node, Node] | None,
) -> NeighbourSpec:
    """``neighbours`` (what to read from other traces) and ``workers`` (worker services by
    operation type)."""
    kw: dict[str, Any] = {}
    margins: list[tuple[str, float]] = []
    if entry is not None:
        fields = reader.mapping(entry[1], "neighbours", _NEIGHBOUR_KEYS)
        for key in ("before_s", "after_s", "settle_s"):
            if key in fields:
                value = reader.scalar(fields[key][1])
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or not 0 <= value <= _MAX_MARGIN_S  # NaN fails both
                ):
                    raise reader.error(
                        fields[key][1],
                        f"neighbours.{key} must be a number >= 0 (seconds, at most "
                        f"{_MAX_MARGIN_S})",
                    )
                margins.append((key, float(value)))
        for key, most in (("max_traces", _MAX_TRACES), ("timeouts_to_lose", _MAX_TIMEOUTS)):
            if key in fields:
                value = reader.scalar(fields[key][1])
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
                    raise reader.error(
                        fields[key][1], f"neighbours.{key} must be >= 1 (and at most {most})"
                    )
                margins.append((key, value))
        kw["margins"] = tuple(margins)
        if "health_checks" in fields:
            kw["health_checks"] = tuple(
                _read_query(reader, n, "neighbours.health_checks", health=True)
                for n in _items(reader, fields["health_checks"][1], "neighbours.health_checks")
            )
        if "spans" in fields:
            kw["spans"] = tuple(
                _read_query(reader, n, "neighbours.spans")
                for n in _items(reader, fields["spans"][1], "neighbours.spans")
            )
        if "heartbeats" in fields:
            kw["heartbeats"] = tuple(
                _read_query(reader, n, "neighbours.heartbeats")
                for n in _items(reader, fields["heartbeats"][1], "neighbours.heartbeats")
            )
        if "occupancy" in fields:
            kw["occupancy"] = tuple(
                _read_query(reader, n, "neighbours.occupancy")
                for n in _items(reader, fields["occupancy"][1], "neighbours.occupancy")
            )
    if workers_entry is not None:
        workers = reader.mapping(workers_entry[1], "workers")
        kw["workers"] = tuple(
            (op_type, tuple(reader.strings(value_node, f"workers.{op_type}")))
            for op_type, (_, value_node) in workers.items()
        )
    return NeighbourSpec(**kw)


def _items(reader: _Reader, node: Node, what: str) -> list[Node]:
    if not isinstance(node, SequenceNode) or not node.value:
        raise reader.error(node, f"{what} must be a non-empty list")
    return list(node.value)


def _read_query(
    reader: _Reader, node: Node, what: str, *, health: bool = False
) -> SpanQuery:
    allowed = frozenset({"service", "span", "url"} if health else {"service", "span"})
    fields = reader.mapping(node, what, allowed)
    for key in ("service", "span"):
        if key not in fields:
            raise reader.error(node, f"{what}: missing '{key}'")
    service = reader.string(fields["service"][1], f"{what}.service")
    span = reader.string(fields["span"][1], f"{what}.span")
    if not health:
        return SpanQuery(service, span)
    pattern = reader.string(fields["url"][1], f"{what}.url") if "url" in fields else "/health$"
    try:
        return HealthCheck(service, span, compile_pattern(pattern, vetted=reader.vetted))
    except ValueError as exc:
        raise reader.error(fields["url"][1], f"{what}.url: {exc}") from None


def _read_rule(reader: _Reader, node: Node, verdicts: set[str]) -> Rule:
    reader.context = ""
    fields = reader.mapping(node, "rule", _RULE_KEYS)
    if "id" not in fields:
        raise reader.error(node, "rule has no 'id'")
    rule_id = reader.string(fields["id"][1], "id")
    if not _ID.match(rule_id):
        raise reader.error(fields["id"][1], f"bad rule id '{rule_id}' (use a-z, 0-9, _ . -)")
    reader.context = f"rule '{rule_id}'"
    for required in ("description", "severity", "summary", "solution"):
        if required not in fields:
            raise reader.error(node, f"missing '{required}'")
    verdict = None
    if "verdict" in fields:
        verdict = reader.string(fields["verdict"][1], "verdict")
        if verdict not in verdicts:
            raise reader.error(
                fields["verdict"][1],
                f"unknown verdict '{verdict}' (declare new codes under 'verdicts')",
            )
    severity = reader.string(fields["severity"][1], "severity")
    if severity not in SEVERITIES:
        raise reader.error(fields["severity"][1], f"unknown severity '{severity}'")
    priority = 0
    if "priority" in fields:
        priority = reader.scalar(fields["priority"][1])
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise reader.error(fields["priority"][1], "priority must be an integer")
    match = _read_match(reader, fields["match"][1]) if "match" in fields else None
    facts = _read_facts(reader, fields["facts"][1]) if "facts" in fields else []
    if match is None and not facts:
        raise reader.error(node, "needs 'match' (span conditions) or 'facts' (operation facts)")
    judged = next((c.key for c in facts if c.key in BASELINE_FACTS), None)
    if match is not None and judged is not None:
        raise reader.error(fields["facts"][1], f"facts '{judged}' cannot be combined with 'match'")
    if judged is not None:
        for cond in facts:
            if cond.key not in SLOW_FACTS:
                raise reader.error(
                    fields["facts"][1],
                    f"fact '{cond.key}' cannot be combined with '{judged}' "
                    f"(allowed: {', '.join(sorted(SLOW_FACTS))})",
                )
    subject = "root"
    if "subject" in fields:
        subject = reader.string(fields["subject"][1], "subject")
        if subject not in SUBJECTS:
            raise reader.error(fields["subject"][1], f"unknown subject '{subject}'")
    evidence = reader.strings(fields["evidence"][1], "evidence") if "evidence" in fields else []
    scope = reader.one_of(fields, "in", sorted(SCOPES), "own")
    if scope == "neighbours" and match is None:
        raise reader.error(fields["in"][1], "'in: neighbours' needs a 'match'")
    when: list[SpanMatch] = []
    if "when" in fields:
        when_node = fields["when"][1]
        nodes = when_node.value if isinstance(when_node, SequenceNode) else [when_node]
        if not nodes:
            raise reader.error(when_node, "'when' must not be empty")
        when = [_read_match(reader, n, "when") for n in nodes]
    cause = reader.one_of(fields, "cause", sorted(CAUSES), "origin")
    bottleneck = reader.one_of(fields, "bottleneck", sorted(BOTTLENECKS), "named")
    out_of = None
    if "out_of" in fields:
        out_of = _read_match(reader, fields["out_of"][1], "out_of")
    portion = reader.one_of(fields, "portion", PORTIONS, "some")
    if "portion" in fields and out_of is None:
        raise reader.error(fields["portion"][1], "'portion' needs 'out_of'")
    only_errors = False
    if "only_errors" in fields:
        only_errors = reader.boolean(fields["only_errors"][1], "only_errors")
    for key in ("out_of", "only_errors"):
        if key in fields:
            _check_counted(reader, fields, key, match, scope)
    rule = Rule(
        id=rule_id,
        description=reader.string(fields["description"][1], "description"),
        verdict=verdict,
        severity=severity,
        priority=priority,
        summary=reader.template(fields["summary"][1], "summary"),
        solution=_read_solution(reader, fields["solution"][1]),
        match=match,
        facts=tuple(facts),
        subject=subject,
        evidence=tuple(evidence),
        source=reader.source,
        line=node.start_mark.line + 1,
        scope=scope,
        when=tuple(when),
        cause=cause,
        bottleneck=bottleneck,
        out_of=out_of,
        portion=portion,
        only_errors=only_errors,
    )
    if out_of is None and "out_of" in rule.template_keys:
        raise reader.error(node, "the placeholder '{out_of}' needs 'out_of'")
    return rule


def _check_counted(
    reader: _Reader, fields: dict[str, Any], key: str, match: SpanMatch | None, scope: str
) -> None:
    """``out_of`` and ``only_errors`` count the operation's own spans one by one: the rule
    needs a ``match`` that each span decides alone (no ``within``, error chain or origin,
    bottleneck, ``without_*``), on its own spans."""
    node = fields[key][1]
    if match is None:
        raise reader.error(node, f"'{key}' needs a 'match'")
    if scope != "own":
        raise reader.error(node, f"'{key}' cannot be used with 'in: neighbours'")
    if not decided_by_span(match):
        raise reader.error(
            node,
            f"'{key}' needs a 'match' that each span decides alone (no within, error_chain, "
            "error_origin, bottleneck, bottleneck_share, without_descendant, without_child)",
        )


def _read_solution(reader: _Reader, node: Node) -> SolutionTemplate:
    fields = reader.mapping(node, "solution", frozenset({"title", "steps", "commands"}))
    if "title" not in fields or "steps" not in fields:
        raise reader.error(node, "solution needs 'title' and 'steps'")

    def templates(key: str) -> tuple[Template, ...]:
        if key not in fields:
            return ()
        list_node = fields[key][1]
        if not isinstance(list_node, SequenceNode):
            raise reader.error(list_node, f"solution.{key} must be a list")
        return tuple(reader.template(n, f"solution.{key}") for n in list_node.value)

    steps = templates("steps")
    if not steps:
        raise reader.error(fields["steps"][1], "solution.steps must not be empty")
    return SolutionTemplate(
        title=reader.template(fields["title"][1], "solution.title"),
        steps=steps,
        commands=templates("commands"),
    )


def _read_facts(reader: _Reader, node: Node) -> list[Condition]:
    out: list[Condition] = []
    for name, (key_node, value_node) in reader.mapping(node, "facts").items():
        if name not in FACTS:
            raise reader.error(
                key_node, f"unknown fact '{name}' (known: {', '.join(sorted(FACTS))})"
            )
        for cond in reader.conditions(value_node, name, f"facts.{name}"):
            _check_fact_type(reader, value_node, cond)
            out.append(cond)
    return out


def _check_fact_type(reader: _Reader, node: Node, cond: Condition) -> None:
    """``stuck: yes`` is a bool and fine; ``stuck: 3`` or ``error_spans: many`` never match."""
    if cond.op not in ("eq", "ne", "in"):
        return
    wanted = FACTS[cond.key]
    values = cond.value if cond.op == "in" else (cond.value,)
    for value in values:
        if wanted is bool:
            ok = isinstance(value, bool)
        elif wanted in (int, float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        else:
            ok = isinstance(value, str)
        if not ok:
            raise reader.error(node, f"facts.{cond.key}: {value!r} is not a {wanted.__name__}")


def _read_match(reader: _Reader, node: Node, what: str = "match") -> SpanMatch:
    """``match`` (or, with ``what`` set, a nested ``match.without_descendant``)."""
    nested = what != "match"
    f = reader.mapping(node, what, _MATCH_KEYS)
    if nested:
        for key, (key_node, _) in f.items():
            if key in _NESTED_REFUSED:
                raise reader.error(key_node, f"{what}: '{key}' cannot be used in a nested match")
        if not f:
            raise reader.error(node, f"{what} needs at least one condition")
    kw: dict[str, Any] = {}
    if "span" in f:
        kw["names"] = Globs.of(reader.strings(f["span"][1], f"{what}.span"))
    if "kind" in f:
        kinds = reader.strings(f["kind"][1], f"{what}.kind")
        for kind in kinds:
            if kind not in SPAN_KINDS:
                raise reader.error(f["kind"][1], f"{what}.kind: unknown span kind '{kind}'")
        kw["kinds"] = frozenset(kinds)
    if "status" in f:
        statuses = [v.lower() for v in reader.strings(f["status"][1], f"{what}.status")]
        for status in statuses:
            if status not in SPAN_STATUSES:
                raise reader.error(
                    f["status"][1],
                    f"{what}.status: unknown span status '{status}' (unset, ok or error)",
                )
        kw["statuses"] = frozenset(statuses)
    if "service" in f:
        kw["services"] = Globs.of(reader.strings(f["service"][1], f"{what}.service"))
    for flag in ("error", "error_chain", "error_origin", "bottleneck"):
        if flag in f:
            kw[flag] = reader.boolean(f[flag][1], f"{what}.{flag}")
    if "exception" in f:
        kw["exceptions"] = Globs.of(reader.strings(f["exception"][1], f"{what}.exception"))
    if "exception_message" in f:
        text = reader.string(f["exception_message"][1], f"{what}.exception_message")
        try:
            kw["exception_message"] = compile_pattern(text, vetted=reader.vetted)
        except ValueError as exc:
            node = f["exception_message"][1]
            raise reader.error(node, f"{what}.exception_message: {exc}") from None
    if "http_status" in f:
        kw.update(_read_http_status(reader, f["http_status"][1], what))
    if "attributes" in f:
        conds: list[Condition] = []
        for key, (_, value_node) in reader.mapping(
            f["attributes"][1], f"{what}.attributes"
        ).items():
            conds.extend(
                reader.conditions(
                    value_node, key, f"{what}.attributes.{key}", between_attributes=True
                )
            )
        kw["attributes"] = tuple(conds)
    if "within" in f:
        kw["within"] = Globs.of(reader.strings(f["within"][1], f"{what}.within"))
    for numeric in ("duration_ms", "bottleneck_share"):
        if numeric in f:
            value_node = f[numeric][1]
            if not isinstance(value_node, MappingNode):
                raise reader.error(
                    value_node, f"{what}.{numeric} needs operators, e.g. {{gt: 100}}"
                )
            kw[numeric] = tuple(reader.conditions(value_node, numeric, f"{what}.{numeric}"))
    for without in ("without_descendant", "without_child"):
        if without in f:
            kw[without] = _read_match(reader, f[without][1], f"{what}.{without}")
    return SpanMatch(**kw)


def _read_http_status(reader: _Reader, node: Node, what: str = "match") -> dict[str, Any]:
    """``none`` (no status recorded), ``503``, ``5xx``, ``500-599`` or a list of those."""
    items = reader.value(node)
    items = items if isinstance(items, list) else [items]
    ranges: list[StatusRange] = []
    no_status = False
    for item in items:
        if item == "none" or item is None:
            no_status = True
        elif isinstance(item, int) and not isinstance(item, bool) and 100 <= item <= 599:
            ranges.append(StatusRange(item, item))
        elif isinstance(item, str) and (m := _STATUS_RANGE.match(item)):
            if m.group(1):
                base = int(m.group(1)) * 100
                ranges.append(StatusRange(base, base + 99))
            else:
                ranges.append(StatusRange(int(m.group(2)), int(m.group(3))))
        else:
            raise reader.error(node, f"{what}.http_status: bad status {item!r}")
    if no_status and ranges:
        raise reader.error(node, f"{what}.http_status: 'none' cannot be combined with statuses")
    return {"http_no_status": no_status, "http_status": tuple(ranges)}
