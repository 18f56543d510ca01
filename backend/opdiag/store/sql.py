"""The verdict store over SQL: one implementation, SQLite or PostgreSQL behind a connector.

Both databases run the same statements (upserts with ``ON CONFLICT ... DO UPDATE``, integer
bucket arithmetic, ``GROUP BY`` ordinals); a ``Connector`` hands out connections, knows its
driver's errors and, on PostgreSQL, the advisory locks. Every driver error becomes a
``StoreUnavailableError`` naming the store (never its password), so a request gets a 503 and
the watcher a logged, counted failure.

A settled operation's verdict is final (``VerdictRecord.settled``) for the judge that gave it
(``store.judge``: this opdiag's code, packs and settings): once the store holds it, later
recordings of the same key by the same judge are ignored (the watcher diagnoses it once; a
list that would judge it again against other baselines does not rewrite history). Another
judge (an upgrade) records it again, its history entry only when the verdict changed, and it
is not counted as settled a second time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from opdiag.api.schemas import OperationRow
from opdiag.errors import StoreUnavailableError
from opdiag.globs import is_wildcard
from opdiag.store.records import (
    HistoryEntry,
    InProgress,
    Recorded,
    VerdictRecord,
    state_of,
)
from opdiag.store.schema import LATEST_VERSION, MIGRATIONS, MIGRATIONS_TABLE, Dialect
from opdiag.timeutil import US_PER_MS

_ROW_COLUMNS = (
    "key",
    "time",
    "trace_id",
    "operation_type",
    "status",
    "verdict",
    "severity",
    "summary",
    "duration_ms",
    "service",
    "root_cause",
    "bottleneck",
    "finished",
    "diagnosis_url",
    "jaeger_url",
)
# The row's ``operation_id`` is the store's key, its ``time`` the start.
_SELECT_ROW = ", ".join(
    {"key": "o.key", "time": "o.started_at_ms"}.get(c, f"o.{c}") for c in _ROW_COLUMNS
)
_ROW_FIELDS = tuple("operation_id" if c == "key" else c for c in _ROW_COLUMNS)
_UPSERT_COLUMNS = (
    "key",
    "operation_type",
    "status",
    "verdict",
    "severity",
    "summary",
    "started_at_ms",
    "ended_at_ms",
    "duration_ms",
    "finished",
    "settled",
    "trace_id",
    "trace_ids",
    "service",
    "root_cause",
    "bottleneck",
    "diagnosis_url",
    "jaeger_url",
    "first_seen_ms",
    "judged_at_ms",
    "settled_seen_ms",
    "judge",
)
_KEEP_ON_UPDATE = frozenset({"key", "first_seen_ms"})
_ON_UPDATE = {  # when it first settled stays, whoever judges it again
    "settled_seen_ms": "COALESCE(opdiag_operations.settled_seen_ms, excluded.settled_seen_ms)"
}
_UPSERT = (
    f"INSERT INTO opdiag_operations ({', '.join(_UPSERT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _UPSERT_COLUMNS)}) ON CONFLICT (key) DO UPDATE SET "
    + ", ".join(
        f"{c} = {_ON_UPDATE.get(c, f'excluded.{c}')}"
        for c in _UPSERT_COLUMNS
        if c not in _KEEP_ON_UPDATE
    )
)
_HISTORY_COLUMNS = (
    "key",
    "recorded_at_ms",
    "operation_type",
    "status",
    "verdict",
    "finished",
    "duration_ms",
    "summary",
    "trace_ids",
    "diagnosis_url",
)
_CHUNK = 500


class Connector(Protocol):
    """Connections of one database."""

    dialect: Dialect
    errors: tuple[type[BaseException], ...]

    def read(self) -> AbstractContextManager[Any]:
        """A connection for statements that only read (autocommit)."""
        ...

    def write(self) -> AbstractContextManager[Any]:
        """A connection inside a transaction, committed when the block ends without error."""
        ...

    def lock_migrations(self, conn: Any) -> None:
        """Serialise migrations of several processes (inside the migration's transaction)."""
        ...

    def lead(self) -> bool:
        """Whether this process's watcher is the one that writes (kept until it stops)."""
        ...

    def reset(self) -> None:
        """Forget this thread's connection after a failure (the next call reconnects)."""
        ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(count: int) -> str:
    return ", ".join("?" for _ in range(count))


def _ceil_ms(us: int) -> int:
    return -(-us // US_PER_MS)


class SqlStore:
    """The verdict store; thread-safe (the connector serialises or separates connections)."""

    def __init__(self, connector: Connector, judge: str = "") -> None:
        self.connector = connector
        self.dialect = connector.dialect
        self.judge = judge  # who judges what this store records (store.judge)

    # -- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        try:
            yield
        except StoreUnavailableError:
            raise
        except self.connector.errors as exc:
            self.connector.reset()
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreUnavailableError(
                f"verdict store {self.describe()}: cannot {doing}: {detail}"
            ) from None

    def _run(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        return conn.execute(self.dialect.sql(sql), tuple(params))

    def _many(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            conn.cursor().executemany(self.dialect.sql(sql), [tuple(r) for r in rows])

    def describe(self) -> str:
        return self.connector.describe()

    def close(self) -> None:
        self.connector.close()

    # -- schema ---------------------------------------------------------------------------

    def schema_version(self) -> int:
        """The highest migration applied (0 for a new database)."""
        with self._guard("read its schema version"), self.connector.write() as conn:
            self._run(conn, self.dialect.ddl(MIGRATIONS_TABLE))
            (found,) = self._run(
                conn, "SELECT COALESCE(MAX(version), 0) FROM opdiag_schema_migrations"
            ).fetchone()
        return int(found)

    def migrate(self, target: int = LATEST_VERSION, *, now_ms: int = 0) -> list[int]:
        """Apply the missing migrations up to ``target``, each in its own transaction;
        returns the versions applied. A database migrated by a newer opdiag is refused."""
        applied: list[int] = []
        for migration in MIGRATIONS:
            if migration.version > target:
                break
            doing = f"apply migration {migration.version}"
            with self._guard(doing), self.connector.write() as conn:
                self.connector.lock_migrations(conn)
                self._run(conn, self.dialect.ddl(MIGRATIONS_TABLE))
                done = {
                    int(v)
                    for (v,) in self._run(
                        conn, "SELECT version FROM opdiag_schema_migrations"
                    ).fetchall()
                }
                if done and max(done) > LATEST_VERSION:
                    raise StoreUnavailableError(
                        f"verdict store {self.describe()} has schema version {max(done)}, "
                        f"newer than this opdiag's {LATEST_VERSION}: upgrade opdiag"
                    )
                if migration.version in done:
                    continue
                for statement in migration.statements:
                    self._run(conn, self.dialect.ddl(statement))
                self._run(
                    conn,
                    "INSERT INTO opdiag_schema_migrations (version, name, applied_at_ms) "
                    "VALUES (?, ?, ?)",
                    (migration.version, migration.name, now_ms),
                )
                applied.append(migration.version)
        return applied

    # -- writing --------------------------------------------------------------------------

    def lead(self) -> bool:
        with self._guard("take the watcher lock"):
            return self.connector.lead()

    def record(self, records: Sequence[VerdictRecord], now_ms: int) -> list[Recorded]:
        """Upsert ``records`` (operations already settled in the store by this judge are left
        alone), append a history entry for each new verdict; what changed, per record
        written."""
        if not records:
            return []
        unique = list({r.key: r for r in records}.values())
        with self._guard("record verdicts"), self.connector.write() as conn:
            held: dict[str, tuple[str, str, bool]] = {}
            judges: dict[str, str] = {}
            for chunk in _chunks([r.key for r in unique]):
                for key, verdict, status, settled, judge in self._run(
                    conn,
                    "SELECT key, verdict, status, settled, judge FROM opdiag_operations "
                    f"WHERE key IN ({_marks(len(chunk))})",
                    chunk,
                ).fetchall():
                    held[key] = (verdict, status, bool(settled))
                    judges[key] = judge
            out: list[Recorded] = []
            for record in unique:
                before = held.get(record.key)
                was_settled = before is not None and before[2]
                if was_settled and judges[record.key] == self.judge:
                    continue  # a settled verdict is final for its judge
                now_state = (record.row.verdict, record.row.status, record.settled)
                out.append(
                    Recorded(
                        record=record,
                        previous=None if before is None else before[0],
                        verdict_changed=before != now_state,
                        newly_settled=record.settled and not was_settled,
                    )
                )
            written = [r.record for r in out]
            self._many(conn, _UPSERT, [self._operation_params(r, now_ms) for r in written])
            for chunk in _chunks([r.key for r in written]):
                self._run(
                    conn,
                    f"DELETE FROM opdiag_operation_services WHERE key IN ({_marks(len(chunk))})",
                    chunk,
                )
            self._many(
                conn,
                "INSERT INTO opdiag_operation_services (key, service) VALUES (?, ?)",
                [(r.key, s) for r in written for s in r.services],
            )
            self._many(
                conn,
                f"INSERT INTO opdiag_verdicts ({', '.join(_HISTORY_COLUMNS)}) "
                f"VALUES ({_marks(len(_HISTORY_COLUMNS))})",
                [self._history_params(r.record, now_ms) for r in out if r.verdict_changed],
            )
        return out

    def _operation_params(self, record: VerdictRecord, now_ms: int) -> tuple[Any, ...]:
        row = record.row
        values = {
            "key": record.key,
            "operation_type": row.operation_type,
            "status": row.status,
            "verdict": row.verdict,
            "severity": row.severity,
            "summary": row.summary,
            "started_at_ms": row.time,
            "ended_at_ms": record.ended_at_ms,
            "duration_ms": row.duration_ms,
            "finished": row.finished,
            "settled": record.settled,
            "trace_id": row.trace_id,
            "trace_ids": ",".join(record.trace_ids),
            "service": row.service,
            "root_cause": row.root_cause,
            "bottleneck": row.bottleneck,
            "diagnosis_url": row.diagnosis_url,
            "jaeger_url": row.jaeger_url,
            "first_seen_ms": now_ms,
            "judged_at_ms": now_ms,
            "settled_seen_ms": now_ms if record.settled else None,
            "judge": self.judge,
        }
        return tuple(values[c] for c in _UPSERT_COLUMNS)

    @staticmethod
    def _history_params(record: VerdictRecord, now_ms: int) -> tuple[Any, ...]:
        row = record.row
        return (
            record.key,
            now_ms,
            row.operation_type,
            row.status,
            row.verdict,
            row.finished,
            row.duration_ms,
            row.summary,
            ",".join(record.trace_ids),
            row.diagnosis_url,
        )

    def touch(self, keys: Sequence[str], now_ms: int) -> None:
        """Mark ``keys`` judged at ``now_ms`` without a new verdict (the source no longer
        holds them), so the follow-up turns to other operations first."""
        with self._guard("mark operations judged"), self.connector.write() as conn:
            for chunk in _chunks(list(keys)):
                self._run(
                    conn,
                    f"UPDATE opdiag_operations SET judged_at_ms = ? "
                    f"WHERE key IN ({_marks(len(chunk))})",
                    (now_ms, *chunk),
                )

    def forget(self, keys: Sequence[str]) -> list[str]:
        """Drop the unsettled operations ``keys`` with their history: keys that no longer
        name an operation of their own (a refused request's trace that a successful retry
        made part of an operation, recorded under the operation's id). Settled ones stay.
        Answers the keys dropped."""
        dropped: list[str] = []
        with self._guard("forget operations"), self.connector.write() as conn:
            for chunk in _chunks(list(keys)):
                found = self._run(
                    conn,
                    "SELECT key, settled FROM opdiag_operations "
                    f"WHERE key IN ({_marks(len(chunk))})",
                    chunk,
                ).fetchall()
                gone = [key for key, settled in found if not settled]
                if not gone:
                    continue
                for table in ("opdiag_operation_services", "opdiag_verdicts", "opdiag_operations"):
                    self._run(
                        conn, f"DELETE FROM {table} WHERE key IN ({_marks(len(gone))})", gone
                    )
                dropped += gone
        return dropped

    def note_pass(self, now_ms: int) -> None:
        """A watcher pass finished at ``now_ms`` (read by standby replicas and tests)."""
        with self._guard("note a watcher pass"), self.connector.write() as conn:
            self._run(
                conn,
                "INSERT INTO opdiag_watcher (id, last_pass_ms, passes) VALUES (1, ?, 1) "
                "ON CONFLICT (id) DO UPDATE SET last_pass_ms = excluded.last_pass_ms, "
                "passes = opdiag_watcher.passes + 1",
                (now_ms,),
            )

    # -- reading --------------------------------------------------------------------------

    def _filters(
        self,
        types: Sequence[str] | None,
        verdicts: Sequence[str] | None,
        services: Sequence[str] | None,
    ) -> tuple[str, list[Any]]:
        sql, params = "", []
        if types:
            sql += f" AND o.operation_type IN ({_marks(len(types))})"
            params += list(types)
        if verdicts:
            sql += f" AND o.verdict IN ({_marks(len(verdicts))})"
            params += list(verdicts)
        if services:
            # a value with * or ? is a pattern (a worker's name changes at every start)
            exact = [s for s in services if not is_wildcard(s)]
            patterns = [s for s in services if is_wildcard(s)]
            tests = [f"s.service IN ({_marks(len(exact))})"] if exact else []
            tests += [f"s.service {self.dialect.glob} ?" for _ in patterns]
            sql += (
                " AND EXISTS (SELECT 1 FROM opdiag_operation_services s WHERE s.key = o.key"
                f" AND ({' OR '.join(tests)}))"
            )
            params += [*exact, *(self.dialect.glob_param(p) for p in patterns)]
        return sql, params

    def operations(
        self,
        start_us: int,
        end_us: int,
        *,
        operation_types: Sequence[str] | None = None,
        verdicts: Sequence[str] | None = None,
        services: Sequence[str] | None = None,
        limit: int | None = None,
        settled: bool | None = None,
    ) -> list[OperationRow]:
        """Operations active in ``[start_us, end_us)`` (started before its end, still going
        or ended after its start), newest first: the list's rows as the traces gave them.
        ``settled``: only those whose verdict is final (True) or not yet (False)."""
        extra, params = self._filters(operation_types, verdicts, services)
        if settled is not None:
            extra += " AND o.settled = ?"
            params.append(settled)
        sql = (
            f"SELECT {_SELECT_ROW} FROM opdiag_operations o "
            f"WHERE o.started_at_ms < ? AND o.ended_at_ms >= ?{extra} "
            "ORDER BY o.started_at_ms DESC, o.key DESC"
        )
        values: list[Any] = [_ceil_ms(end_us), start_us // US_PER_MS, *params]
        if limit is not None:
            sql += " LIMIT ?"
            values.append(limit)
        with self._guard("list operations"), self.connector.read() as conn:
            rows = self._run(conn, sql, values).fetchall()
        out = []
        for row in rows:
            fields = dict(zip(_ROW_FIELDS, row, strict=True))
            fields["finished"] = bool(fields["finished"])
            out.append(OperationRow(**fields))
        return out

    def verdict_counts(
        self,
        start_us: int,
        end_us: int,
        bucket_us: int,
        *,
        operation_types: Sequence[str] | None = None,
        verdicts: Sequence[str] | None = None,
        services: Sequence[str] | None = None,
        settled: bool | None = None,
    ) -> dict[tuple[int, str], int]:
        """Operations started in ``[start_us, end_us)`` per (epoch-aligned bucket start in
        µs, verdict), counted by the database (``settled``: as for ``operations``)."""
        extra, params = self._filters(operation_types, verdicts, services)
        if settled is not None:
            extra += " AND o.settled = ?"
            params.append(settled)
        sql = (
            "SELECT o.started_at_ms * 1000 - (o.started_at_ms * 1000) % ? AS bucket, "
            "o.verdict, COUNT(*) FROM opdiag_operations o "
            f"WHERE o.started_at_ms >= ? AND o.started_at_ms < ?{extra} GROUP BY 1, 2"
        )
        values = [bucket_us, _ceil_ms(start_us), _ceil_ms(end_us), *params]
        with self._guard("count verdicts"), self.connector.read() as conn:
            rows = self._run(conn, sql, values).fetchall()
        return {(int(bucket), str(verdict)): int(count) for bucket, verdict, count in rows}

    def distinct(self, what: str, start_us: int, end_us: int, limit: int) -> list[str]:
        """Values of ``operation_types``, ``services`` or ``operation_ids`` in the range
        (types and services sorted, ids newest first)."""
        window = "o.started_at_ms < ? AND o.ended_at_ms >= ?"
        sql = {
            "operation_types": f"SELECT DISTINCT o.operation_type FROM opdiag_operations o "
            f"WHERE {window} ORDER BY 1 LIMIT ?",
            "services": "SELECT DISTINCT s.service FROM opdiag_operation_services s "
            f"JOIN opdiag_operations o ON o.key = s.key WHERE {window} ORDER BY 1 LIMIT ?",
            "operation_ids": f"SELECT o.key FROM opdiag_operations o WHERE {window} "
            "ORDER BY o.started_at_ms DESC, o.key DESC LIMIT ?",
        }[what]
        with self._guard(f"list {what}"), self.connector.read() as conn:
            rows = self._run(conn, sql, (_ceil_ms(end_us), start_us // US_PER_MS, limit))
            return [str(value) for (value,) in rows.fetchall()]

    def in_progress(self, since_ms: int) -> list[InProgress]:
        """Unsettled operations started since ``since_ms``, per type and state."""
        with self._guard("count operations in progress"), self.connector.read() as conn:
            rows = self._run(
                conn,
                "SELECT operation_type, verdict, COUNT(*) FROM opdiag_operations "
                "WHERE settled = ? AND started_at_ms >= ? GROUP BY 1, 2",
                (False, since_ms),
            ).fetchall()
        counts: dict[tuple[str, str], int] = {}
        for op_type, verdict, count in rows:
            key = (str(op_type), state_of(str(verdict)))
            counts[key] = counts.get(key, 0) + int(count)
        return [InProgress(t, s, c) for (t, s), c in sorted(counts.items())]

    def to_follow(self, judged_before_ms: int, since_ms: int, limit: int) -> list[str]:
        """Unsettled operations started since ``since_ms`` that no pass judged since
        ``judged_before_ms``, least recently judged first."""
        if limit <= 0:
            return []
        with self._guard("list unsettled operations"), self.connector.read() as conn:
            rows = self._run(
                conn,
                "SELECT key FROM opdiag_operations WHERE settled = ? AND judged_at_ms < ? "
                "AND started_at_ms >= ? ORDER BY judged_at_ms, key LIMIT ?",
                (False, judged_before_ms, since_ms, limit),
            ).fetchall()
        return [str(key) for (key,) in rows]

    def history(self, key: str) -> list[HistoryEntry]:
        """Every verdict ``key`` had, oldest first."""
        with self._guard("read a verdict history"), self.connector.read() as conn:
            rows = self._run(
                conn,
                f"SELECT {', '.join(_HISTORY_COLUMNS)} FROM opdiag_verdicts WHERE key = ? "
                "ORDER BY recorded_at_ms, id",
                (key,),
            ).fetchall()
        return [
            HistoryEntry(
                key=str(k),
                recorded_at_ms=int(at),
                operation_type=str(op_type),
                status=str(status),
                verdict=str(verdict),
                finished=bool(finished),
                duration_ms=float(duration),
                summary=str(summary),
                trace_ids=tuple(t for t in str(traces).split(",") if t),
                diagnosis_url=str(url),
            )
            for k, at, op_type, status, verdict, finished, duration, summary, traces, url in rows
        ]

    def last_pass_ms(self) -> int | None:
        """When a watcher last finished a pass (None: never)."""
        with self._guard("read the watcher's last pass"), self.connector.read() as conn:
            row = self._run(conn, "SELECT last_pass_ms FROM opdiag_watcher WHERE id = 1").fetchone()
        return None if row is None else int(row[0])

    def has_operations(self) -> bool:
        with self._guard("read operations"), self.connector.read() as conn:
            return self._run(conn, "SELECT 1 FROM opdiag_operations LIMIT 1").fetchone() is not None
