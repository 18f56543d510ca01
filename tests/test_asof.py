"""A diagnosis at ``now`` sees what had happened by ``now``: a span is exported when it ends,
so a moment in a recording's past sees the spans that had ended by then (``opdiag.asof``),
through every entry of the service (one diagnosis, the listing, baselines, neighbours)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REAL_KTRDR
from opdiag.asof import as_of, trace_as_of
from opdiag.errors import NotFoundError
from opdiag.model import CHILD_OF, ORPHANS_WARNING, Reference, Span, build_trace
from opdiag.service import DiagnosisService
from opdiag.settings import Settings
from opdiag.sources.files import FileSource
from opdiag.sources.jaeger import JaegerSource
from opdiag.timeutil import parse_now

RUN = REAL_KTRDR / "run1"
KILLED = "op_training_20261204_160033_fcc59c1d"  # its worker killed at 16:00:59, failed 16:07:08
CANCELLED = "op_training_20261204_154638_11134ee7"  # cancelled at 15:47:30
T0 = 1_796_399_000_000_000


def _span(sid: str, start: int, end: int, parent: str | None = None) -> Span:
    refs = [Reference(CHILD_OF, "a" * 32, parent)] if parent else []
    return Span("a" * 32, sid, sid, "svc", T0 + start, end - start, references=refs)


def test_a_trace_at_a_moment_holds_the_spans_that_had_ended_by_then():
    whole = build_trace(
        "a" * 32,
        [_span("root", 0, 100), _span("early", 10, 20, "root"), _span("late", 30, 90, "root"),
         _span("in-late", 40, 50, "late"), _span("after", 95, 99, "root")],
    )
    seen = trace_as_of(whole, T0 + 60)
    assert seen is not None
    assert sorted(s.span_id for s in seen.spans) == ["early", "in-late"]
    # their parents were still open (not exported yet): roots, and the warning says so
    assert {s.span_id for s in seen.roots} == {"early", "in-late"}
    assert len(seen.warnings) == 1 and seen.warnings[0].endswith(ORPHANS_WARNING)
    assert seen.end_us == T0 + 50
    # the whole trace is not changed
    assert whole.by_id["in-late"].parent_id == "late" and not whole.warnings
    assert trace_as_of(whole, T0 + 100) is whole
    assert trace_as_of(whole, T0 + 15) is None  # nothing had ended
    assert trace_as_of(whole, T0 - 1) is None  # nothing had started
    assert as_of([whole, whole], T0 + 15) == []


@pytest.fixture(scope="module")
def service() -> DiagnosisService:
    return DiagnosisService(FileSource([RUN / "traces"]), Settings())


def _at(service: DiagnosisService, ident: str, now: str) -> Any:
    return service.diagnose(ident, now_us=parse_now(now))


def test_a_diagnosis_in_the_recordings_past_does_not_see_its_future(service):
    """At 16:00:40 the training had run 7 s: the orphan detector's failure (16:07:08) and the
    failed health checks of its killed worker (from 16:01:04) had not happened yet."""
    d = _at(service, KILLED, "2026-12-04T16:00:40Z")
    assert (d.status, d.finished, d.verdict) == ("running", False, "healthy"), d.summary
    assert "orphan" not in d.summary and "16:07" not in d.summary
    assert d.duration_ms < 8_000
    assert not d.evidence_trace_ids
    # 2 min after the kill the health checks say it, as a snapshot taken then does
    d = _at(service, KILLED, "2026-12-04T16:02:42Z")
    assert (d.status, d.verdict) == ("running", "worker_lost"), d.summary
    # the present is the whole recording
    d = _at(service, KILLED, "2026-12-04T16:10:00Z")
    assert (d.status, d.verdict) == ("failed", "worker_lost"), d.summary


def _snapshot_cases() -> list[Any]:
    cases = yaml.safe_load((RUN / "cases.yaml").read_text("utf-8"))
    return [
        pytest.param(c, id=f"{c['id'][:24]}-{c['upto']}") for c in cases if c.get("upto")
    ]


@pytest.mark.parametrize("case", _snapshot_cases())
def test_the_whole_recording_at_a_snapshots_clock_answers_as_the_snapshot(service, case):
    """cases.yaml's snapshots are the directory as it was at their clock; the whole directory
    judged at that clock holds the same spans (and those exported later that had ended)."""
    d = _at(service, case["id"], case["now"])
    assert d.verdict in [case["verdict"], *case["also_acceptable"]], d.summary
    assert not d.finished and d.status == "running"


def test_a_listing_in_the_past_shows_each_operation_as_it_was(service):
    now = parse_now("2026-12-04T15:47:10Z")
    rows = {d.key: d for d in service.operations(0, 2**62, now)}
    assert KILLED not in rows  # it started at 16:00:33
    assert all(d.started_at_ms * 1000 <= now for d in rows.values())
    cancelled = rows[CANCELLED]  # cancelled at 15:47:30, running at 15:47:10
    assert (cancelled.status, cancelled.finished) == ("running", False)
    assert rows[CANCELLED].verdict != "cancelled"


def test_past_and_present_answers_are_cached_apart(service):
    now = _at(service, CANCELLED, "2026-12-04T16:10:00Z")
    then = _at(service, CANCELLED, "2026-12-04T15:47:10Z")
    again = _at(service, CANCELLED, "2026-12-04T16:10:00Z")
    assert now.verdict == again.verdict == "cancelled"
    assert then.status == "running"
    # a moment when it had finished caches under that moment, not as the present's answer
    ended = _at(service, CANCELLED, "2026-12-04T15:47:40Z")
    assert ended.status == "cancelled"
    assert _at(service, CANCELLED, "2026-12-04T15:47:10Z").status == "running"


def test_before_an_operation_started_it_is_not_there_yet(service, tmp_path: Path):
    with pytest.raises(NotFoundError) as info:
        _at(service, KILLED, "2026-12-04T16:00:00Z")
    message = info.value.message
    assert "had not started by 2026-12-04T16:00:00.000Z" in message
    assert "starts at 2026-12-04T16:00:33.514Z" in message


def test_a_moment_less_than_a_minute_before_the_sources_latest_is_its_present(service):
    """Hosts' clocks and the moments people give (a file name's second, a rounded --now) are
    that far apart: a snapshot judged at its own clock keeps its last spans. Jaeger's latest
    moment is its clock (spans of a host whose clock runs ahead arrive 'from the future')."""
    latest = service.source.latest_us()
    assert not service._at(latest - 59_000_000).past
    assert service._at(latest - 61_000_000).past
    settings = Settings.model_validate({"jaeger": {"url": "http://127.0.0.1:9"}})
    source = JaegerSource(settings.jaeger, clock=lambda: 1_800_000_000.0)
    try:
        jaeger = DiagnosisService(source, settings)
        assert source.latest_us() == 1_800_000_000_000_000
        assert not jaeger._at(1_800_000_000_000_000 - 59_000_000).past
        assert jaeger._at(1_800_000_000_000_000 - 61_000_000).past
    finally:
        source.close()
