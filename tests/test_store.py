"""The verdict store on both databases: SQLite (a file) and PostgreSQL (a real server the
module starts and stops, see pg_support). Every test runs against both."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest
from opdiag.errors import InputError, StoreUnavailableError
from opdiag.settings import Settings, default_store_path
from opdiag.store.factory import open_store, store_location
from opdiag.store.schema import LATEST_VERSION, MIGRATIONS
from store_support import BASE_MS, Backends, record

MIN = 60_000
US = 1000


@pytest.fixture(params=["sqlite", "postgresql"])
def backends(request, tmp_path: Path) -> Backends:
    server = request.getfixturevalue("pg_server") if request.param == "postgresql" else None
    return Backends(request.param, tmp_path, server)


@pytest.fixture
def store(backends: Backends):
    opened = backends.open()
    yield opened
    opened.close()


# -- schema and migrations --------------------------------------------------------------


def test_a_new_store_is_created_at_the_latest_schema(store):
    assert store.schema_version() == LATEST_VERSION
    assert store.migrate() == []  # nothing left to apply
    assert not store.has_operations()
    assert store.last_pass_ms() is None


def test_migrations_are_versioned_and_keep_data(backends: Backends):
    """A store at version 1 holding data is brought to the latest version on open."""
    location = backends.location()
    old = _open_unmigrated(backends, location)
    assert old.schema_version() == 0
    assert old.migrate(target=1) == [1]
    assert old.schema_version() == 1
    with old.connector.write() as conn:  # a row as opdiag wrote it at version 1
        old._run(
            conn,
            "INSERT INTO opdiag_operations (key, operation_type, status, verdict, summary, "
            "started_at_ms, ended_at_ms, duration_ms, finished, settled, trace_id, trace_ids, "
            "service, root_cause, bottleneck, diagnosis_url, jaeger_url, first_seen_ms, "
            "judged_at_ms) VALUES ('op_1', 'training', 'failed', 'failed', 'old words', 1, 2, "
            "1.0, TRUE, TRUE, 't', 't', 's', '', '', '', '', 5, 5)",
        )
    old.close()
    new = backends.open(location)
    try:
        assert new.schema_version() == LATEST_VERSION
        # migration 4: a verdict stored before severities says none, not a guessed one
        assert [(r.operation_id, r.severity) for r in new.operations(0, 2**62)] == [("op_1", "")]
        new.note_pass(7)  # a table of migration 2
        assert new.last_pass_ms() == 7
        # migration 3: settled before anyone was named its judge, so judged again
        again = new.record([record("op_1", "failed", status="failed", summary="new")], 9)
        assert [(r.verdict_changed, r.newly_settled) for r in again] == [(False, False)]
        assert [r.severity for r in new.operations(0, 2**62)] == ["error"]
    finally:
        new.close()
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))


def test_another_judge_judges_settled_operations_again(backends: Backends):
    """After an upgrade (or other packs, other thresholds) a settled verdict is recorded
    again: the list showed the wording and mistakes of the version that first saw it. Its
    history gets an entry only for another verdict, and it settles only once (the verdict
    metrics count it once)."""
    location = backends.location()
    old = backends.open(location)
    judged = old.record([record("op_1", "failed", status="failed", summary="old words")], 10)
    assert [r.newly_settled for r in judged] == [True]
    assert old.record([record("op_1", "failed", status="failed", summary="x")], 15) == []
    old.close()
    new = backends.open(location, diagnosis={"stuck_after_s": 120.0})
    try:
        assert new.judge != old.judge
        again = new.record([record("op_1", "failed", status="failed", summary="new words")], 20)
        assert [(r.previous, r.verdict_changed, r.newly_settled) for r in again] == [
            ("failed", False, False)
        ]
        [listed] = new.operations(0, 2**62)
        assert listed.summary == "new words"
        moved = new.record([record("op_2", "healthy", status="completed")], 25)
        assert [r.newly_settled for r in moved] == [True]
        # settled by this judge now: final again
        assert new.record([record("op_1", "slow", status="completed")], 30) == []
        assert [h.recorded_at_ms for h in new.history("op_1")] == [10]
    finally:
        new.close()
    older = backends.open(location)  # the old judge back (a rollback): judged again too
    try:
        changed = older.record([record("op_1", "worker_lost", status="failed")], 40)
        assert [(r.previous, r.verdict_changed, r.newly_settled) for r in changed] == [
            ("failed", True, False)
        ]
        assert [h.verdict for h in older.history("op_1")] == ["failed", "worker_lost"]
    finally:
        older.close()


def _open_unmigrated(backends: Backends, location: str):
    from opdiag.store.postgres import PostgresConnector
    from opdiag.store.sql import SqlStore
    from opdiag.store.sqlite import SqliteConnector

    if backends.kind == "postgresql":
        return SqlStore(PostgresConnector(location))
    return SqlStore(SqliteConnector(location))


def test_a_store_migrated_by_a_newer_opdiag_is_refused(backends: Backends):
    location = backends.location()
    store = backends.open(location)
    with store.connector.write() as conn:
        store._run(
            conn,
            "INSERT INTO opdiag_schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)",
            (LATEST_VERSION + 1, "from the future", 0),
        )
    store.close()
    with pytest.raises(StoreUnavailableError, match="newer than this opdiag"):
        backends.open(location)


# -- recording --------------------------------------------------------------------------


def test_recording_keeps_every_verdict_change_once(store):
    first = store.record([record("op_1", "healthy", status="running", finished=False)], 10)
    assert [(r.previous, r.verdict_changed, r.newly_settled) for r in first] == [
        (None, True, False)
    ]
    again = store.record(
        [record("op_1", "healthy", status="running", finished=False, summary="more spans")], 20
    )
    assert [(r.previous, r.verdict_changed) for r in again] == [("healthy", False)]
    stuck = store.record([record("op_1", "stuck", status="running", finished=False)], 30)
    assert [(r.previous, r.verdict_changed, r.newly_settled) for r in stuck] == [
        ("healthy", True, False)
    ]
    done = store.record([record("op_1", "failed", status="failed")], 40)
    assert [(r.previous, r.newly_settled) for r in done] == [("stuck", True)]
    # Settled: final. A later judgement (another baseline, a restart) changes nothing.
    assert store.record([record("op_1", "slow", status="completed")], 50) == []
    history = store.history("op_1")
    assert [(h.recorded_at_ms, h.verdict, h.status, h.finished) for h in history] == [
        (10, "healthy", "running", False),
        (30, "stuck", "running", False),
        (40, "failed", "failed", True),
    ]
    assert history[-1].trace_ids == ("a" * 32, "b" * 32)
    assert history[-1].diagnosis_url.endswith("/operations/op_1")
    [listed] = store.operations(0, 2**62)
    assert (listed.verdict, listed.summary, listed.finished) == ("failed", "failed summary", True)
    assert listed.severity == "error"


def test_a_healthy_verdict_keeps_its_warning_in_the_store(store):
    """A data load completed with missing bars is healthy with a warning: the stored row
    keeps the severity, as the list from the traces has it."""
    store.record([record("op_1", "healthy", severity="warning"), record("op_2")], 10)
    listed = {r.operation_id: (r.verdict, r.severity) for r in store.operations(0, 2**62)}
    assert listed == {"op_1": ("healthy", "warning"), "op_2": ("healthy", "info")}


def test_a_refused_dispatch_is_settled_without_a_terminal_transition(store):
    refused = record("a" * 32, "no_workers", status="unknown", finished=False, settled=True)
    [done] = store.record([refused], 10)
    assert done.newly_settled
    assert store.in_progress(0) == []
    [listed] = store.operations(0, 2**62)
    assert listed.finished is False  # the row says what the traces say


def test_the_list_filters_orders_and_limits_like_the_trace_list(store):
    store.record(
        [
            record("op_old", "healthy", start_ms=BASE_MS - 60 * MIN, duration_ms=MIN),
            record("op_long", "stuck", status="running", finished=False,
                   start_ms=BASE_MS - 30 * MIN, duration_ms=40 * MIN),
            record("op_a", "failed", status="failed", op_type="backtesting", start_ms=BASE_MS),
            record("op_b", "healthy", start_ms=BASE_MS + MIN, services=("ktrdr-cli",)),
            record("op_c", "healthy", start_ms=BASE_MS + MIN),
        ],
        1,
    )
    window = ((BASE_MS - 5 * MIN) * US, (BASE_MS + 5 * MIN) * US)
    keys = [r.operation_id for r in store.operations(*window)]
    # Newest first, ties by key descending; op_long started before the window but runs
    # into it; op_old ended before it.
    assert keys == ["op_c", "op_b", "op_a", "op_long"]
    assert [r.operation_id for r in store.operations(*window, limit=2)] == ["op_c", "op_b"]
    assert [r.operation_id for r in store.operations(*window, operation_types=["backtesting"])
            ] == ["op_a"]
    assert [r.operation_id for r in store.operations(*window, verdicts=["stuck", "failed"])
            ] == ["op_a", "op_long"]
    assert [r.operation_id for r in store.operations(*window, services=["ktrdr-cli"])
            ] == ["op_b"]
    assert store.operations(*window, verdicts=["cancelled"]) == []
    assert store.distinct("operation_types", *window, 100) == ["backtesting", "training"]
    assert store.distinct("services", *window, 100) == [
        "ktrdr-api", "ktrdr-cli", "ktrdr-training-worker-1"]
    assert store.distinct("operation_ids", *window, 2) == ["op_c", "op_b"]


def test_a_service_filter_value_may_be_a_pattern(store):
    """Worker names carry a suffix per process start: ``ktrdr-training-worker-*`` keeps the
    operations of every training worker process, as the list from the traces does, on both
    databases; '*' and '?' are the only wildcards (SQL's '%' and '_', or a bracket, are
    themselves)."""
    store.record(
        [
            record("op_t1", services=("ktrdr-api", "ktrdr-training-worker-b969a633")),
            record("op_t2", start_ms=BASE_MS + MIN, services=("ktrdr-training-worker-d977",)),
            record("op_b", start_ms=BASE_MS + 2 * MIN, services=("ktrdr-backtest-worker-09ec",)),
            record("op_odd", start_ms=BASE_MS + 3 * MIN, services=("ktrdr_x%[1]",)),
        ],
        1,
    )
    window = ((BASE_MS - 5 * MIN) * US, (BASE_MS + 5 * MIN) * US)

    def listed(*services: str) -> list[str]:
        return [r.operation_id for r in store.operations(*window, services=list(services))]

    assert listed("ktrdr-training-worker-*") == ["op_t2", "op_t1"]
    assert listed("ktrdr-*-worker-????") == ["op_b", "op_t2"]
    assert listed("ktrdr-training-worker-*", "ktrdr-backtest-worker-09ec") == [
        "op_b", "op_t2", "op_t1"]
    assert listed("ktrdr_x%[1]") == ["op_odd"] and listed("ktrdr_x%[1*") == ["op_odd"]
    assert listed("ktrdr%") == [] and listed("ktrdr_training*") == []
    assert listed("KTRDR-TRAINING-WORKER-*") == []  # case counts, as in the traces


def test_verdict_counts_are_epoch_aligned_buckets_of_the_start(store):
    store.record(
        [
            record("op_1", "healthy", start_ms=BASE_MS),
            record("op_2", "healthy", start_ms=BASE_MS + 1),
            record("op_3", "failed", status="failed", start_ms=BASE_MS + 5 * MIN),
            record("op_4", "failed", status="failed", start_ms=BASE_MS + 10 * MIN),
        ],
        1,
    )
    bucket = 5 * MIN * US
    counts = store.verdict_counts(BASE_MS * US, (BASE_MS + 10 * MIN) * US, bucket)
    first = BASE_MS * US - BASE_MS * US % bucket
    expected: dict[tuple[int, str], int] = {}
    for start, verdict in ((BASE_MS, "healthy"), (BASE_MS + 1, "healthy"),
                           (BASE_MS + 5 * MIN, "failed")):
        key = (start * US - start * US % bucket, verdict)
        expected[key] = expected.get(key, 0) + 1
    assert counts == expected  # op_4 starts at the (exclusive) end
    assert min(b for b, _ in counts) == first
    assert store.verdict_counts(
        BASE_MS * US, (BASE_MS + 10 * MIN) * US, bucket, verdicts=["failed"]
    ) == {k: v for k, v in expected.items() if k[1] == "failed"}


def test_in_progress_and_follow_up_lists(store):
    store.record(
        [
            record("op_run", "healthy", status="running", finished=False, start_ms=BASE_MS),
            record("op_stuck", "stuck", status="running", finished=False, start_ms=BASE_MS),
            record("op_lost", "worker_lost", status="running", finished=False,
                   op_type="backtesting", start_ms=BASE_MS),
            record("op_ancient", "stuck", status="running", finished=False,
                   start_ms=BASE_MS - 48 * 60 * MIN),
            record("op_done", "healthy", start_ms=BASE_MS),
        ],
        100,
    )
    since = BASE_MS - 24 * 60 * MIN
    snapshot = {(p.operation_type, p.state): p.count for p in store.in_progress(since)}
    assert snapshot == {("training", "running"): 1, ("training", "stuck"): 1,
                        ("backtesting", "lost"): 1}
    assert store.to_follow(101, since, 10) == ["op_lost", "op_run", "op_stuck"]
    assert store.to_follow(100, since, 10) == []  # all judged at 100
    store.touch(["op_lost"], 150)
    assert store.to_follow(200, since, 2) == ["op_run", "op_stuck"]
    assert store.to_follow(200, since, 0) == []


def test_passes_are_noted(store):
    store.note_pass(10)
    store.note_pass(20)
    assert store.last_pass_ms() == 20
    with store.connector.read() as conn:
        (passes,) = store._run(conn, "SELECT passes FROM opdiag_watcher").fetchone()
    assert passes == 2


def test_many_records_in_one_pass(store):
    many = [record(f"op_{i:04d}", "healthy", start_ms=BASE_MS + i) for i in range(1200)]
    written = store.record(many, 1)
    assert len(written) == 1200 and all(r.newly_settled for r in written)
    assert store.record(many, 2) == []
    assert len(store.operations(0, 2**62)) == 1200


# -- failures ---------------------------------------------------------------------------


def test_an_unusable_sqlite_path_is_a_clear_error(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnavailableError, match="cannot create its directory"):
        open_store(Settings.model_validate({"store": {"path": str(blocker / "x.sqlite3")}}))


def test_a_closed_store_raises_store_errors(store):
    store.close()
    with pytest.raises(StoreUnavailableError, match="verdict store"):
        store.operations(0, 2**62)


def test_an_unreachable_postgresql_names_it_without_the_password(pg_server):
    url = pg_server.url(password="s3cret").replace(str(pg_server.port), "1")
    settings = Settings.model_validate({"store": {"url": url, "connect_timeout_s": 1}})
    with pytest.raises(StoreUnavailableError) as caught:
        open_store(settings)
    assert "127.0.0.1:1" in caught.value.message
    assert "s3cret" not in caught.value.message and "***" in caught.value.message


def test_a_url_that_is_not_postgresql_is_refused():
    settings = Settings.model_validate({"store": {"url": "mysql://db/x"}})
    with pytest.raises(InputError, match="postgresql://"):
        open_store(settings)


def test_postgresql_reconnects_after_the_server_dropped_the_connection(pg_server):
    location = pg_server.create_database()
    store = Backends("postgresql", Path("."), pg_server).open(location)
    try:
        store.record([record("op_1")], 1)
        with psycopg.connect(pg_server.url(), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (location.rsplit("/", 1)[1],),
            )
        with pytest.raises(StoreUnavailableError):
            store.operations(0, 2**62)
        assert [r.operation_id for r in store.operations(0, 2**62)] == ["op_1"]
    finally:
        store.close()


# -- several replicas on one PostgreSQL -------------------------------------------------


def test_one_replica_leads_and_another_takes_over_when_it_goes(pg_server):
    location = pg_server.create_database()
    backends = Backends("postgresql", Path("."), pg_server)
    first, second = backends.open(location), backends.open(location)
    try:
        assert first.lead() is True
        assert second.lead() is False
        assert first.lead() is True  # still leading, no second lock taken
        first.close()
        # The server drops the lock when it notices the session ended (asynchronously).
        deadline = time.monotonic() + 30
        while not second.lead():
            assert time.monotonic() < deadline, "the lock was never released"
            time.sleep(0.05)
    finally:
        second.close()


def test_replicas_starting_together_migrate_once(pg_server):
    location = pg_server.create_database()
    settings = Settings.model_validate({"store": {"url": location}})
    errors: list[BaseException] = []
    stores = []

    def start() -> None:
        try:
            stores.append(open_store(settings))
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert not errors and len(stores) == 4
        with psycopg.connect(location) as conn:
            rows = conn.execute("SELECT version FROM opdiag_schema_migrations ORDER BY 1")
            assert [v for (v,) in rows] == list(range(1, LATEST_VERSION + 1))
    finally:
        for s in stores:
            s.close()


# -- where the store lives --------------------------------------------------------------


def test_the_default_store_location(tmp_path: Path):
    assert default_store_path({"XDG_STATE_HOME": str(tmp_path)}) == (
        tmp_path / "opdiag" / "verdicts.sqlite3"
    )
    assert default_store_path({}).parts[-4:] == (".local", "state", "opdiag", "verdicts.sqlite3")
    demo = Settings(use_demo=True)
    assert store_location(demo) == ":memory:"  # the bundled corpus keeps nothing
    jaeger = Settings.model_validate({"jaeger": {"url": "http://127.0.0.1:16686"}})
    assert store_location(jaeger) == str(default_store_path())
    # one store per recording: serving another directory lists none of the first's rows
    a, b = tmp_path / "a", tmp_path / "b"
    one = store_location(Settings(trace_paths=[a]))
    assert Path(one).parent == default_store_path().parent
    assert Path(one).name.startswith("verdicts-files-") and one.endswith(".sqlite3")
    assert store_location(Settings(trace_paths=[tmp_path / "x" / ".." / "a"])) == one
    assert store_location(Settings(trace_paths=[b])) != one
    assert store_location(Settings(trace_paths=[a, b])) == store_location(
        Settings(trace_paths=[b, a])
    )
    assert store_location(Settings.model_validate({"store": {"path": "/x/y.db"}})) == "/x/y.db"
    pg = Settings.model_validate({"store": {"url": "postgresql://h/db", "path": "/x/y.db"}})
    assert store_location(pg) == "postgresql://h/db"


def test_the_store_and_watcher_settings_come_from_the_environment():
    from opdiag.settings import load_settings

    settings = load_settings(environ={
        "OPDIAG_STORE_URL": "postgresql://opdiag@db/verdicts",
        "OPDIAG_STORE_PATH": "/var/lib/opdiag/v.sqlite3",
        "OPDIAG_WATCHER": "false",
        "OPDIAG_WATCHER_INTERVAL_S": "30",
    })
    assert settings.store.url == "postgresql://opdiag@db/verdicts"
    assert settings.store.path == "/var/lib/opdiag/v.sqlite3"
    assert settings.watcher.enabled is False and settings.watcher.interval_s == 30
    with pytest.raises(InputError, match=r"watcher\.interval_s"):
        load_settings(environ={"OPDIAG_WATCHER_INTERVAL_S": "0"})


def test_serve_with_a_store_it_cannot_open_exits_4(tmp_path: Path, demo_traces):
    """The README's exit status 4: for serve, also a verdict store it cannot open (run as a
    process: serve sets up logging and the collector for the whole interpreter)."""
    import os
    import subprocess
    import sys

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = {**os.environ, "OPDIAG_STORE_PATH": str(blocker / "x.sqlite3")}
    env.pop("OPDIAG_STORE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "opdiag.cli.main", "serve", "--traces", str(demo_traces),
         "--port", "0"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 4, done.stderr
    assert "cannot create its directory" in done.stderr
