"""The diagnosis service with the operations list, the verdict counts and the variables read
from the verdict store: fast (one indexed query instead of a window search and a diagnosis
per operation) and beyond Jaeger's retention. Everything about one operation (its diagnosis,
flow, findings, comparison) still reads the traces: attribute access falls through to the
wrapped ``DiagnosisService``.

Until the store holds anything (a new store, before the watcher's first pass) the list,
counts and variables are the service's, read from the traces, so a fresh start never shows an
empty table.

A stored verdict of an operation still in flight can be a watcher interval old, and "running"
becomes "stuck" or "worker lost" with time alone. So the list judges those rows again from the
traces (the service recomputes unfinished work anyway; at most ``max_fresh`` of them, the
newest) and shows (and counts) the fresh verdict; settled rows come straight from the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from opdiag.api.schemas import OperationRow, VariableRow, VerdictCountRow
from opdiag.buckets import bucket_of, check_buckets, count_rows
from opdiag.errors import InputError, NotFoundError, SourceUnavailableError
from opdiag.render.rows import variable_row
from opdiag.store.sql import SqlStore
from opdiag.timeutil import US_PER_MS


def _values(values: Iterable[str] | None) -> list[str] | None:
    """A filter's values, empty ones dropped; None (no filter) when nothing is left."""
    if values is None:
        return None
    kept = sorted({v for v in values if v})
    return kept or None


class StoredReads:
    """See the module docstring."""

    def __init__(
        self,
        service: Any,
        store: SqlStore,
        ready: Callable[[], bool],
        max_values: int,
        max_fresh: int = 50,
    ) -> None:
        self.service = service
        self.store = store
        self._ready = ready
        self._max_values = max_values
        self._max_fresh = max_fresh

    def __getattr__(self, name: str) -> Any:
        return getattr(self.service, name)

    def from_store(self) -> bool:
        """Whether the list, counts and variables come from the store now."""
        return self._ready()

    def operations(
        self,
        start_us: int,
        end_us: int,
        now_us: int | None = None,
        *,
        operation_types: Iterable[str] | None = None,
        verdicts: Iterable[str] | None = None,
        services: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[Any]:
        """Operations active in the range, newest first: ``OperationRow``s from the store
        (``Diagnosis`` objects from the service while the store is empty, or judged at a
        given ``now``: the store holds verdicts as its watcher judged them)."""
        if now_us is not None or not self._ready():
            return list(
                self.service.operations(
                    start_us,
                    end_us,
                    now_us,
                    operation_types=operation_types,
                    verdicts=verdicts,
                    services=services,
                    limit=limit,
                )
            )
        if end_us < start_us:
            raise InputError("'to' is before 'from'", field="to")
        if limit is not None and limit < 0:
            raise InputError("limit must not be negative", field="limit")
        types, wanted, services_ = (
            _values(operation_types),
            _values(verdicts),
            _values(services),
        )
        rows: list[OperationRow] = self.store.operations(
            start_us,
            end_us,
            operation_types=types,
            verdicts=wanted,
            services=services_,
            limit=limit,
        )
        open_rows = self.store.operations(
            start_us,
            end_us,
            operation_types=types,
            services=services_,
            settled=False,
            limit=self._max_fresh,
        )
        fresh = self._judged_again(open_rows, now_us)
        if not fresh:
            return rows
        merged = [r for r in rows if r.operation_id not in fresh]
        merged += [r for r in fresh.values() if wanted is None or r.verdict in wanted]
        merged.sort(key=lambda r: (r.time, r.operation_id), reverse=True)
        return merged if limit is None else merged[:limit]

    def _judged_again(
        self, rows: Iterable[OperationRow], now_us: int | None
    ) -> dict[str, OperationRow]:
        """Fresh rows of unsettled operations, by id; a row whose traces cannot be read now
        (gone, or the source down) keeps its stored verdict."""
        from opdiag.render.rows import operation_row

        out: dict[str, OperationRow] = {}
        for row in rows:
            try:
                d = self.service.diagnose(row.operation_id, now_us)
            except (NotFoundError, SourceUnavailableError):
                continue
            out[row.operation_id] = operation_row(d, self.service.settings)
        return out

    def verdict_counts(
        self,
        start_us: int,
        end_us: int,
        bucket_us: int,
        now_us: int | None = None,
        *,
        operation_types: Iterable[str] | None = None,
        verdicts: Iterable[str] | None = None,
        services: Iterable[str] | None = None,
    ) -> list[VerdictCountRow]:
        """Operations started per bucket and verdict, counted by the store (by the service
        at a given ``now``)."""
        if now_us is not None or not self._ready():
            return list(
                self.service.verdict_counts(
                    start_us,
                    end_us,
                    bucket_us,
                    now_us,
                    operation_types=operation_types,
                    verdicts=verdicts,
                    services=services,
                )
            )
        check_buckets(start_us, end_us, bucket_us)
        types, wanted, services_ = (
            _values(operation_types),
            _values(verdicts),
            _values(services),
        )
        # every operation at its stored verdict (all verdicts: judged again, an unsettled one
        # may move into or out of the ones asked for), the newest unsettled ones (as many
        # as are judged again per request) at their verdict now
        counts = self.store.verdict_counts(
            start_us, end_us, bucket_us, operation_types=types, services=services_
        )
        open_rows = self.store.operations(
            start_us,
            end_us,
            operation_types=types,
            services=services_,
            settled=False,
            limit=self._max_fresh,
        )
        fresh = self._judged_again(open_rows, now_us)
        for stored in open_rows:
            row = fresh.get(stored.operation_id)
            if row is None:
                continue
            for was, delta in ((stored, -1), (row, 1)):
                started_us = was.time * US_PER_MS
                if start_us <= started_us < end_us:
                    key = (bucket_of(started_us, bucket_us), was.verdict)
                    counts[key] = counts.get(key, 0) + delta
        kept = {k: n for k, n in counts.items() if n > 0 and (not wanted or k[1] in wanted)}
        return count_rows(kept, start_us, end_us, bucket_us)

    def variable_values(self, name: str, start_us: int, end_us: int) -> list[VariableRow]:
        """Types, services and ids from the store; verdicts (a constant) and unknown names
        (an error) as the service answers them."""
        if name == "verdicts" or name not in ("operation_types", "services", "operation_ids"):
            return list(self.service.variable_values(name, start_us, end_us))
        if not self._ready():
            return list(self.service.variable_values(name, start_us, end_us))
        found = self.store.distinct(name, start_us, end_us, self._max_values)
        return [variable_row(v) for v in found]
