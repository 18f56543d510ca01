"""The diagnosis service with the operations list, the verdict counts and the variables read
from the verdict store: fast (one indexed query instead of a window search and a diagnosis
per operation) and beyond Jaeger's retention. Everything about one operation (its diagnosis,
flow, findings, comparison) still reads the traces: attribute access falls through to the
wrapped ``DiagnosisService``.

Until the store holds anything (a new store, before the watcher's first pass) the list,
counts and variables are the service's, read from the traces, so a fresh start never shows an
empty table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from opdiag.api.schemas import OperationRow, VariableRow, VerdictCountRow
from opdiag.buckets import check_buckets, count_rows
from opdiag.errors import InputError
from opdiag.render.rows import variable_row
from opdiag.store.sql import SqlStore


def _values(values: Iterable[str] | None) -> list[str] | None:
    """A filter's values, empty ones dropped; None (no filter) when nothing is left."""
    if values is None:
        return None
    kept = sorted({v for v in values if v})
    return kept or None


class StoredReads:
    """See the module docstring."""

    def __init__(
        self, service: Any, store: SqlStore, ready: Callable[[], bool], max_values: int
    ) -> None:
        self.service = service
        self.store = store
        self._ready = ready
        self._max_values = max_values

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
        (``Diagnosis`` objects from the service while the store is empty)."""
        if not self._ready():
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
        rows: list[OperationRow] = self.store.operations(
            start_us,
            end_us,
            operation_types=_values(operation_types),
            verdicts=_values(verdicts),
            services=_values(services),
            limit=limit,
        )
        return rows

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
        """Operations started per bucket and verdict, counted by the store."""
        if not self._ready():
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
        counts = self.store.verdict_counts(
            start_us,
            end_us,
            bucket_us,
            operation_types=_values(operation_types),
            verdicts=_values(verdicts),
            services=_values(services),
        )
        return count_rows(counts, start_us, end_us, bucket_us)

    def variable_values(self, name: str, start_us: int, end_us: int) -> list[VariableRow]:
        """Types, services and ids from the store; verdicts (a constant) and unknown names
        (an error) as the service answers them."""
        if name == "verdicts" or name not in ("operation_types", "services", "operation_ids"):
            return list(self.service.variable_values(name, start_us, end_us))
        if not self._ready():
            return list(self.service.variable_values(name, start_us, end_us))
        found = self.store.distinct(name, start_us, end_us, self._max_values)
        return [variable_row(v) for v in found]
