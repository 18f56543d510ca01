"""Which span matches may hold on a span, decided once per distinct span shape.

The static part of a span match — names, kinds, the error flag, whether it needs an
exception at all — depends only on the span's shape: name, kind, error flag, and whether it
records an exception. A 100k-span trace has a few dozen shapes, a listing of 200k one-span
operations a handful, so a ``ShapeIndex`` decides each shape once and keeps the answer with
the compiled rule set: most spans then cost one dict lookup and meet no candidate at all.
Whether a span records an exception is only looked at when a candidate of its shape needs one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:  # rules builds its indexes with this module
    from opdiag.diagnosis.rules import SpanMatch
    from opdiag.model import Span

T = TypeVar("T")
# Distinct shapes remembered per index; hostile input with a million span names only makes
# the index start over, never grow without bound.
MAX_SHAPES = 8192


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

    __slots__ = ("_items", "_lock", "_match_of", "_memo")

    def __init__(self, items: Sequence[T], match_of: Callable[[T], SpanMatch | None]) -> None:
        self._items = tuple(items)
        self._match_of = match_of
        # (name, kind, error) -> (candidates without an exception, with one)
        self._memo: dict[tuple[str, str, bool], tuple[tuple[T, ...], tuple[T, ...]]] = {}
        self._lock = threading.Lock()

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
        plain: list[T] = []
        with_exc: list[T] = []
        for item in self._items:
            m = self._match_of(item)
            if m is None:
                continue
            if static_match(m, name, kind, error, False):
                plain.append(item)
                with_exc.append(item)
            elif static_match(m, name, kind, error, True):
                with_exc.append(item)
        first = tuple(plain)
        entry = (first, first if len(with_exc) == len(plain) else tuple(with_exc))
        with self._lock:
            if len(self._memo) >= MAX_SHAPES:
                self._memo.clear()
            self._memo[key] = entry
        return entry
