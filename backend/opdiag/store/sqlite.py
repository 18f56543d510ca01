"""SQLite as the verdict store: one file (or memory), nothing to install or run.

One connection, shared by the server's threads and the watcher under a lock: statements
take milliseconds, and a single connection is what makes ``:memory:`` one database for
everyone. A file runs in WAL mode, so an ``sqlite3`` shell may read it while opdiag writes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from opdiag.errors import StoreUnavailableError
from opdiag.settings import MEMORY_STORE
from opdiag.store.schema import SQLITE

_BUSY_TIMEOUT_S = 10.0


class SqliteConnector:
    """Connections of one SQLite database (see the module docstring)."""

    dialect = SQLITE
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != MEMORY_STORE:
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailableError(
                    f"verdict store {self.path}: cannot create its directory: {exc.strerror}"
                ) from None
        try:
            # isolation_level=None: autocommit; write() opens its own transactions.
            self._conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA foreign_keys = ON")
            if self.path != MEMORY_STORE:
                self._conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"verdict store {self.path}: cannot open: {exc}") from None
        self._lock = threading.RLock()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def lock_migrations(self, conn: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE`` already holds the database's write lock."""

    def lead(self) -> bool:
        """One SQLite file belongs to one opdiag: its watcher always leads."""
        return True

    def reset(self) -> None:
        """The one connection stays; SQLite errors do not break it."""

    def describe(self) -> str:
        return f"sqlite {self.path}"

    def close(self) -> None:
        with self._lock:
            self._conn.close()
