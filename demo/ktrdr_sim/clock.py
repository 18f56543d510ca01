"""Clocks for the scenarios: simulated (hours recorded instantly) or the wall clock.

Scenario code never reads time directly; it asks the injected clock, so the same code records a
reproducible corpus or drives a live demo.

The simulated clock is a small discrete-event scheduler. KTRDR is concurrent: the backend's
health loop and orphan detector, the IB host service's connection loop and a worker's training
run at the same time, and what one sees depends on what the others did (a health check fails
because the worker was killed a second earlier). Each concurrent activity runs in its own
thread, but only one runs at a time: ``sleep`` hands control to whichever activity is due
next, ties in start order. The order of everything (and so of every random draw and id) is
fixed, so a recording is reproducible byte for byte.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

NS_PER_S = 1_000_000_000


class Unwound(BaseException):
    """Raised inside a simulated activity that must stop where it is: its open spans never
    end, so they are never exported (like a killed process, or a recording that stops)."""


class SimStopped(Unwound):
    """The recording ended while this activity was still running."""


class ProcessKilled(Unwound):
    """The process running this activity was killed (SIGKILL)."""


@dataclass(slots=True)
class Background:
    """A piece of work started "in parallel" (an asyncio task or thread in the real KTRDR)."""

    started_ns: int
    finished_ns: int | None = None
    thread: threading.Thread | None = None
    _proc: _Proc | None = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.finished_ns is not None


class Clock(Protocol):
    """What scenarios need from time."""

    def now_ns(self) -> int: ...

    def sleep(self, seconds: float) -> None: ...

    def sleep_until(self, t_ns: int) -> None: ...

    def background(self, work: Callable[[], None]) -> Background: ...

    def join(self, job: Background, timeout_s: float | None = None) -> bool: ...


class _Proc:
    """One simulated activity: its thread, its wake-up signal and who waits for it."""

    def __init__(self, job: Background) -> None:
        self.job = job
        self.go = threading.Event()
        self.token = 0  # bumped whenever it resumes: older queue entries are stale
        self.waiters: list[_Proc] = []
        self.pending: type[Unwound] | None = None
        self.error: BaseException | None = None
        self.started = False


class SimClock:
    """Simulated time: ``run(main)`` executes ``main`` and everything it starts in the
    background, one activity at a time, in time order. Outside ``run`` the clock only counts
    (``sleep`` advances it), which is enough for code that has nothing running beside it.
    """

    def __init__(self, start_ns: int) -> None:
        self._now = start_ns
        self._queue: list[tuple[int, int, int, _Proc]] = []
        self._seq = itertools.count()
        self._current: _Proc | None = None
        self._yielded = threading.Event()
        self._running = False
        self._stopping = False
        self._procs: list[_Proc] = []

    def now_ns(self) -> int:
        return self._now

    def set_ns(self, value: int) -> None:
        """Jump to an absolute instant (only outside ``run``)."""
        if self._running:
            raise RuntimeError("set_ns inside a run: use sleep_until")
        self._now = value

    # ------------------------------------------------------------------------- activities

    def sleep(self, seconds: float) -> None:
        self.sleep_until(self._now + round(seconds * NS_PER_S))

    def sleep_until(self, t_ns: int) -> None:
        proc = self._current
        if proc is None:
            self._now = max(self._now, t_ns)
            return
        if self._stopping:
            raise SimStopped
        t_ns = max(t_ns, self._now)
        if not self._queue or self._queue[0][0] > t_ns:
            self._now = t_ns  # nothing else is due first: no need to switch
            return
        self._push(proc, t_ns)
        self._switch(proc)

    def background(self, work: Callable[[], None]) -> Background:
        """Start ``work`` beside the caller; it runs when the caller next waits."""
        job = Background(started_ns=self._now)
        if not self._running:
            raise RuntimeError("background work needs SimClock.run")
        proc = _Proc(job)
        job._proc = proc
        job.thread = threading.Thread(target=self._body, args=(proc, work), daemon=True)
        self._procs.append(proc)
        job.thread.start()
        self._push(proc, self._now)
        return job

    def join(self, job: Background, timeout_s: float | None = None) -> bool:
        """Wait until ``job`` finished (or ``timeout_s`` passed); True when it finished."""
        proc = self._current
        if job.done or proc is None:
            return job.done
        if self._stopping:
            raise SimStopped
        target = job._proc
        assert target is not None
        target.waiters.append(proc)
        if timeout_s is not None:
            self._push(proc, self._now + round(timeout_s * NS_PER_S))
        self._switch(proc)
        if proc in target.waiters:
            target.waiters.remove(proc)
        return job.done

    def kill(self, job: Background) -> None:
        """Stop ``job`` where it is (its process was killed): ``ProcessKilled`` is raised in it
        at the current instant; its open spans never end."""
        target = job._proc
        if target is None or job.done or target is self._current:
            if target is self._current and target is not None:
                raise ProcessKilled
            return
        target.pending = ProcessKilled
        self._push(target, self._now)

    # -------------------------------------------------------------------------- scheduler

    def run(self, main: Callable[[], None]) -> None:
        """Run ``main`` to its end, with everything it started meanwhile; then stop whatever
        is still running (``SimStopped``: endless loops, hung work)."""
        self._running = True
        try:
            job = self.background(main)
            while self._queue and not job.done:
                t, _, token, proc = heapq.heappop(self._queue)
                if token != proc.token or proc.job.done:
                    continue
                self._now = max(self._now, t)
                self._resume(proc)
            self._stopping = True
            for proc in self._procs:
                if not proc.job.done:
                    proc.pending = SimStopped
                    self._resume(proc)
        finally:
            self._running = False
            self._stopping = False
            self._current = None
            self._queue.clear()

    def _push(self, proc: _Proc, t_ns: int) -> None:
        heapq.heappush(self._queue, (t_ns, next(self._seq), proc.token, proc))

    def _resume(self, proc: _Proc) -> None:
        proc.token += 1
        self._current = proc
        self._yielded.clear()
        proc.go.set()
        self._yielded.wait()
        self._current = None
        if proc.error is not None:
            raise proc.error

    def _switch(self, proc: _Proc) -> None:
        """Hand control to the scheduler; return when this activity is resumed."""
        self._yielded.set()
        proc.go.wait()
        proc.go.clear()
        if proc.pending is not None:
            exc, proc.pending = proc.pending, None
            raise exc

    def _body(self, proc: _Proc, work: Callable[[], None]) -> None:
        proc.go.wait()
        proc.go.clear()
        try:
            if proc.pending is None:
                work()
        except Unwound:
            pass
        except BaseException as exc:  # handed to run(), which raises it
            proc.error = exc
        finally:
            proc.job.finished_ns = self._now
            for waiter in proc.waiters:
                self._push(waiter, self._now)
            self._yielded.set()


class RealClock:
    """The wall clock, for live mode: background work runs in a daemon thread."""

    def __init__(self, speedup: float = 1.0) -> None:
        self._speedup = speedup

    def now_ns(self) -> int:
        return time.time_ns()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds / self._speedup)

    def sleep_until(self, t_ns: int) -> None:
        """Until a wall-clock instant (not compressed: it is already real time)."""
        time.sleep(max(0, t_ns - self.now_ns()) / NS_PER_S)

    def background(self, work: Callable[[], None]) -> Background:
        job = Background(started_ns=self.now_ns())

        def run() -> None:
            try:
                work()
            except Unwound:
                pass
            finally:
                job.finished_ns = self.now_ns()

        job.thread = threading.Thread(target=run, daemon=True)
        job.thread.start()
        return job

    def join(self, job: Background, timeout_s: float | None = None) -> bool:
        if job.thread is not None:
            job.thread.join(None if timeout_s is None else timeout_s / self._speedup)
        return job.done
