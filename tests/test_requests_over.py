"""A request that never became an operation (a 400, 500 or 503 to ``ktrdr backtest`` or
``train``) is over once it was answered and none of its spans is open: finished, ``rejected``
(or ``answered``), and its links bounded like a finished operation's, a minute either side.
Its diagnosis is final, and the verdict store's record settled, only ``REQUEST_SETTLE_MS``
later: the backend's spans come in batches after the command's."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import REAL_KTRDR
from opdiag.diagnosis.result import REQUEST_SETTLE_MS, REQUEST_STATUSES, STATUSES
from opdiag.model import CHILD_OF, SERVER, Reference, Span, Trace, build_trace
from opdiag.render.rows import operation_row
from opdiag.service import DiagnosisService
from opdiag.settings import Settings
from opdiag.sources.files import FileSource
from opdiag.store.records import record_of
from opdiag.timeutil import parse_now

RUN = REAL_KTRDR / "run1"
NOW = parse_now("2026-12-04T16:10:00Z")
REQUESTS = [  # run1's requests that never became an operation
    "130b9d9f69516b61e83c71469f143f68",
    "00c1cc50b6463135decf4ee498c45941",
    "aa55bbc3fbca0e6aeab4d702dea68d03",
    "ba9b00b84b794c4b36caeec9527bc209",
    "1880c513804fedc10d7c942896c05f57",
    "34a15514715bc381388f7b067c3def15",
    "d542d365f48bef80f486115f0dd94cd2",
    "802fbf6a818b8b57d1db38568ed7862f",
]
# operations that failed within a second, their time spread over many calls
QUICK_FAILURES = [
    "op_data_load_20261204_154431_10ad325f",
    "op_backtesting_20261204_154627_d7e27c97",
]
S = 1_000_000
T0 = 1_796_399_000 * S


@pytest.fixture(scope="module")
def service() -> DiagnosisService:
    return DiagnosisService(FileSource([RUN / "traces"]), Settings())


def _bounds(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


@pytest.mark.parametrize("ident", REQUESTS)
def test_a_request_answered_and_over_is_finished_with_bounded_links(service, ident):
    d = service.diagnose(ident, now_us=NOW)
    assert (d.status, d.finished) == ("rejected", True), d.summary
    assert d.comparison is None  # nothing to compare with good runs
    start, end = str(d.started_at_ms - 60_000), str(d.ended_at_ms + 60_000)
    assert _bounds(d.links.diagnosis_page) == {"from": [start], "to": [end]}
    assert _bounds(d.links.grafana_dashboard)["to"] == [end]  # not "now"
    row = operation_row(d)
    assert row.finished and row.status == "rejected"
    assert _bounds(row.diagnosis_url) == {"from": [start], "to": [end]}


def test_a_request_whose_command_still_retries_is_not_over(service):
    """At 15:51:00 the CLI had sent its backtest three times (500 each) and was waiting to
    try again: its own span (cli.backtest, ended 15:51:03.9) was still open."""
    now = parse_now("2026-12-04T15:51:00Z")
    d = service.diagnose("ba9b00b84b794c4b36caeec9527bc209", now_us=now)
    assert (d.status, d.finished) == ("unknown", False)
    assert "to" not in _bounds(d.links.diagnosis_page)


def test_the_request_statuses_are_in_the_contract():
    assert set(REQUEST_STATUSES) <= set(STATUSES) and "unknown" in STATUSES


def _span(sid: str, name: str, start: int, dur: int, *, parent: str | None = None,
          kind: str = "internal", service: str = "ktrdr-api", **attrs: Any) -> Span:
    tid = "e" * 32
    return Span(tid, sid, name, service, T0 + start, dur, kind=kind, attributes=dict(attrs),
                references=[Reference(CHILD_OF, tid, parent)] if parent else [])


def _refused(*, orphan: bool = False, status: int = 503) -> Trace:
    """A start answered ``status`` (sent with curl: the server span is the root), or seen
    from a command whose own span is not exported yet (``orphan``)."""
    return build_trace("e" * 32, [
        _span("s1", "POST /api/v1/backtests/start", 0, 40_000, kind=SERVER,
              parent="c0" if orphan else None, **{"http.status_code": status}),
        _span("s2", "workers.select", 1_000, 100, parent="s1", **{
            "worker.total_workers": "1", "worker.capable_workers": "1",
            "worker.available_workers": "0", "worker.selection_status": "no_workers_available",
        }),
    ])


class _Source:
    def __init__(self, traces: list[Trace]) -> None:
        self.traces = traces

    def describe(self) -> str:
        return "memory"

    def traces_for(self, ident: str, window: Any = None) -> list[Trace]:
        return [t for t in self.traces if t.trace_id == ident]

    def recent_traces(self, start_us: int, end_us: int, limit: int = 500) -> list[Trace]:
        return list(self.traces)

    def neighbour_traces(self, *args: Any) -> list[Trace]:
        return []


def _diagnose(trace: Trace, after_s: float) -> Any:
    service = DiagnosisService(_Source([trace]), Settings())
    return service.diagnose(trace.trace_id, now_us=trace.end_us + int(after_s * S))


def test_a_request_with_a_span_whose_parent_is_not_there_is_not_over_until_it_settles():
    """A span is exported when it ends: a parent not there yet is still open (the command
    retrying), unless nothing happened for REQUEST_SETTLE_MS (a parent that never comes)."""
    assert _diagnose(_refused(), 1).finished
    waiting = _diagnose(_refused(orphan=True), 1)
    assert (waiting.status, waiting.finished) == ("unknown", False)
    settled = _diagnose(_refused(orphan=True), REQUEST_SETTLE_MS / 1000)
    assert (settled.status, settled.finished) == ("rejected", True)


def test_a_request_answered_without_an_error_is_answered():
    d = _diagnose(_refused(status=200), 1)
    assert (d.status, d.finished) == ("answered", True)
    assert (_diagnose(_refused(status=400), 1).status) == "rejected"  # not an error span


def test_a_request_just_over_is_recomputed_and_its_record_not_settled_yet():
    """Its backend's spans may still come: the service keeps no answer of it and the store
    settles it a minute after its end, as before."""
    trace = _refused()
    service = DiagnosisService(_Source([trace]), Settings())
    now = trace.end_us + 5 * S
    first = service.diagnose(trace.trace_id, now_us=now)
    assert first.finished
    assert service.diagnose(trace.trace_id, now_us=now) is not first  # not cached
    assert not record_of(first, now // 1000).settled
    later = now + REQUEST_SETTLE_MS * 1000
    final = service.diagnose(trace.trace_id, now_us=later)
    assert service.diagnose(trace.trace_id, now_us=later) is final  # cached: it is final
    assert record_of(final, later // 1000).settled


def test_no_bottleneck_is_named_below_its_minimum_share(service):
    """12cba25: a refused request whose CLI waited between its retries read 'POST …, 0 % of
    the critical path'. Below ``diagnosis.min_bottleneck_share`` none is named; lowered to
    0 the same operations name one again, with the same verdict. A request refused before it
    became an operation names none at any share: it did no work to speed up ("training.start
    59.1ms, 70 %" beside a 503 read as a lead; changed deliberately, it named one at 0)."""
    import dataclasses

    named = {i: service.diagnose(i, now_us=NOW).bottleneck for i in (*REQUESTS, *QUICK_FAILURES)}
    assert all(b is None or b.share >= 0.1 for b in named.values())
    unnamed = [i for i, b in named.items() if b is None]
    assert len(unnamed) >= 4 and set(QUICK_FAILURES) <= set(unnamed)
    settings = Settings()
    settings = dataclasses.replace(
        settings, diagnosis=dataclasses.replace(settings.diagnosis, min_bottleneck_share=0.0)
    )
    everything = DiagnosisService(FileSource([RUN / "traces"]), settings)
    for ident in unnamed:
        d = everything.diagnose(ident, now_us=NOW)
        if ident in REQUESTS:
            assert d.status == "rejected" and d.bottleneck is None, ident
        else:
            assert d.bottleneck is not None and d.bottleneck.share < 0.1
        assert d.verdict == service.diagnose(ident, now_us=NOW).verdict
