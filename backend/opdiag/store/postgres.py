"""PostgreSQL as the verdict store, for several opdiag replicas behind one Grafana.

psycopg 3 (binary wheel, no system library needed). Each thread keeps its own autocommit
connection, opened on first use and reopened after a failure; writes run in explicit
transactions. Replicas share the store but only one watches at a time: the watcher that holds
the session advisory lock ``LEAD_LOCK`` writes; the others serve reads from the same tables
and take over when its connection goes away (the server releases the lock then).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from opdiag.errors import StoreUnavailableError
from opdiag.store.schema import POSTGRESQL

# Advisory lock keys: any fixed 64-bit numbers no other application uses; these spell
# "opdiagWL" (watcher lead) and "opdiagMG" (migrations) in ASCII.
LEAD_LOCK = int.from_bytes(b"opdiagWL", "big")
MIGRATION_LOCK = int.from_bytes(b"opdiagMG", "big")
SCHEMES = ("postgresql", "postgres")


def redacted(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresConnector:
    """Connections of one PostgreSQL database (see the module docstring)."""

    dialect = POSTGRESQL

    def __init__(self, url: str, connect_timeout_s: float = 5.0) -> None:
        try:
            import psycopg
        except ImportError:  # pragma: no cover - a dependency of opdiag
            raise StoreUnavailableError(
                "the PostgreSQL store needs psycopg (pip install psycopg)"
            ) from None
        self._psycopg = psycopg
        self.errors: tuple[type[BaseException], ...] = (psycopg.Error,)
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[Any] = []
        self._closed = False

    def _connection(self) -> Any:
        if self._closed:
            raise StoreUnavailableError(f"verdict store {self.describe()} is closed")
        conn = getattr(self._local, "conn", None)
        if conn is not None and not conn.closed:
            return conn
        conn = self._psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=max(1, round(self.connect_timeout_s)),
            application_name="opdiag",
        )
        self._local.conn = conn
        self._local.leading = False
        with self._lock:
            self._open = [c for c in self._open if not c.closed] + [conn]
        return conn

    @contextmanager
    def read(self) -> Iterator[Any]:
        yield self._connection()

    @contextmanager
    def write(self) -> Iterator[Any]:
        conn = self._connection()
        with conn.transaction():
            yield conn

    def lock_migrations(self, conn: Any) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))

    def lead(self) -> bool:
        """Hold ``LEAD_LOCK`` on this thread's connection (kept until it closes)."""
        conn = self._connection()
        if not getattr(self._local, "leading", False):
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LEAD_LOCK,)).fetchone()
            self._local.leading = bool(row and row[0])
        return bool(self._local.leading)

    def reset(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        self._local.leading = False
        if conn is not None:
            with suppress(self._psycopg.Error):
                conn.close()

    def describe(self) -> str:
        return f"postgresql {redacted(self.url)}"

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, self._open = self._open, []
        for conn in conns:
            with suppress(self._psycopg.Error):
                conn.close()
