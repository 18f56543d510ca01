"""A real PostgreSQL server for the tests: Debian's server binaries, a cluster made with
``initdb`` in a fresh temporary directory, ``pg_ctl`` on a free loopback port, stopped and
deleted at the end.

PostgreSQL refuses to run as root. The tests run as root on our machines and in CI, so the
cluster then belongs to an unprivileged system account (``nobody`` by default,
``OPDIAG_TEST_PG_USER`` to choose another) and every PostgreSQL program runs as that account
(``subprocess``'s ``user``/``group``); its directory sits directly in the system temporary
directory, which every account may traverse. As another user the cluster is simply theirs.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

SUPERUSER = "opdiag"
_SEARCH_GLOB = "/usr/lib/postgresql/*/bin"
_TIMEOUT_S = 120


def _version_key(path: str) -> tuple[int, ...]:
    parts = Path(path).parent.name.split(".")
    return tuple(int(p) for p in parts if p.isdigit())


def find_bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: ``OPDIAG_TEST_PG_BINDIR``, the PATH, ``pg_config
    --bindir``, else the newest ``/usr/lib/postgresql/<version>/bin`` (Debian keeps the
    server binaries off the PATH)."""
    candidates: list[str] = []
    if os.environ.get("OPDIAG_TEST_PG_BINDIR"):
        candidates.append(os.environ["OPDIAG_TEST_PG_BINDIR"])
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=True
            )
            candidates.append(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    candidates += sorted(glob.glob(_SEARCH_GLOB), key=_version_key, reverse=True)
    for found in candidates:
        path = Path(found)
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            return path
    return None


def _free_port() -> int:
    from ktrdr_sim.live.launch import free_ports  # outside the ephemeral range

    return free_ports(1)[0]


class PostgresServer:
    """One throwaway cluster; ``url(db)`` for psycopg, ``create_database()`` for isolation."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="opdiag-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            account = pwd.getpwnam(os.environ.get("OPDIAG_TEST_PG_USER", "nobody"))
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self._as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        self._databases = 0

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C", "HOME": str(self.root)},
            **self._as,
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}{log}")

    def start(self) -> PostgresServer:
        self._run(
            "initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
            "--no-locale", "--no-instructions",
        )
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-t", str(_TIMEOUT_S), "start")
        return self

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        auth = SUPERUSER if password is None else f"{SUPERUSER}:{password}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database on this server; its URL."""
        import psycopg

        self._databases += 1
        name = f"opdiag_test_{os.getpid()}_{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def sessions(self, database: str) -> int:
        """Backends connected to ``database`` right now (other than the one asking)."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                "AND pid <> pg_backend_pid()",
                (database,),
            ).fetchone()
        return int(row[0]) if row else 0


def postgres_server() -> PostgresServer:
    """A started server, or a skip naming how to get the binaries."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries not found: run `bash scripts/ensure-system-deps.sh` "
            "(Debian package postgresql); `make test` installs it"
        )
    return PostgresServer(bindir).start()
