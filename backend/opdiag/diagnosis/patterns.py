"""Regular expressions a rule pack brings (conditions, ``exception_message``, health-check
URLs, the operation id pattern). A backtracking engine can take exponential time on a text a
pattern does not match: ``(a|aa)+$`` against forty ``a`` and a full stop does not finish with
Python's ``re``, and one such rule would hang every diagnosis. So a pack's patterns run on the
``regex`` engine (``re``'s syntax; it settles many nested repetitions at once), each search
gives up after ``SEARCH_TIMEOUT_S`` (no match), and a pattern that needs more than
``PROBE_TIMEOUT_S`` on one of a few texts built to make engines backtrack is refused when the
pack loads, with its file and line. The bundled pack's patterns are vetted by its tests
(``tests/test_hostile_packs.py`` runs them on the probes): they stay on ``re``, which is
faster per call and costs no import."""

from __future__ import annotations

import re
from typing import Any

MAX_PATTERN = 2_000  # characters: a pack's regex is a line, not a document
SEARCH_TIMEOUT_S = 0.05
PROBE_TIMEOUT_S = 0.2
# texts that make a backtracking engine try many ways: runs of one character, of words,
# of spaces, of punctuation, each ending in a character few patterns expect there
_PROBES = (
    "a" * 400 + "!",
    "a " * 200 + "!",
    " " * 400 + "!",
    "aA0_-./:" * 50 + "\n",
    "x" * 400 + "\x00",
)


class Pattern:
    """A pack pattern whose searches cannot run away; compares, hashes, pickles and reads
    (``pattern``, ``groupindex``) as ``re.Pattern`` does. Compiled when first used: the
    ``regex`` engine takes ~15 ms to import, which a run from the cached pack that searches
    nothing does not pay."""

    __slots__ = ("_compiled", "pattern", "vetted")

    def __init__(self, text: str, vetted: bool = False) -> None:
        self.pattern = text
        self.vetted = vetted  # the bundled pack's: on ``re``, without a time limit
        self._compiled: Any = None

    @property
    def compiled(self) -> Any:
        if self._compiled is None:
            if self.vetted:
                self._compiled = re.compile(self.pattern)
            else:
                import regex

                self._compiled = regex.compile(self.pattern)
        return self._compiled

    @property
    def groupindex(self) -> dict[str, int]:
        return dict(self.compiled.groupindex)

    def search(self, text: str) -> Any:
        """The first match in ``text``, or None (also when it takes too long)."""
        return self._within_time(self.compiled.search, text)

    def match(self, text: str) -> Any:
        """A match at the start of ``text``, or None (also when it takes too long)."""
        return self._within_time(self.compiled.match, text)

    def _within_time(self, find: Any, text: str) -> Any:
        if self.vetted:
            return find(text)
        try:
            return find(text, timeout=SEARCH_TIMEOUT_S)
        except TimeoutError:
            return None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pattern) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(self.pattern)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Pattern, (self.pattern, self.vetted))

    def __repr__(self) -> str:
        return f"Pattern({self.pattern!r})"


def compile_pattern(text: str, *, vetted: bool = False) -> Pattern:
    """The pattern of ``text``; ``ValueError`` naming the problem for a bad regex, a very long
    one, or (unless ``vetted``) one that takes too long on a probe text."""
    if len(text) > MAX_PATTERN:
        raise ValueError(f"bad regex: longer than {MAX_PATTERN} characters")
    pattern = Pattern(text, vetted)
    if vetted:
        try:
            re.compile(text)
        except (re.error, RecursionError, OverflowError) as exc:
            raise ValueError(f"bad regex {text[:80]!r}: {exc}") from None
        return pattern
    import regex

    try:
        compiled = pattern.compiled
    except (regex.error, RecursionError, OverflowError, ValueError) as exc:
        raise ValueError(f"bad regex {text[:80]!r}: {exc}") from None
    for probe in _PROBES:
        try:
            compiled.search(probe, timeout=PROBE_TIMEOUT_S)
        except TimeoutError:
            raise ValueError(
                f"regex {text[:80]!r} takes more than {PROBE_TIMEOUT_S} s on a "
                f"{len(probe)}-character text it does not match: it backtracks (as "
                "'(a|aa)+$' does); write it so that each part can match in one way only"
            ) from None
    return pattern
