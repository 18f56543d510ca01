"""What the verdict store keeps of a diagnosis, and what recording it changed.

A record is the operations table's row (``OperationRow``, so the list served from the store
has exactly the columns, types and links of the list served from the traces) plus what the
filters and the history need: every trace id, every service, and the end of the operation.
"""

from __future__ import annotations

from dataclasses import dataclass

from opdiag.api.schemas import OperationRow
from opdiag.diagnosis.result import REQUEST_SETTLE_MS, Diagnosis
from opdiag.render.rows import operation_row

# Verdicts of an unfinished operation that the in-progress gauge names; every other
# unfinished operation is "running".
STATE_OF_VERDICT: dict[str, str] = {"stuck": "stuck", "worker_lost": "lost"}
IN_PROGRESS_STATES: tuple[str, ...] = ("running", "stuck", "lost")


def state_of(verdict: str) -> str:
    """The in-progress state an unfinished operation with ``verdict`` is in."""
    return STATE_OF_VERDICT.get(verdict, "running")


@dataclass(frozen=True, slots=True)
class VerdictRecord:
    """One operation as judged at one moment. ``settled``: its verdict can no longer change
    (a terminal transition was seen, or it is a dispatch refused before any operation id
    existed and nothing happened in it since ``REQUEST_SETTLE_MS``: the CLI did not retry
    it into an operation)."""

    row: OperationRow
    trace_ids: tuple[str, ...]
    services: tuple[str, ...]
    ended_at_ms: int
    settled: bool

    @property
    def key(self) -> str:
        return self.row.operation_id


# A request refused before any operation id existed is final once nothing happened in it for
# REQUEST_SETTLE_MS (diagnosis.result): KTRDR's CLI retries a refused start within seconds
# (run1: 1.9, 2.6 and 5 s apart), a retry that succeeds turns the trace into an operation's,
# and the backend's spans come in batches after the command's.


def record_of(diagnosis: Diagnosis, now_ms: int | None = None) -> VerdictRecord:
    """The record of a diagnosis whose links are filled (the service's answers are), as
    judged at ``now_ms`` (None: a request without an operation id is final at once)."""
    row = operation_row(diagnosis)
    started = row.time
    ended = max(int(diagnosis.ended_at_ms or 0), started + int(row.duration_ms))
    request_over = now_ms is None or ended + REQUEST_SETTLE_MS <= now_ms
    return VerdictRecord(
        row=row,
        trace_ids=tuple(diagnosis.trace_ids),
        services=tuple(sorted(set(diagnosis.services))),
        ended_at_ms=ended,
        settled=request_over
        if diagnosis.is_request  # finished, but its backend's spans may still come
        else diagnosis.finished or (diagnosis.operation_id is None and request_over),
    )


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording one record changed: ``previous`` is the verdict the store held (None
    for an operation it did not know); ``verdict_changed`` means a new history entry (a new
    operation, or another verdict, status or settled flag); ``newly_settled`` is true for
    exactly one recording of each operation, the one that saw its final verdict."""

    record: VerdictRecord
    previous: str | None
    verdict_changed: bool
    newly_settled: bool


@dataclass(frozen=True, slots=True)
class InProgress:
    """Unfinished operations of one type in one state (for the in-progress gauge)."""

    operation_type: str
    state: str
    count: int


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One verdict an operation had, as the history table keeps it."""

    key: str
    recorded_at_ms: int
    operation_type: str
    status: str
    verdict: str
    finished: bool
    duration_ms: float
    summary: str
    trace_ids: tuple[str, ...]
    diagnosis_url: str
