"""The app with a verdict store: the list, counts, variables and annotations come from the store
once the watcher filled it, answer exactly what the traces answer, and outlive the traces."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pytest
from api_support import XSS, XSS_OPERATION, write_xss_traces
from opdiag.api.app import create_app
from opdiag.api.queries import PROBLEM_VERDICTS
from opdiag.api.state import EXTENSION
from opdiag.settings import Settings
from opdiag.store.factory import open_store
from opdiag.timeutil import parse_now
from test_watcher import CORPUS, EXPECTED

CORPUS_NOW_MS = parse_now(str(EXPECTED["now"])) // 1000
RANGE = f"from={CORPUS_NOW_MS - 6 * 3_600_000}&to={CORPUS_NOW_MS}"
LISTINGS = [
    f"/api/v1/operations?{RANGE}",
    f"/api/v1/operations?{RANGE}&type=training&verdict=healthy,slow,stuck",
    f"/api/v1/operations?{RANGE}&service=ktrdr-ib-host-service",
    f"/api/v1/operations?{RANGE}&limit=3",
    f"/api/v1/annotations?{RANGE}",
    f"/api/v1/annotations?{RANGE}&verdict=healthy",
    f"/api/v1/verdict-counts?{RANGE}&interval=15m",
    f"/api/v1/verdict-counts?{RANGE}&interval=1h&type=backtesting",
]
VARIABLES = ["operation_types", "services", "operation_ids", "verdicts"]
# Unfinished operations are judged against the clock: their duration and summary move on
# between the watcher's pass and the request.
MOVING = {"duration_ms", "summary", "time_end", "text"}


def _settings(tmp_path: Path, *paths: Path) -> Settings:
    return Settings.model_validate({
        "trace_paths": [str(p) for p in paths or (CORPUS,)],
        "store": {"path": str(tmp_path / "verdicts.sqlite3")},
    })


def _client(settings: Settings, *, with_store: bool = True) -> Any:
    store = open_store(settings) if with_store else None
    app = create_app(settings, store=store)
    app.config["TESTING"] = True
    return app, app.test_client()


def _json(client: Any, url: str) -> Any:
    response = client.get(url)
    assert response.status_code == 200, (url, response.get_data(as_text=True))
    return response.get_json()


def _steady(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in r.items() if k not in MOVING or r.get("finished", True)} for r in rows
    ]


@pytest.fixture
def apps(tmp_path: Path):
    """(app with a store, its client, app without one, its client)."""
    stored_app, stored = _client(_settings(tmp_path))
    plain_app, plain = _client(_settings(tmp_path), with_store=False)
    yield stored_app, stored, plain_app, plain
    stored_app.extensions[EXTENSION].store.close()


def test_the_store_answers_what_the_traces_answer(apps):
    stored_app, stored, _, plain = apps
    state = stored_app.extensions[EXTENSION]
    assert not state.service.from_store()  # empty store: the traces answer
    assert _steady(_json(stored, LISTINGS[0])) == _steady(_json(plain, LISTINGS[0]))
    assert state.watcher.run_once() is not None
    assert state.service.from_store()
    for url in LISTINGS:
        ours, theirs = _json(stored, url), _json(plain, url)
        if "annotations" in url:
            ours = [dict(r, finished=r["verdict"] != "stuck") for r in ours]
            theirs = [dict(r, finished=r["verdict"] != "stuck") for r in theirs]
        assert _steady(ours) == _steady(theirs), url
        assert ours, url
    for name in VARIABLES:
        url = f"/api/v1/variables/{name}?{RANGE}"
        ours, theirs = _json(stored, url), _json(plain, url)
        assert sorted(map(str, ours)) == sorted(map(str, theirs)), name


def test_the_list_outlives_the_traces(tmp_path: Path):
    """Recorded with the whole corpus, then served by an opdiag whose source holds only one
    other operation (Jaeger's retention dropped the rest): every operation is still listed."""
    settings = _settings(tmp_path)
    first_app, _ = _client(settings)
    first = first_app.extensions[EXTENSION]
    assert first.watcher.run_once() is not None
    first.store.close()
    small = write_xss_traces(tmp_path / "small")
    later_app, later = _client(_settings(tmp_path, small.parent))
    try:
        rows = _json(later, f"/api/v1/operations?{RANGE}")
        assert {r["operation_id"] for r in rows} == set(EXPECTED["operations"])
        counts = _json(later, f"/api/v1/verdict-counts?{RANGE}&interval=1h")
        assert sum(r["count"] for r in counts) == len(EXPECTED["operations"])
    finally:
        later_app.extensions[EXTENSION].store.close()


def test_annotations_mark_problem_verdicts_with_a_link_and_escaped_text(tmp_path: Path):
    small = write_xss_traces(tmp_path / "xss")
    app, client = _client(_settings(tmp_path, CORPUS, small.parent))
    try:
        assert app.extensions[EXTENSION].watcher.run_once() is not None
        rows = _json(client, "/api/v1/annotations?from=0&to=4102444800000")
        expected = {k for k, v in EXPECTED["operations"].items() if v["verdict"] in
                    PROBLEM_VERDICTS}
        assert expected <= {r["operation_id"] for r in rows}
        assert {r["verdict"] for r in rows} <= set(PROBLEM_VERDICTS)
        assert "stuck" in {r["verdict"] for r in rows}
        for row in rows:
            assert row["time"] <= row["time_end"]
            assert row["tags"].split(",")[:2] == ["opdiag", row["verdict"]]
            assert row["title"].startswith(f"{row['verdict']}: {row['operation_type']} ")
            url = html.escape(row["diagnosis_url"], quote=True)
            assert f'<a href="{url}" target="_blank">diagnosis</a>' in row["text"]
        assert XSS_OPERATION in {r["operation_id"] for r in rows}
        only = _json(client, "/api/v1/annotations?from=0&to=4102444800000&verdict=stuck")
        assert {r["verdict"] for r in only} == {"stuck"}
    finally:
        app.extensions[EXTENSION].store.close()


def test_annotation_text_from_traces_is_escaped():
    from opdiag.render.rows import annotation_row
    from store_support import row

    found = annotation_row(row("op_1", "failed", summary=f"failed: {XSS}"))
    assert XSS not in found.text and html.escape(XSS) in found.text
    quoted = row("op_1", "failed").model_copy(
        update={"diagnosis_url": 'http://x/operations/a"onmouseover="b'})
    assert '"onmouseover' not in annotation_row(quoted).text


def test_verdict_metrics_are_exported_only_with_a_store(apps):
    stored_app, stored, _, plain = apps
    watcher = stored_app.extensions[EXTENSION].watcher
    assert watcher.run_once(now_us=CORPUS_NOW_MS * 1000) is not None
    text = stored.get("/metrics").get_data(as_text=True)
    for name in (
        "opdiag_operations_finished_total",
        "opdiag_operations_in_progress",
        "opdiag_operation_duration_seconds_bucket",
        "opdiag_watcher_last_success_timestamp_seconds",
        "opdiag_watcher_errors_total",
        "opdiag_watcher_leader",
    ):
        assert name in text, name
    assert 'opdiag_operations_in_progress{operation_type="training",state="stuck"} 1.0' in text
    assert "opdiag_watcher" not in plain.get("/metrics").get_data(as_text=True)


def test_a_store_that_fails_is_a_503_with_a_message(apps):
    stored_app, stored, _, _ = apps
    state = stored_app.extensions[EXTENSION]
    assert state.watcher.run_once() is not None
    state.store.close()
    response = stored.get(f"/api/v1/operations?{RANGE}")
    assert response.status_code == 503
    assert "verdict store" in response.get_json()["error"]
    # One operation still reads the traces.
    key = next(iter(EXPECTED["operations"]))
    assert stored.get(f"/api/v1/operations/{key}").status_code == 200


def test_the_index_page_lists_from_the_store(apps):
    stored_app, stored, _, _ = apps
    assert stored_app.extensions[EXTENSION].watcher.run_once() is not None
    page = stored.get("/").get_data(as_text=True)
    for key in EXPECTED["operations"]:
        assert key in page


def test_an_operation_in_flight_is_judged_again_when_listed(tmp_path: Path):
    """The watcher stored "running" half a minute into the hung training; a list read later
    shows it stuck (and counts it so) without waiting for the next pass."""
    app, client = _client(_settings(tmp_path))
    state = app.extensions[EXTENSION]
    try:
        hung = next(k for k, v in EXPECTED["operations"].items() if v["verdict"] == "stuck")
        started_ms = state.service.diagnose(hung).started_at_ms
        assert state.watcher.run_once(now_us=(started_ms + 30_000) * 1000) is not None
        stored = {r.operation_id: r for r in state.store.operations(0, 2**62)}
        assert stored[hung].verdict == "healthy" and not stored[hung].finished
        rows = {r["operation_id"]: r for r in _json(client, f"/api/v1/operations?{RANGE}")}
        assert rows[hung]["verdict"] == "stuck"
        stuck = _json(client, f"/api/v1/operations?{RANGE}&verdict=stuck")
        assert hung in {r["operation_id"] for r in stuck}
        counts = _json(client, f"/api/v1/verdict-counts?{RANGE}&interval=1h&verdict=stuck")
        assert sum(r["count"] for r in counts) >= 1
    finally:
        state.store.close()


def test_verdict_counts_count_every_unsettled_operation_the_list_shows(tmp_path: Path):
    """Stuck and lost operations never settle and pile up: the counts added only the 50
    newest (those judged again per request), while the list showed all 60."""
    from opdiag.api.schemas import OperationRow
    from opdiag.errors import NotFoundError
    from opdiag.store.reads import StoredReads
    from opdiag.store.records import VerdictRecord
    from opdiag.store.sql import SqlStore
    from opdiag.store.sqlite import SqliteConnector

    store = SqlStore(SqliteConnector(str(tmp_path / "v.sqlite3")))
    store.migrate()
    t0 = 1_796_500_000_000
    records = []
    for i in range(60):
        row = OperationRow(
            time=t0 + i * 60_000, operation_id=f"op_training_x_{i:03d}", trace_id="0" * 32,
            operation_type="training", status="running", verdict="stuck", severity="error",
            summary="stuck",
            duration_ms=3.6e6, service="w", root_cause="", bottleneck="", finished=False,
            diagnosis_url="", jaeger_url="",
        )
        records.append(VerdictRecord(row=row, trace_ids=("0" * 32,), services=("w",),
                                     ended_at_ms=row.time + 3_600_000, settled=False))
    store.record(records, t0)

    class Gone:  # traces past the source's retention: stored verdicts stand
        settings = None

        def diagnose(self, *args: Any, **kwargs: Any) -> Any:
            raise NotFoundError("not found")

    reads = StoredReads(Gone(), store, lambda: True, 1000)
    start_us, end_us = (t0 - 3_600_000) * 1000, (t0 + 7_200_000) * 1000
    listed = reads.operations(start_us, end_us, None)
    counts = reads.verdict_counts(start_us, end_us, 24 * 3600 * 10**6, None)
    assert len(listed) == 60
    assert sum(r.count for r in counts if r.verdict == "stuck") == 60
    store.close()
