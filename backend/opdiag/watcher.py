"""The background watcher of ``opdiag serve``: it records every verdict in the store.

Each pass (every ``watcher.interval_s``):

1. asks the service for every operation of the source's recent window, exactly as the
   operations list does (``DiagnosisService.operations``: Jaeger's shared live-window search
   with its TTL cache and single flight; finished diagnoses come from the service's cache,
   so each finished operation is diagnosed once; unfinished ones are judged again);
2. records them (``SqlStore.record``): a new operation or a new verdict is a history entry,
   an operation whose verdict is settled is never rewritten;
3. judges again, one by one (``service.diagnose``), unsettled operations of the store that
   the window no longer shows — started before it, or beyond its trace limit — while they
   are younger than ``watcher.follow_s``, at most ``watcher.follow_limit`` per pass;
4. counts operations that settled while it runs into the verdict metrics, and sets the
   in-progress gauge from the store.

Like a request, each pass may spend ``jaeger.budget_s`` on Jaeger for its listing and as
much again for its follow-ups: over a slow Jaeger a pass ends instead of running on call
after call. A listing that spends its budget fails the pass; follow-ups that spend theirs
stop there, and the operations not judged again are the first the next pass follows (least
recently judged first).

A failure (Jaeger down, the store down, a bug) ends the pass: it is logged, counted in
``opdiag_watcher_errors_total{stage}``, and the next pass starts over from the source's
window, so nothing is lost while the window still holds it. With several replicas on one
PostgreSQL store only the one holding the store's lead lock records; the others refresh their
gauges from the store and take over when it goes away.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from opdiag.api.queries import is_file_source
from opdiag.errors import NotFoundError, OpdiagError, StoreUnavailableError
from opdiag.settings import Settings
from opdiag.sources.budget import BudgetSpentError, jaeger_budget
from opdiag.store.records import InProgress, Recorded, VerdictRecord, record_of
from opdiag.store.sql import SqlStore
from opdiag.timeutil import ALL_END_US, US_PER_MS, US_PER_S, wall_clock_us
from opdiag.verdict_metrics import VerdictMetrics

log = logging.getLogger("opdiag.watcher")
T = TypeVar("T")
_STOP_TIMEOUT_S = 30.0


class _Stage(Exception):
    """A failed pass, with the stage that failed (the errors counter's label)."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message


@dataclass(slots=True)
class PassReport:
    """What one pass did (for logs, tests and the benchmark)."""

    leading: bool
    seen: int = 0
    recorded: list[Recorded] = field(default_factory=list)
    followed: int = 0
    counted: int = 0
    in_progress: list[InProgress] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def new_verdicts(self) -> list[Recorded]:
        return [r for r in self.recorded if r.verdict_changed]


class Watcher:
    """Runs passes in a daemon thread until ``stop()``; ``run_once()`` runs one in-line."""

    def __init__(
        self,
        service: object,
        store: SqlStore,
        settings: Settings,
        metrics: VerdictMetrics | None = None,
        *,
        clock: Callable[[], int] = wall_clock_us,
        count_from_us: int | None = None,
    ) -> None:
        self.service = service
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.interval_s = settings.watcher.interval_s
        # Operations that settled before this are history, not events (see module docs).
        self.count_from_us = (
            clock() - int(self.interval_s * US_PER_S) if count_from_us is None else count_from_us
        )
        self.ready = threading.Event()
        self.passes = 0
        self.failures = 0
        self.last_error: str | None = None
        self.last_error_stage: str | None = None  # "store", "source" … of the last pass
        self.leading = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seeded = False
        # when the store's last pass before this process ran (µs; None: there was none),
        # read once on the first pass: an operation the store already held unfinished that
        # ended since then settled unseen, while no watcher ran, and is counted too
        self._last_pass_read = False
        self._last_pass_before_us: int | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Watcher:
        """Pass every interval in a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="opdiag-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = _STOP_TIMEOUT_S) -> None:
        """Stop after the pass under way (if any); returns once the thread ended."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            if self._thread.is_alive():
                log.warning("the watcher did not stop within %.0f s", timeout_s)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval_s)

    def _known_types(self) -> list[str]:
        types = set(self.settings.diagnosis.slow_budget_s)
        try:
            types.update(self.store.distinct("operation_types", 0, ALL_END_US, 10_000))
        except StoreUnavailableError as exc:
            log.warning("watcher: %s", exc.message)
        return sorted(types)

    # -- one pass -------------------------------------------------------------------------

    def run_once(self, now_us: int | None = None) -> PassReport | None:
        """One pass; None when it failed (logged and counted, never raised)."""
        now = self.clock() if now_us is None else now_us
        started = time.perf_counter()
        try:
            report = self._pass(now)
        except _Stage as exc:
            self._failed(exc.stage, exc.message)
            return None
        except Exception as exc:  # a bug must not end the watcher: log it, try again later
            log.exception("watcher pass failed unexpectedly")
            self._failed("internal", f"{type(exc).__name__}: {exc}")
            return None
        report.seconds = time.perf_counter() - started
        self.passes += 1
        self.last_error = self.last_error_stage = None
        if self.metrics is not None:
            self.metrics.last_success.set(now / US_PER_S)
            self.metrics.pass_duration.observe(report.seconds)
        return report

    def _failed(self, stage: str, message: str) -> None:
        self.failures += 1
        self.last_error, self.last_error_stage = message, stage
        log.warning("watcher pass failed (%s): %s", stage, message)
        if self.metrics is not None:
            self.metrics.errors.labels(stage=stage).inc()

    def _pass(self, now_us: int) -> PassReport:
        now_ms = now_us // US_PER_MS
        since_ms = now_ms - int(self.settings.watcher.follow_s * 1000)
        if self.metrics is not None:
            if not self._seeded:
                self.metrics.seed(self._known_types())
                self._seeded = True
            self.metrics.flush()
        self.leading = self._store(self.store.lead)
        if self.metrics is not None:
            self.metrics.leader.set(1 if self.leading else 0)
        if not self.leading:
            report = PassReport(leading=False)
        else:
            report = self._record_pass(now_us, now_ms, since_ms)
        report.in_progress = self._store(lambda: self.store.in_progress(since_ms))
        if self.metrics is not None:
            self.metrics.in_progress.update(report.in_progress)
        if self.leading:
            self._store(lambda: self.store.note_pass(now_ms))
            self.ready.set()
        elif self._store(self.store.last_pass_ms) is not None:
            self.ready.set()  # the leading replica has filled the store
        return report

    def _record_pass(self, now_us: int, now_ms: int, since_ms: int) -> PassReport:
        if not self._last_pass_read:
            last = self._store(self.store.last_pass_ms)
            self._last_pass_before_us = None if last is None else last * US_PER_MS
            self._last_pass_read = True
        start_us, end_us = self._window(now_us)
        with jaeger_budget():
            found = self._source(lambda: self.service.operations(start_us, end_us, now_us))
        records = [record_of(d, now_ms) for d in found]
        recorded = self._store(lambda: self.store.record(records, now_ms))
        # counted at once: the store holds them as final from now on, and a later step of
        # this pass that fails must not leave them uncounted for good
        counted = self._count(recorded)
        self._log(recorded)
        limit = self.settings.watcher.follow_limit
        keys = self._store(lambda: self.store.to_follow(now_ms, since_ms, limit))
        with jaeger_budget():
            judged, followed = self._follow(keys, now_us, now_ms)
        counted += self._count(followed)
        self._log(followed)
        report = PassReport(leading=True, seen=len(records), recorded=recorded + followed)
        report.followed = judged
        report.counted = counted
        return report

    def _window(self, now_us: int) -> tuple[int, int]:
        """What the operations list shows by default: everything of a file source, the
        last ``jaeger.lookback_s`` of Jaeger."""
        if is_file_source(getattr(self.service, "source", None)):
            return 0, ALL_END_US
        return now_us - int(self.settings.jaeger.lookback_s * US_PER_S), now_us + 1

    def _follow(
        self, keys: Sequence[str], now_us: int, now_ms: int
    ) -> tuple[int, list[Recorded]]:
        """Judge again the unsettled operations the window did not show: how many were
        judged (up to the pass's Jaeger budget for them) and what that recorded."""
        records: list[VerdictRecord] = []
        gone: list[str] = []
        superseded: list[str] = []  # keys whose traces now belong to another operation
        judged = 0
        for key in keys:
            try:
                diagnosis = self._source(lambda k=key: self.service.diagnose(k, now_us=now_us))
            except _Stage as exc:
                if isinstance(exc.__cause__, BudgetSpentError):
                    log.warning(
                        "watcher: followed %d of %d unsettled operations before its Jaeger "
                        "budget was spent (%s); the rest come first next pass",
                        judged, len(keys), exc.message,
                    )
                    break
                if not isinstance(exc.__cause__, NotFoundError):
                    raise
                gone.append(key)  # no longer in the source: its last verdict stays
            else:
                if diagnosis.key != key:  # a refused request a retry made an operation's
                    superseded.append(key)
                records.append(record_of(diagnosis, now_ms))
            judged += 1
        if gone:
            self._store(lambda: self.store.touch(gone, now_ms))
        if superseded:
            self._store(lambda: self.store.forget(superseded))
        return judged, self._store(lambda: self.store.record(records, now_ms))

    def _count(self, recorded: Iterable[Recorded]) -> int:
        """Feed the verdict metrics with operations that settled while the watcher runs, or
        while no watcher ran after the store had seen them in flight."""
        if self.metrics is None:
            return 0
        counted = 0
        last = self._last_pass_before_us
        for item in recorded:
            record = item.record
            ended_us = record.ended_at_ms * US_PER_MS
            if not item.newly_settled:
                continue
            # known unfinished to the store, and ended after its last pass: settled unseen
            unseen = item.previous is not None and last is not None and last <= ended_us
            if ended_us < self.count_from_us and not unseen:
                continue
            row = record.row
            self.metrics.settled(row.operation_type, row.verdict, row.duration_ms / 1000)
            counted += 1
        return counted

    @staticmethod
    def _log(recorded: Iterable[Recorded]) -> None:
        for item in recorded:
            if item.verdict_changed and item.previous is not None:
                row = item.record.row
                log.info(
                    "%s (%s): %s -> %s: %s",
                    item.record.key, row.operation_type, item.previous, row.verdict, row.summary,
                )

    # -- failure stages ---------------------------------------------------------------------

    @staticmethod
    def _source(call: Callable[[], T]) -> T:
        try:
            return call()
        except StoreUnavailableError as exc:
            raise _Stage("store", exc.message) from exc
        except OpdiagError as exc:
            raise _Stage("source", exc.message) from exc

    @staticmethod
    def _store(call: Callable[[], T]) -> T:
        try:
            return call()
        except StoreUnavailableError as exc:
            raise _Stage("store", exc.message) from exc
