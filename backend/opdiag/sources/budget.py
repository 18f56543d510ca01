"""How long one request may spend asking Jaeger in all (``jaeger.budget_s``).

``jaeger.deadline_s`` bounds each call, but a listing or a diagnosis with its baseline makes
dozens of them: over a Jaeger answering each in 3 s, ``opdiag operations`` took 93 s over 87
calls, long after Grafana's panel had given up. A request — a CLI command, an API call, an
assistant's tool call — opens a budget at its edge (``jaeger_budget``); every Jaeger call
made for it, on any of the source's threads, ends by the budget's end, and once it is spent
the request fails with a 504 that says why, instead of going on.

The budget lives in a context variable: the server's requests run on threads of their own
and each sees only its own; the source's fan-out copies the caller's context into its
workers, so they share the caller's budget. Its clock starts at the first Jaeger call (a
file source never starts it), on the HTTP layer's own clock, and its length is that
source's ``jaeger.budget_s`` unless the edge gave one.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from opdiag.errors import SourceTimeoutError

_CURRENT: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "opdiag_jaeger_budget", default=None
)


class Budget:
    """The seconds one request may spend on Jaeger, from its first call on."""

    __slots__ = ("_lock", "calls", "ends", "seconds")

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = seconds
        self.ends: float | None = None
        self.calls = 0
        self._lock = threading.Lock()

    def start_call(self, now: float, seconds: float) -> float:
        """Count one call starting at ``now``; the moment it must end by (the first call
        starts the clock, ``seconds`` long unless the budget has its own). Raises
        ``BudgetSpent`` when nothing is left."""
        with self._lock:
            if self.ends is None:
                if self.seconds is None:
                    self.seconds = seconds
                self.ends = now + self.seconds
            if now >= self.ends:
                raise BudgetSpent(self)
            self.calls += 1
            return self.ends


class BudgetSpent(Exception):
    """The request's Jaeger budget is spent (the HTTP layer turns it into a 504)."""

    def __init__(self, budget: Budget) -> None:
        super().__init__(f"{budget.seconds or 0:g}s")
        self.budget = budget


class BudgetSpentError(SourceTimeoutError):
    """A request failed because its own budget was spent. It names the budget: a request
    that joined another's Jaeger call (``TtlCache``'s single flight) and got this error for
    a budget not its own asks Jaeger itself instead."""

    def __init__(self, message: str, budget: Budget) -> None:
        super().__init__(message)
        self.budget = budget


def current() -> Budget | None:
    """The budget of the request this thread works for, if one was opened."""
    return _CURRENT.get()


def open_budget() -> contextvars.Token[Budget | None]:
    """Open a request's budget where a ``with`` block cannot (a web framework's before and
    teardown hooks); ``close_budget`` with the token ends it."""
    return _CURRENT.set(Budget())


def close_budget(token: contextvars.Token[Budget | None]) -> None:
    _CURRENT.reset(token)


@contextmanager
def jaeger_budget(seconds: float | None = None) -> Iterator[Budget]:
    """Open the request's budget; inside an open one (a command calling the service, which
    calls itself), the outer budget stays the one that counts."""
    outer = _CURRENT.get()
    if outer is not None:
        yield outer
        return
    budget = Budget(seconds)
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)
