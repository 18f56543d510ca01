"""Glob patterns (span names, services, exception types) compiled into one regex, once.

Rule packs, noise patterns and the operation grouping all ask "does this name match any of
these globs?" for every span; one compiled alternation per distinct pattern list answers it
with one regex match instead of a loop over ``fnmatch``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

_GLOBS: dict[tuple[str, ...], Globs] = {}
_MAX_SEEN = 8192


@dataclass(frozen=True, slots=True)
class Globs:
    """Span-name (or service, or exception-type) glob patterns, compiled into one regex."""

    patterns: tuple[str, ...]
    regex: re.Pattern[str]
    # text -> whether it matches, for ``known``
    seen: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, patterns: Sequence[str]) -> Globs:
        """Compiled once per distinct pattern list (the engine asks for the settings' noise
        patterns on every diagnosis; a listing diagnoses thousands)."""
        key = tuple(patterns)
        found = _GLOBS.get(key)
        if found is None:
            joined = "|".join(f"(?:{fnmatch.translate(p)})" for p in key) or r"(?!)"
            found = _GLOBS[key] = cls(key, re.compile(joined))
        return found

    def __call__(self, text: str) -> bool:
        return self.regex.match(text) is not None

    def known(self, text: str) -> bool:
        """``self(text)``, remembered per text (bounded): "is this span name noise?" and "is
        this service a worker's?" are asked of the same few texts for every span of every
        operation of a listing."""
        hit = self.seen.get(text)
        if hit is None:
            if len(self.seen) >= _MAX_SEEN:
                self.seen.clear()
            hit = self.seen[text] = self.regex.match(text) is not None
        return hit


def any_of(globs: Iterable[Globs]) -> re.Pattern[str] | None:
    """One regex that matches a text when one of ``globs`` does (a text none of them takes,
    the usual case, then costs one match, however many there are); None when there are none
    or their flags differ (each is then tried on its own)."""
    regexes = [g.regex for g in globs]
    if not regexes or any(r.flags != regexes[0].flags for r in regexes):
        return None
    return re.compile("|".join(f"(?:{r.pattern})" for r in regexes), regexes[0].flags)


def is_wildcard(value: str) -> bool:
    """Does a filter value hold a wildcard (``*`` or ``?``)?"""
    return "*" in value or "?" in value


def wildcard_match(patterns: Iterable[str]) -> re.Pattern[str]:
    """One regex (use ``fullmatch``) for filter values people type: ``*`` any run, ``?`` one
    character, every other character itself (brackets too, unlike ``fnmatch``): a service
    filter ``ktrdr-training-worker-*`` keeps every process of the training workers."""
    parts = [
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in p)
        for p in patterns
    ]
    return re.compile("|".join(f"(?:{p})" for p in parts) if parts else "(?!)", re.DOTALL)
