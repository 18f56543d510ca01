"""Which span matches may hold on a span, decided once per distinct span shape.

The static part of a span match — names, kinds, the error flag, whether it needs an
exception at all — depends only on the span's shape: name, kind, error flag, and whether it
records an exception. A 100k-span trace has a few dozen shapes, a listing of 200k one-span
operations a handful, so a ``ShapeIndex`` decides each shape once and keeps the answer with
the compiled rule set: most spans then cost one dict lookup and meet no candidate at all.
Whether a span records an exception is only looked at when a candidate of its shape needs one.

Deciding a shape costs one regex for a name no item's globs take, however many items there
are: a trace whose span names hold ids (``GET /items/123``, a route never templated) has as
many shapes as spans, and each would otherwise try every rule's globs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from opdiag.globs import any_of

if TYPE_CHECKING:  # rules builds its indexes with this module
    from opdiag.diagnosis.rules import SpanMatch
    from opdiag.globs import Globs
    from opdiag.model import Span

T = TypeVar("T")
D = TypeVar("D")
# Distinct shapes remembered per index; hostile input with a million span names only makes
# the index start over, never grow without bound.
MAX_SHAPES = 8192
_MAX_KINDS = 64


def has_exception(span: Span) -> bool:
    """Does the span record an exception (an event, or the attributes some exporters set)?"""
    if span.events:
        return True
    attrs = span.attributes
    return "exception.type" in attrs or "error.type" in attrs


def static_match(m: SpanMatch, name: str, kind: str, error: bool, has_exc: bool) -> bool:
    """The part of ``m`` decided by a span's shape alone."""
    if m.names is not None and not m.names(name):
        return False
    return _static_rest(m, kind, error, has_exc)


def _static_rest(m: SpanMatch, kind: str, error: bool, has_exc: bool) -> bool:
    """``static_match`` once the name is known to pass."""
    if m.kinds and kind not in m.kinds:
        return False
    if m.error is not None and m.error is not error:
        return False
    return has_exc or (m.exceptions is None and m.exception_message is None)


class ShapeIndex(Generic[T]):
    """``items`` (rules, nested matches …) whose match may hold on a span of a given shape.

    ``match_of`` gives an item's span match. Answers are tuples in ``items`` order, shared:
    callers must not change them. Safe to share between threads (a shape decided twice by
    two threads gets the same answer)."""

    __slots__ = ("_any_name", "_derived", "_items", "_lock", "_match_of", "_matches", "_memo",
                 "_named", "_unnamed", "_unnamed_of")

    def __init__(self, items: Sequence[T], match_of: Callable[[T], SpanMatch | None]) -> None:
        self._items = tuple(items)
        self._match_of = match_of
        # (name, kind, error) -> (candidates without an exception, with one)
        self._memo: dict[tuple[str, str, bool], tuple[tuple[T, ...], tuple[T, ...]]] = {}
        self._lock = threading.Lock()
        # per item its match; the items with a match and no name globs; the distinct name
        # globs with the items that use them (tried once each); one regex for all of them
        self._matches = tuple(match_of(item) for item in self._items)
        self._unnamed = tuple(
            i for i, m in enumerate(self._matches) if m is not None and m.names is None
        )
        named: dict[Globs, list[int]] = {}
        for i, m in enumerate(self._matches):
            if m is not None and m.names is not None:
                named.setdefault(m.names, []).append(i)
        self._named = tuple((globs, frozenset(ids)) for globs, ids in named.items())
        self._any_name = any_of(named)
        # (kind, error) -> what the items without name globs answer
        self._unnamed_of: dict[tuple[str, bool], tuple[tuple[T, ...], tuple[T, ...]]] = {}
        # what callers derive from one of the answers (see ``derived``)
        self._derived: dict[Hashable, Any] = {}

    def __len__(self) -> int:
        return len(self._items)

    @property
    def items(self) -> tuple[T, ...]:
        return self._items

    def of(self, span: Span) -> tuple[T, ...]:
        """The items whose static match holds on ``span``."""
        plain, with_exc = self.entry((span.name, span.kind, span.error))
        if with_exc is not plain and has_exception(span):
            return with_exc
        return plain

    def entry(self, key: tuple[str, str, bool]) -> tuple[tuple[T, ...], tuple[T, ...]]:
        """For a (name, kind, error) shape: the items whose static match holds on such a
        span without an exception, and with one (the same tuple when that makes no
        difference)."""
        entry = self._memo.get(key)
        return entry if entry is not None else self._decide(key)

    def _decide(self, key: tuple[str, str, bool]) -> tuple[tuple[T, ...], tuple[T, ...]]:
        name, kind, error = key
        any_name = self._any_name
        if not self._named or (any_name is not None and any_name.match(name) is None):
            # no item's name globs take it: the items without any decide, by kind and error
            unnamed = self._unnamed_of.get((kind, error))
            if unnamed is None:
                unnamed = self._pick(self._unnamed, kind, error)
                if len(self._unnamed_of) >= _MAX_KINDS:
                    self._unnamed_of.clear()
                self._unnamed_of[(kind, error)] = unnamed
            return self._remember(key, unnamed)
        taken = {i for globs, ids in self._named if globs(name) for i in ids}
        passing = sorted(taken.union(self._unnamed)) if taken else self._unnamed
        return self._remember(key, self._pick(passing, kind, error))

    def _pick(
        self, passing: Iterable[int], kind: str, error: bool
    ) -> tuple[tuple[T, ...], tuple[T, ...]]:
        """Of the items at ``passing`` (their names pass), those whose static match holds
        without an exception, and with one (the same tuple when that makes no difference)."""
        plain: list[T] = []
        with_exc: list[T] = []
        items, matches = self._items, self._matches
        for i in passing:
            m = matches[i]
            if m is None:
                continue
            if _static_rest(m, kind, error, False):
                plain.append(items[i])
                with_exc.append(items[i])
            elif _static_rest(m, kind, error, True):
                with_exc.append(items[i])
        first = tuple(plain)
        return first, first if len(with_exc) == len(plain) else tuple(with_exc)

    def derived(self, answer: tuple[T, ...], part: Hashable, make: Callable[[], D]) -> D:
        """What a caller derives from ``answer`` (a tuple this index gave) and ``part``,
        made once and kept with the index, which outlives every trace (bounded like the
        shapes). Keyed by the answer's identity: the index holds its answers, and an entry
        whose answer was dropped with the memo is made again."""
        key = (id(answer), part)
        found = self._derived.get(key)
        if found is not None and found[0] is answer:
            return cast(D, found[1])
        made = make()
        with self._lock:
            if len(self._derived) >= MAX_SHAPES:
                self._derived.clear()
            self._derived[key] = (answer, made)
        return made

    def _remember(
        self, key: tuple[str, str, bool], entry: tuple[tuple[T, ...], tuple[T, ...]]
    ) -> tuple[tuple[T, ...], tuple[T, ...]]:
        with self._lock:
            if len(self._memo) >= MAX_SHAPES:
                self._memo.clear()
            self._memo[key] = entry
        return entry
