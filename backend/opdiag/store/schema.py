"""The verdict store's tables, as versioned migrations for SQLite and PostgreSQL.

Each migration has a version, a name and DDL written once with the few type names that
differ between the two databases as placeholders. ``opdiag_schema_migrations`` records what
was applied; the store applies the missing ones, in order, each in its own transaction, when
it opens (on PostgreSQL under an advisory lock, so replicas starting together migrate once).
A migration is never edited after release: a change to the schema is a new version.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the two databases in the SQL the store writes."""

    name: str
    bigint: str
    boolean: str
    double: str
    serial_pk: str
    # DB-API parameter marker: the store writes "?" and PostgreSQL's driver wants "%s".
    marker: str
    # The case-sensitive operator that matches a shell-style pattern (``*``, ``?``): SQLite's
    # GLOB takes it as it is, PostgreSQL's LIKE once translated (``glob_param``).
    glob: str = "GLOB"

    def sql(self, text: str) -> str:
        """``text`` with "?" markers in this driver's style."""
        if self.marker == "?":
            return text
        return text.replace("%", "%%").replace("?", self.marker)

    def glob_param(self, pattern: str) -> str:
        """``pattern`` (``*`` any run, ``?`` one character) as this dialect's ``glob``
        operator reads it; LIKE's own wildcards in it are taken literally."""
        if self.glob == "GLOB":
            return pattern.replace("[", "[[]")  # a bracket is itself, as in LIKE
        escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return escaped.replace("*", "%").replace("?", "_")

    def ddl(self, text: str) -> str:
        return text.format(
            bigint=self.bigint, boolean=self.boolean, double=self.double, serial_pk=self.serial_pk
        )


SQLITE = Dialect("sqlite", "INTEGER", "INTEGER", "REAL", "INTEGER PRIMARY KEY AUTOINCREMENT", "?")
POSTGRESQL = Dialect(
    "postgresql", "BIGINT", "BOOLEAN", "DOUBLE PRECISION", "BIGSERIAL PRIMARY KEY", "%s", "LIKE"
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS opdiag_schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at_ms {bigint} NOT NULL
)"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "operations, their services and their verdict history",
        (
            # One row per operation: its latest verdict, exactly the columns of the
            # operations list (OperationRow), plus the end, every trace id, whether the
            # verdict is final (settled) and bookkeeping.
            """
            CREATE TABLE opdiag_operations (
                key TEXT PRIMARY KEY,
                operation_type TEXT NOT NULL,
                status TEXT NOT NULL,
                verdict TEXT NOT NULL,
                summary TEXT NOT NULL,
                started_at_ms {bigint} NOT NULL,
                ended_at_ms {bigint} NOT NULL,
                duration_ms {double} NOT NULL,
                finished {boolean} NOT NULL,
                settled {boolean} NOT NULL,
                trace_id TEXT NOT NULL,
                trace_ids TEXT NOT NULL,
                service TEXT NOT NULL,
                root_cause TEXT NOT NULL,
                bottleneck TEXT NOT NULL,
                diagnosis_url TEXT NOT NULL,
                jaeger_url TEXT NOT NULL,
                first_seen_ms {bigint} NOT NULL,
                judged_at_ms {bigint} NOT NULL,
                settled_seen_ms {bigint}
            )""",
            "CREATE INDEX opdiag_operations_started ON opdiag_operations (started_at_ms)",
            "CREATE INDEX opdiag_operations_open ON opdiag_operations (settled, judged_at_ms)",
            """
            CREATE TABLE opdiag_operation_services (
                key TEXT NOT NULL REFERENCES opdiag_operations (key) ON DELETE CASCADE,
                service TEXT NOT NULL,
                PRIMARY KEY (key, service)
            )""",
            "CREATE INDEX opdiag_operation_services_service "
            "ON opdiag_operation_services (service)",
            # Every verdict an operation had (running -> stuck -> worker_lost ...).
            """
            CREATE TABLE opdiag_verdicts (
                id {serial_pk},
                key TEXT NOT NULL,
                recorded_at_ms {bigint} NOT NULL,
                operation_type TEXT NOT NULL,
                status TEXT NOT NULL,
                verdict TEXT NOT NULL,
                finished {boolean} NOT NULL,
                duration_ms {double} NOT NULL,
                summary TEXT NOT NULL,
                trace_ids TEXT NOT NULL,
                diagnosis_url TEXT NOT NULL
            )""",
            "CREATE INDEX opdiag_verdicts_key ON opdiag_verdicts (key, recorded_at_ms)",
        ),
    ),
    Migration(
        2,
        "the watcher's passes",
        (
            # One row: when a watcher (of any replica) last finished a pass, and how many.
            """
            CREATE TABLE opdiag_watcher (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                last_pass_ms {bigint} NOT NULL,
                passes {bigint} NOT NULL
            )""",
        ),
    ),
    Migration(
        3,
        "who judged each verdict",
        (
            # store.judge: a settled verdict is final for the judge that gave it only ('':
            # recorded before this column, judged again like any other judge's)
            "ALTER TABLE opdiag_operations ADD COLUMN judge TEXT NOT NULL DEFAULT ''",
        ),
    ),
    Migration(
        4,
        "how bad each verdict is",
        (
            # OperationRow.severity ('': recorded before this column, until the operation is
            # judged again: an unsettled one at the watcher's next pass, a settled one by an
            # opdiag whose code differs from the judge's, as after this upgrade)
            "ALTER TABLE opdiag_operations ADD COLUMN severity TEXT NOT NULL DEFAULT ''",
        ),
    ),
)
LATEST_VERSION = MIGRATIONS[-1].version
