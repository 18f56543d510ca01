"""Clocks for the scenarios: simulated (hours recorded instantly) or the wall clock.

Scenario code never reads time directly; it asks the injected clock, so the same code records a
reproducible corpus or drives a live demo.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

NS_PER_S = 1_000_000_000


@dataclass(slots=True)
class Background:
    """A piece of work started "in parallel" (an asyncio task or thread in the real KTRDR)."""

    started_ns: int
    finished_ns: int | None = None
    thread: threading.Thread | None = None


class Clock(Protocol):
    """What scenarios need from time."""

    def now_ns(self) -> int: ...

    def sleep(self, seconds: float) -> None: ...

    def background(self, work: Callable[[], None]) -> Background: ...

    def join(self, job: Background) -> None: ...


class SimClock:
    """A simulated clock: ``sleep`` advances it, ``background`` runs work on a forked timeline.

    Background work runs to completion at once (advancing the clock), then the clock returns to
    the instant it was started, so the caller continues "concurrently". ``join`` moves the clock
    to the end of the background work if that is later.
    """

    def __init__(self, start_ns: int) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def sleep(self, seconds: float) -> None:
        self._now += round(seconds * NS_PER_S)

    def set_ns(self, value: int) -> None:
        """Jump to an absolute instant (used to place scenarios on the timeline)."""
        self._now = value

    def background(self, work: Callable[[], None]) -> Background:
        job = Background(started_ns=self._now)
        work()
        job.finished_ns = self._now
        self._now = job.started_ns
        return job

    def join(self, job: Background) -> None:
        if job.finished_ns is not None and job.finished_ns > self._now:
            self._now = job.finished_ns


class RealClock:
    """The wall clock, for live mode: background work runs in a daemon thread."""

    def __init__(self, speedup: float = 1.0) -> None:
        self._speedup = speedup

    def now_ns(self) -> int:
        return time.time_ns()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds / self._speedup)

    def background(self, work: Callable[[], None]) -> Background:
        job = Background(started_ns=self.now_ns())

        def run() -> None:
            work()
            job.finished_ns = self.now_ns()

        job.thread = threading.Thread(target=run, daemon=True)
        job.thread.start()
        return job

    def join(self, job: Background) -> None:
        if job.thread is not None:
            job.thread.join()
