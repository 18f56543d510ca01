"""Summary and solution templates: ``{placeholder}`` substitution from evidence, nothing more.

Templates come from rule packs; the values come from traces and are untrusted. So a template is
parsed once at load (unknown placeholders are refused there), and filling is a single pass that
looks names up in a plain dict: no ``str.format``, no attribute access, no evaluation. A value
that itself looks like ``{__class__}`` is inserted verbatim and never re-scanned.

Syntax: ``{name}``, ``{attr:some.key}``, ``{op:symbol}`` (a value the pack's
``operation.values`` declares), ``{name|default text}`` (used when the value is
missing), ``{name?text with $}`` (the text with ``$`` replaced by the value when there is
one, nothing otherwise: ``{op:strategy?; strategy $}``), ``{{`` and ``}}`` for literal braces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any

import msgspec

from opdiag.controls import has_unsafe

# Names the engine can put into evidence; see rules/README.md for what each holds.
PLACEHOLDERS: frozenset[str] = frozenset(
    {
        "span.name",
        "span.id",
        "span.kind",
        "service",
        "trace.id",
        "duration_ms",
        "exception.type",
        "exception.message",
        "http.url",
        "http.status",
        "http.method",
        "target",
        "operation.id",
        "operation.type",
        "operation.status",
        "phase",
        "minutes",
        "idle_minutes",
        "duration",
        "cancel_in",
        "idle",
        "where_ago",
        "request",
        "caller",
        "quiet_since",
        "answered_again",
        "phase_minutes",
        "trace_count",
        "unlinked_calls",
        "caller.service",
        "error_spans",
        "bottleneck",
        "bottleneck.service",
        "bottleneck.named",
        "share",
        "baseline",
        "rushed",
        "matches",
        "out_of",
        "ident",
        "time",
        "first_time",
        "where",
        "where_minutes",
        "worker.service",
        "worker.address",
        "worker.since",
        "worker.failed_checks",
        "worker.failed_checks_text",
        "worker.type",
        "worker.how",
        "worker.failure",
        "worker.state",
        "worker.replaced_by",
        "worker.on",
        "worker.last_seen",
        "worker.others",
        "worker.checks",
        "worker.checked_since",
        "worker.busy_with",
        "worker.busy_op",
        "worker.last_answer",
        "worker.judged_at",
        "worker.refused_first",
        "worker.turned_away",
        "probe.call",
        "probe.address",
        "probe.service",
        "probe.failure",
        "probe.operation",
        "probe.about",
        "probe.again",
        "probe.down",
        "worker.standby",
        "worker.standby_gone",
        "worker.silent_capable",
        "route.param",
        "completed.service",
        "failed_after",
        "in_flight",
        "unrecorded",
        "outcome",
        "quiet",
    }
)
# ``{op:NAME}``: a value of the operation declared in the pack's ``operation.values``.
OPERATION_VALUE_PREFIX = "op:"
# ``{attr:some.key}``: the span attribute itself, where a built-in name is the same
ATTR_PREFIX = "attr:"

MISSING = "n/a"
MAX_VALUE_CHARS = 300

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_ATTR_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_DEFAULT = re.compile(r"^[^{}|]*$")


class Placeholder(msgspec.Struct, frozen=True):
    """One parsed ``{…}``: the evidence key it reads and its default when missing."""

    key: str
    default: str | None
    present: str | None = None  # ``{key?text}``: the text ($ = the value), or nothing


class Template(msgspec.Struct, frozen=True):
    """A parsed template: literal text and placeholders, in order."""

    parts: tuple[str | Placeholder, ...]
    # the whole text when there is no placeholder (a solution's title and steps mostly);
    # derived from ``parts`` (whatever is passed is replaced)
    static: str | None = None

    def __post_init__(self) -> None:
        if all(isinstance(part, str) for part in self.parts):
            msgspec.structs.force_setattr(self, "static", "".join(self.parts))  # type: ignore[arg-type]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.parts if isinstance(p, Placeholder))


def parse_template(text: str) -> Template:
    """Parse ``text``; raise ``ValueError`` naming the first bad placeholder or brace."""
    parts: list[str | Placeholder] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() > pos:
            parts.append(text[pos : m.start()])
        token = m.group(0)
        if token in ("{{", "}}"):
            parts.append(token[0])
        elif token in ("{", "}"):
            raise ValueError(f"unbalanced '{token}' in template (write '{token}{token}')")
        else:
            parts.append(_placeholder(m.group(1)))
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    return Template(tuple(parts))


def _placeholder(inner: str) -> Placeholder:
    head, ask, text = inner.partition("?")
    if ask and "|" not in head:  # a default may hold a '?': {attr:ib.host|?}
        if not _DEFAULT.match(text):
            raise ValueError(f"bad text in placeholder '{{{inner}}}'")
        return Placeholder(_placeholder(head).key, None, text)
    name, sep, default = inner.partition("|")
    name = name.strip()
    if sep and not _DEFAULT.match(default):
        raise ValueError(f"bad default in placeholder '{{{inner}}}'")
    if name.startswith(ATTR_PREFIX):
        key = name.removeprefix(ATTR_PREFIX)
        if not _ATTR_KEY.match(key):
            raise ValueError(f"bad attribute key in placeholder '{{{inner}}}'")
        return Placeholder(attr_evidence_key(key), default if sep else None)
    if name.startswith(OPERATION_VALUE_PREFIX):
        if not _ATTR_KEY.match(name[len(OPERATION_VALUE_PREFIX) :]):
            raise ValueError(f"bad operation value name in placeholder '{{{inner}}}'")
        return Placeholder(name, default if sep else None)
    if name not in PLACEHOLDERS:
        raise ValueError(f"unknown placeholder '{{{inner}}}'")
    return Placeholder(name, default if sep else None)


# Built-in names that are read straight from the span attribute of the same name.
_SAME_AS_ATTRIBUTE = frozenset({"http.url", "http.method", "exception.type", "exception.message"})


def is_derived(key: str) -> bool:
    """Is this evidence key a value opdiag worked out (``worker.since``, ``where``, ``op:…``)
    rather than a span attribute? Readers are told which is which."""
    if key.startswith(OPERATION_VALUE_PREFIX):
        return True
    return key in PLACEHOLDERS and key not in _SAME_AS_ATTRIBUTE


Items = list[tuple[str, Any]]


# Values that only phrase a template (" on <service> at <address>", "33 failed checks"
# beside worker.failed_checks = 33, the span's own name): evidence, not shown as such.
PHRASING_ONLY = frozenset({"worker.on", "worker.failed_checks_text", "span.name", "ident"})


def split_evidence(evidence: Mapping[str, Any]) -> tuple[Items, Items]:
    """A root cause's evidence as the span's attributes and what opdiag worked out, each
    sorted by key (Markdown and the page show them apart; ``PHRASING_ONLY`` left out). An
    attribute is named as the span carries it: ``attr:worker.type`` (the evidence key that
    keeps it apart from opdiag's own ``worker.type``) is the span's ``worker.type``, the key
    a search in Jaeger finds."""
    own: Items = []
    worked: Items = []
    for key, value in evidence.items():
        if key in PHRASING_ONLY:
            continue
        if is_derived(key):
            worked.append((key, value))
        else:
            own.append((key.removeprefix(ATTR_PREFIX), value))
    return sorted(own, key=itemgetter(0)), sorted(worked, key=itemgetter(0))


def attr_evidence_key(key: str) -> str:
    """Evidence key of a span attribute: the key itself, unless it shadows a built-in name
    with another meaning (agent spans carry an attribute ``phase``), then ``attr:key``."""
    return f"{ATTR_PREFIX}{key}" if key in PLACEHOLDERS and key not in _SAME_AS_ATTRIBUTE else key


def render_value(value: Any) -> str:
    """Evidence value as text: bools lower-case (as in traces), long values cut."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:g}"
    else:
        text = str(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return text


def fill(template: Template, evidence: Mapping[str, Any]) -> str:
    """Substitute evidence values; missing ones take the default or ``n/a``."""
    return _filled(template, evidence, strict=False)  # type: ignore[return-value]


def fill_line(template: Template, evidence: Mapping[str, Any]) -> str:
    """``fill`` for a summary, which is one line: line breaks a value brings (a YAML or
    pydantic error's lines) become one space, with the indentation around them."""
    text = fill(template, evidence)
    return text if text.isprintable() else _LINE_BREAKS.sub(" ", text).strip()


_LINE_BREAKS = re.compile(r"[ \t]*[\r\n\u2028\u2029]+\s*")


def fill_command(template: Template, evidence: Mapping[str, Any]) -> str | None:
    """A shell command to paste, or None when a value it needs is missing and has no
    default (a command holding ``n/a`` or a made-up ``SYMBOL`` would run against the wrong
    thing), or when a value cannot be put where the template puts it without changing the
    command. Values come from traces: one outside quotes that is not a plain word (``EURUSD;
    curl … | sh``) is single-quoted; inside the template's own quotes, a value that would end
    them or expand there drops the command."""
    return _filled(template, evidence, strict=True)


def fill_commands(templates: Sequence[Template], evidence: Mapping[str, Any]) -> list[str]:
    """Each template's command (``fill_command``; those it drops left out), given once for
    each value where an operation's value it reads lists several (``{op:symbol}`` of a
    training on ``EURUSD,ZZZZ`` whose error names neither: KTRDR's CLI refuses
    ``ktrdr data range EURUSD,ZZZZ``, each symbol is what to check)."""
    out: list[str] = []
    for template in templates:
        for each in _one_value_each(template, evidence):
            command = fill_command(template, each)
            if command is not None and command not in out:
                out.append(command)
    return out


def listed_step(templates: Sequence[Template], evidence: Mapping[str, Any]) -> str | None:
    """The step that says why ``fill_commands`` gave a command once for each value: which
    values the operation lists and that nothing in its traces says which one failed."""
    listed: dict[str, list[str]] = {}
    for template in templates:
        for key in template.keys:
            items = _items(key, evidence)
            if len(items) > 1:
                listed.setdefault(key.removeprefix(OPERATION_VALUE_PREFIX), items)
    if not listed:
        return None
    names = " and ".join(listed)
    values = "; ".join(", ".join(items) for items in listed.values())
    return (
        f"The operation names several values of its {names} ({values}) and nothing in its traces "
        "says which one failed: the commands below are given for each (the CLI takes one at "
        "a time); check each and act on the one at fault."
    )


def _one_value_each(
    template: Template, evidence: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    """``evidence`` once for each item of each operation value the template reads that lists
    several (comma-separated, as KTRDR names a run on several symbols), else as is."""
    for key in template.keys:
        items = _items(key, evidence)
        if len(items) > 1:
            return [
                each
                for item in items
                for each in _one_value_each(template, {**evidence, key: item})
            ]
    return [evidence]


def _items(key: str, evidence: Mapping[str, Any]) -> list[str]:
    """The items an operation value lists (one for a value that lists none)."""
    value = evidence.get(key)
    if not key.startswith(OPERATION_VALUE_PREFIX) or not isinstance(value, str):
        return []
    return listed_items(value)


def listed_items(value: str) -> list[str]:
    """The items a comma-separated operation value lists (``EURUSD,ZZZZ``: KTRDR names a
    run on several symbols or timeframes so), blanks left out."""
    return [item.strip() for item in value.split(",") if item.strip()]


# A value that needs no quoting in a shell command: what ids, symbols, timeframes, dates,
# hosts and URLs without a query are made of.
_SHELL_PLAIN = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")
# Characters a double-quoted shell string still interprets.
_IN_DOUBLE_QUOTES = frozenset('"$`\\!')


@lru_cache(maxsize=4096)
def _quote_state(text: str, state: str) -> str:
    """The shell's quoting after ``text`` when it started in ``state`` (``""``: unquoted,
    ``"'"`` or ``'"'``): enough to know where a template puts its values. ``text`` is always
    a template's own (a pack's), never a value: remembered, so a command's text is scanned
    once per process, not at every fill (it was 60 % of ``conclusion.conclude``)."""
    escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif state == "'":
            if ch == "'":
                state = ""
        elif ch == "\\":
            escaped = True
        elif state == '"':
            if ch == '"':
                state = ""
        elif ch in "'\"":
            state = ch
    return state


def _shell_value(text: str, state: str) -> str | None:
    """``text`` as it may stand in a command at quoting ``state``; None when it cannot."""
    if has_unsafe(text):
        return None
    if state == "":
        return text if _SHELL_PLAIN.match(text) else "'" + text.replace("'", "'\\''") + "'"
    if state == "'":
        return None if "'" in text else text
    return None if _IN_DOUBLE_QUOTES.intersection(text) else text


def _filled(template: Template, evidence: Mapping[str, Any], *, strict: bool) -> str | None:
    """One pass of ``fill``; ``strict`` (a command): None at a missing value without a
    default, values made safe for the shell (``fill_command``)."""
    if template.static is not None:
        return template.static
    out: list[str] = []
    state = ""  # the shell's quoting where the next part goes (commands only)
    valued = False  # the last part was a value (a sentence's full stop may end it already)
    for part in template.parts:
        if isinstance(part, str):
            literal = part
            if valued and not strict and part[:1] == "." and out and out[-1].endswith("."):
                literal = part[1:]  # "…may need to be retrained." + "." : one full stop
            valued = False
            out.append(literal)
            if strict:
                state = _quote_state(part, state)
            continue
        value = evidence.get(part.key)
        valued = True
        if part.present is not None:
            if value is not None and value != "":
                text = render_value(value)
                if strict:
                    before = part.present.partition("$")[0]
                    safe = _shell_value(text, _quote_state(before, state))
                    if safe is None:
                        return None
                    text = safe
                    state = _quote_state(part.present.replace("$", ""), state)
                out.append(part.present.replace("$", text))
        elif value is None or value == "":
            if part.default is not None:
                out.append(part.default)
                if strict:
                    state = _quote_state(part.default, state)
            elif strict:
                return None
            else:
                out.append(MISSING)
        else:
            text = render_value(value)
            if strict:
                safe = _shell_value(text, state)
                if safe is None:
                    return None
                text = safe
            out.append(text)
    return "".join(out)
