"""``gc_paused()``: run a block with the cyclic garbage collector off, then restore it.

Parsing, analysis and the one-shot CLI commands allocate millions of acyclic containers; the
cyclic collector would rescan that growing heap again and again (up to half the time on a
100 000-span trace) while reference counting alone frees that garbage. The collector is
re-enabled afterwards only if it was on before, so in-process callers (tests, ``serve``) keep
their own setting, and nesting is harmless.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC for the ``with`` block; restore its previous state afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
