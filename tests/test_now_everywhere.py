"""``now`` is the moment a diagnosis is judged at, and every way in takes it: the JSON route of
one operation did, while its HTML page and the operations list judged a snapshot at the
server's clock (the JSON said "running … for 2.1 min", the page "stuck … quiet for
2 d 14 h"). The list (REST and simpod), the annotations, the verdict counts and the pages take
``now``; the links they show keep it (``&now=``, epoch ms), so the page a row leads to judges
at the same moment; a ``now`` before an operation started answers 404 naming ``now``."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import REAL_KTRDR
from opdiag.api.app import create_app
from opdiag.api.state import EXTENSION
from opdiag.devtools.score_cases import snapshot
from opdiag.settings import Settings
from opdiag.store.factory import open_store
from opdiag.timeutil import parse_now

KILLED = "op_training_20261204_160033_fcc59c1d"  # in flight in the snapshot of file 1464
NOW = "2026-12-04T16:02:42Z"
NOW_MS = parse_now(NOW) // 1000


@pytest.fixture(scope="module")
def snap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot(REAL_KTRDR / "run1" / "traces", 1464, tmp_path_factory.mktemp("s") / "t")


@pytest.fixture
def app_client(snap: Path, tmp_path: Path) -> Any:
    settings = Settings.model_validate({
        "trace_paths": [str(snap)], "store": {"path": str(tmp_path / "v.sqlite3")},
    })
    app = create_app(settings, store=open_store(settings))
    app.config["TESTING"] = True
    state = app.extensions[EXTENSION]
    try:
        with app.test_client() as client:
            yield state, client
    finally:
        state.store.close()


def _now_of(url: str) -> list[str] | None:
    return parse_qs(urlsplit(url).query).get("now")


def test_the_list_the_json_and_the_page_judge_at_the_same_now(app_client):
    state, client = app_client
    assert state.watcher.run_once() is not None  # the store holds the server clock's verdicts
    rows = client.get(f"/api/v1/operations?now={NOW}").get_json()
    row = next(r for r in rows if r["operation_id"] == KILLED)
    assert row["status"] == "running" and row["duration_ms"] < 3 * 60_000, row
    assert _now_of(row["diagnosis_url"]) == [str(NOW_MS)]
    (one,) = client.get(f"/api/v1/operations/{KILLED}?now={NOW}").get_json()
    assert one["summary"] == row["summary"]
    link = urlsplit(row["diagnosis_url"])
    page = client.get(f"{link.path}?{link.query}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "2.1 min" in text and "days" not in text
    assert f"now={NOW_MS}" in text  # its own links (the JSON rows) keep it
    assert 'id="judged-at"' in text
    # without now: the server's clock, the store's rows, links without now
    plain = client.get("/api/v1/operations").get_json()
    assert not any(_now_of(r["diagnosis_url"]) for r in plain)
    assert "judged-at" not in client.get(f"/operations/{KILLED}").get_data(as_text=True)


def test_the_index_page_takes_now_and_its_rows_lead_to_the_same_moment(app_client):
    _, client = app_client
    text = client.get(f"/?now={NOW_MS}").get_data(as_text=True)
    assert f"/operations/{KILLED}?from=" in text
    link = text.split(f'href="/operations/{KILLED}?', 1)[1].split('"', 1)[0]
    assert f"now={NOW_MS}" in link.replace("&amp;", "&")


def test_annotations_and_counts_take_now(app_client):
    """7 s into the training its worker had not been killed yet: no problem to mark."""
    _, client = app_client
    early = parse_now("2026-12-04T16:00:40Z") // 1000
    later = client.get("/api/v1/annotations?from=0").get_json()
    then = client.get(f"/api/v1/annotations?from=0&now={early}").get_json()
    assert KILLED in {r["operation_id"] for r in later}  # worker lost
    assert KILLED not in {r["operation_id"] for r in then}
    window = f"from={early - 60_000}&to={early}&interval=1h"
    counts = client.get(f"/api/v1/verdict-counts?{window}&now={early}").get_json()
    seen = {r["verdict"] for r in counts if r["count"]}
    assert "healthy" in seen and "worker_lost" not in seen
    counts = client.get(f"/api/v1/verdict-counts?{window}").get_json()
    assert "worker_lost" in {r["verdict"] for r in counts if r["count"]}


def test_simpod_listings_take_now(app_client):
    _, client = app_client
    body = {
        "range": {"from": "2026-12-04T15:00:00Z", "to": "2026-12-04T16:10:00Z"},
        "targets": [{"refId": "A", "target": "operations", "payload": {"now": NOW}}],
    }
    (frame,) = client.post("/simpod/query", json=body).get_json()
    fields = {f["name"]: f["values"] for f in frame["fields"]}
    rows = [dict(zip(fields, v, strict=True)) for v in zip(*fields.values(), strict=True)]
    row = next(r for r in rows if r["operation_id"] == KILLED)
    assert row["status"] == "running" and _now_of(row["diagnosis_url"]) == [str(NOW_MS)]


def test_a_now_before_the_operation_started_is_said_plainly(app_client):
    _, client = app_client
    early = "2026-12-04T16:00:00Z"
    answer = client.get(f"/api/v1/operations/{KILLED}?now={early}")
    assert answer.status_code == 404
    body = answer.get_json()
    assert body["field"] == "now" and "had not started by" in body["error"]
    page = client.get(f"/operations/{KILLED}?now={early}")
    text = page.get_data(as_text=True)
    assert page.status_code == 404 and "had not started by" in text and "now=" in text
    assert "running" not in text


def test_a_link_keeps_now_when_its_page_would_answer_otherwise():
    """A moment in the recording's past sees less (a finished operation too: the data load
    failed at 15:46:06 and again at 15:47:07); an operation finished by a given clock in the
    present reads the same at the page's own clock."""
    from opdiag.service import DiagnosisService
    from opdiag.sources.files import FileSource

    service = DiagnosisService(FileSource([REAL_KTRDR / "run1" / "traces"]), Settings())
    load = "op_data_load_20261204_154455_734c9af6"
    then = parse_now("2026-12-04T15:46:30Z")
    past = service.diagnose(load, now_us=then)
    assert past.finished and _now_of(past.links.diagnosis_page) == [str(then // 1000)]
    present = service.diagnose(load, now_us=parse_now("2026-12-04T16:10:00Z"))
    assert present.finished and _now_of(present.links.diagnosis_page) is None
    (row,) = [d for d in service.operations(0, 2**62, then) if d.key == load]
    assert _now_of(row.links.diagnosis_page) == [str(then // 1000)]


def test_a_finished_operation_judged_after_its_end_links_without_now():
    """Judged at a moment in the recording's past, but after all of its traces had ended:
    nothing was cut from it, so its page at its own clock answers the same (Jaeger, whose
    present is today, and the recording gave different links for the same --now)."""
    from opdiag.service import DiagnosisService
    from opdiag.sources.files import FileSource

    service = DiagnosisService(FileSource([REAL_KTRDR / "run1" / "traces"]), Settings())
    first = "op_training_20261204_154305_f6579e1a"
    then = parse_now("2026-12-04T15:52:00Z")
    done = service.diagnose(first, now_us=then)
    assert done.finished and _now_of(done.links.diagnosis_page) is None
    early = parse_now("2026-12-04T15:43:30Z")  # still training: a page now would judge later
    going = service.diagnose(first, now_us=early)
    assert not going.finished and _now_of(going.links.diagnosis_page) == [str(early // 1000)]


def test_an_answer_judged_at_the_end_of_a_recording_links_to_that_moment(snap: Path):
    """The CLI judges trace files at their end, a page opened without now at the wall clock:
    the in-flight training's link keeps the recording's end, or the page would call it
    stuck for as long as the files have lain there."""
    from opdiag.service import DiagnosisService
    from opdiag.sources.files import FileSource

    service = DiagnosisService(FileSource([snap]), Settings(), recording_clock=True)
    going = service.diagnose(KILLED)
    assert not going.finished
    assert _now_of(going.links.diagnosis_page) == [str(service.default_now_us() // 1000)]
