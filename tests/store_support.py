"""Building blocks of the verdict-store tests: stores of both kinds and hand-made records."""

from __future__ import annotations

from pathlib import Path

from opdiag.api.schemas import OperationRow
from opdiag.diagnosis.result import Diagnosis, Links, verdict_severity
from opdiag.settings import Settings
from opdiag.store.factory import open_store
from opdiag.store.records import VerdictRecord
from opdiag.store.sql import SqlStore
from pg_support import PostgresServer

BASE_MS = 1_790_000_000_000  # 2026-09-21, any fixed time


def row(
    key: str,
    verdict: str = "healthy",
    *,
    op_type: str = "training",
    status: str = "completed",
    finished: bool = True,
    start_ms: int = BASE_MS,
    duration_ms: float = 60_000.0,
    summary: str | None = None,
    severity: str | None = None,
) -> OperationRow:
    return OperationRow(
        time=start_ms,
        operation_id=key,
        trace_id="a" * 32,
        operation_type=op_type,
        status=status,
        verdict=verdict,
        severity=severity if severity is not None else verdict_severity(verdict),
        summary=summary if summary is not None else f"{verdict} summary",
        duration_ms=duration_ms,
        service="ktrdr-training-worker-1",
        root_cause="",
        bottleneck="",
        finished=finished,
        diagnosis_url=f"http://localhost:8080/operations/{key}",
        jaeger_url="",
    )


def record(
    key: str,
    verdict: str = "healthy",
    *,
    settled: bool | None = None,
    services: tuple[str, ...] = ("ktrdr-api", "ktrdr-training-worker-1"),
    **kwargs: object,
) -> VerdictRecord:
    r = row(key, verdict, **kwargs)  # type: ignore[arg-type]
    return VerdictRecord(
        row=r,
        trace_ids=("a" * 32, "b" * 32),
        services=services,
        ended_at_ms=r.time + int(r.duration_ms),
        settled=r.finished if settled is None else settled,
    )


def diagnosis(
    key: str,
    verdict: str,
    *,
    finished: bool,
    status: str = "running",
    op_type: str = "training",
    start_ms: int = BASE_MS,
    duration_ms: float = 60_000.0,
    summary: str = "",
) -> Diagnosis:
    """A diagnosis as the service answers it (links filled)."""
    return Diagnosis(
        operation_id=key,
        trace_ids=["c" * 32],
        verdict=verdict,
        summary=summary or f"{verdict}: {key}",
        operation_type=op_type,
        status=status,
        services=["ktrdr-api", "ktrdr-training-worker-1"],
        started_at_ms=start_ms,
        ended_at_ms=start_ms + int(duration_ms),
        duration_ms=duration_ms,
        finished=finished,
        links=Links(diagnosis_page=f"http://localhost:8080/operations/{key}"),
    )


class Backends:
    """Where fresh stores come from: an SQLite file in a temporary directory, or a new
    database on the module's PostgreSQL server."""

    def __init__(self, kind: str, tmp: Path, server: PostgresServer | None) -> None:
        self.kind = kind
        self.tmp = tmp
        self.server = server
        self._files = 0

    def location(self) -> str:
        if self.kind == "postgresql":
            assert self.server is not None
            return self.server.create_database()
        self._files += 1
        return str(self.tmp / f"store-{self._files}" / "verdicts.sqlite3")

    def settings(self, location: str, **extra: object) -> Settings:
        key = "url" if self.kind == "postgresql" else "path"
        return Settings.model_validate({"store": {key: location}, **extra})

    def open(self, location: str | None = None, **extra: object) -> SqlStore:
        return open_store(self.settings(location or self.location(), **extra))
