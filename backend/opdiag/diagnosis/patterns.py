"""Regular expressions a rule pack brings (conditions, ``exception_message``, health-check
URLs, the operation id pattern), compiled once and refused when they may take exponential
time: Python's ``re`` backtracks, and ``(\\w+\\s?)+$`` against a 40-character exception
message that ends in a full stop does not finish. A repetition inside a repetition is the
classic form of that, so a pack may not use one (``(ab)+`` and ``(an? )?`` stay fine: no
unbounded repeat holds another, and ``?`` repeats nothing)."""

from __future__ import annotations

import re
from typing import Any

try:  # the parser ``re`` compiles with (private; without it, patterns are not checked)
    from re import _constants as _sre_constants
    from re import _parser as _sre_parser
except ImportError:  # pragma: no cover - other Pythons
    _sre_parser = None  # type: ignore[assignment]
    _sre_constants = None  # type: ignore[assignment]

MAX_PATTERN = 2_000  # characters: a pack's regex is a line, not a document


def compile_pattern(text: str) -> re.Pattern[str]:
    """``re.compile(text)``; ``ValueError`` naming the problem for a bad regex, a very long
    one, or one with a repetition inside a repetition."""
    if len(text) > MAX_PATTERN:
        raise ValueError(f"bad regex: longer than {MAX_PATTERN} characters")
    try:
        pattern = re.compile(text)
    except (re.error, RecursionError, OverflowError) as exc:
        raise ValueError(f"bad regex {text[:80]!r}: {exc}") from None
    if _sre_parser is not None and _nested_repeat(_sre_parser.parse(text), inside=False):
        raise ValueError(
            f"regex {text[:80]!r} repeats a repetition (as in '(a+)+'): it can take "
            "exponential time on a text it does not match; write it without the nesting"
        )
    return pattern


def _nested_repeat(parsed: Any, *, inside: bool) -> bool:
    """Does a repeat of a varying count sit inside a repeat of more than one occurrence?
    Not when the count leaves nothing to try again: a fixed one (``(a{2})+``), or a repeat
    of single characters ended by a character they cannot be (``(?:[a-z0-9]+_)*``: each
    turn ends at the next ``_``, one way only)."""
    c = _sre_constants
    items = list(parsed)
    for index, (op, av) in enumerate(items):
        deeper = inside
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            low, high, sub = av
            if inside and low != high and not _ended(sub, items[index + 1 : index + 2]):
                return True
            children = [sub]
            deeper = inside or high is c.MAXREPEAT or high > 1
        elif op is c.SUBPATTERN:
            children = [av[-1]]
        elif op is c.BRANCH:
            children = av[1]
        elif op in (c.ASSERT, c.ASSERT_NOT):
            children = [av[1]]
        elif op is c.ATOMIC_GROUP:
            children = [av]
        elif op is c.GROUPREF_EXISTS:
            children = [p for p in av[1:] if p is not None]
        else:
            continue
        if any(_nested_repeat(child, inside=deeper) for child in children):
            return True
    return False


# characters tried to tell two one-character matches apart: Latin-1 and a few others
_SAMPLE = [chr(i) for i in range(256)] + list("ĀſǅΩЖ٣ก中\u2028\u3000😀")


def _ended(body: Any, after: list[Any]) -> bool:
    """Is a repeat of ``body`` followed at once by a one-character match that no character
    ``body`` takes can meet?"""
    items = list(body)
    if len(items) != 1 or len(after) != 1:
        return False
    inner, outer = _one_char(items[0]), _one_char(after[0])
    if inner is None or outer is None:
        return False
    return not any(inner(ch) and outer(ch) for ch in _SAMPLE)


def _one_char(item: Any) -> Any:
    """A predicate for a token that matches exactly one character, else None."""
    c = _sre_constants
    op, av = item
    if op is c.LITERAL:
        return lambda ch: ord(ch) == av
    if op is c.NOT_LITERAL:
        return lambda ch: ord(ch) != av
    if op is c.IN:
        tests = []
        negate = False
        for sub_op, sub_av in av:
            if sub_op is c.NEGATE:
                negate = True
            elif sub_op is c.LITERAL:
                tests.append(lambda ch, v=sub_av: ord(ch) == v)
            elif sub_op is c.RANGE:
                tests.append(lambda ch, r=sub_av: r[0] <= ord(ch) <= r[1])
            elif sub_op is c.CATEGORY and sub_av in _CATEGORIES:
                tests.append(lambda ch, rx=_CATEGORIES[sub_av]: rx.match(ch) is not None)
            else:
                return None
        return lambda ch: any(t(ch) for t in tests) is not negate
    return None


_CATEGORIES: dict[Any, re.Pattern[str]] = (
    {
        _sre_constants.CATEGORY_DIGIT: re.compile(r"\d"),
        _sre_constants.CATEGORY_NOT_DIGIT: re.compile(r"\D"),
        _sre_constants.CATEGORY_SPACE: re.compile(r"\s"),
        _sre_constants.CATEGORY_NOT_SPACE: re.compile(r"\S"),
        _sre_constants.CATEGORY_WORD: re.compile(r"\w"),
        _sre_constants.CATEGORY_NOT_WORD: re.compile(r"\W"),
    }
    if _sre_constants is not None
    else {}
)
