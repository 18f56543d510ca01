"""Opens the verdict store the settings name, migrated to this opdiag's schema."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlsplit

from opdiag.errors import InputError
from opdiag.settings import MEMORY_STORE, Settings, default_store_path
from opdiag.store.judge import judge_of
from opdiag.store.postgres import SCHEMES, PostgresConnector
from opdiag.store.sql import Connector, SqlStore
from opdiag.store.sqlite import SqliteConnector


def store_location(settings: Settings) -> str:
    """The PostgreSQL URL, else the SQLite path: the set one, memory for the bundled demo
    corpus (nothing to keep), the XDG default otherwise: one for Jaeger, one per set of
    trace files (a recording's operations are not another source's, and a list of one
    showed the rows of every recording served before)."""
    if settings.store.url:
        return settings.store.url
    if settings.store.path:
        return settings.store.path
    if settings.use_demo and not settings.trace_paths and not settings.jaeger.url:
        return MEMORY_STORE
    default = default_store_path()
    if not settings.trace_paths:
        return str(default)
    named = "\0".join(sorted(str(Path(p).resolve()) for p in settings.trace_paths))
    digest = hashlib.sha256(named.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return str(default.with_name(f"{default.stem}-files-{digest}{default.suffix}"))


def open_store(settings: Settings, *, now_ms: int = 0) -> SqlStore:
    """The store, its schema created or migrated; ``StoreUnavailableError`` when it cannot
    be opened, ``InputError`` for a URL that is no PostgreSQL URL."""
    location = store_location(settings)
    if settings.store.url:
        scheme = urlsplit(location).scheme
        if scheme not in SCHEMES:
            raise InputError(
                f"store URL must start with postgresql:// (got {scheme or 'no'} scheme)",
                field="store.url",
            )
        connector: Connector = PostgresConnector(location, settings.store.connect_timeout_s)
    else:
        connector = SqliteConnector(location)
    store = SqlStore(connector, judge=judge_of(settings))
    try:
        store.migrate(now_ms=now_ms)
    except BaseException:
        store.close()
        raise
    return store
