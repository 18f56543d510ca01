"""``opdiag.gcpause.gc_paused``: the collector is off inside, and its previous state returns."""

from __future__ import annotations

import gc

import pytest
from opdiag.gcpause import gc_paused


@pytest.fixture
def collector_state():
    was_enabled = gc.isenabled()
    yield
    if was_enabled:
        gc.enable()
    else:
        gc.disable()


def test_paused_inside_and_restored_after(collector_state):
    gc.enable()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_disabled_collector_stays_disabled(collector_state):
    gc.disable()
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_nesting_restores_only_at_the_outer_exit(collector_state):
    gc.enable()
    with gc_paused():
        with gc_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_restored_when_the_block_raises(collector_state):
    gc.enable()
    with pytest.raises(ValueError), gc_paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_parsing_and_analysis_pause_the_collector(collector_state, monkeypatch):
    """The hot paths run under the pause (the readers and the analysis both use it)."""
    from opdiag.analysis import summary
    from opdiag.sources import readers

    seen: list[bool] = []
    real_parse, real_analyse = readers._parse_bytes, summary._analyse

    def parse_spy(data, source):
        seen.append(gc.isenabled())
        return real_parse(data, source)

    def analyse_spy(trace, reattach_async):
        seen.append(gc.isenabled())
        return real_analyse(trace, reattach_async)

    monkeypatch.setattr(readers, "_parse_bytes", parse_spy)
    monkeypatch.setattr(summary, "_analyse", analyse_spy)
    gc.enable()
    doc = (
        b'{"data":[{"traceID":"t1","processes":{"p1":{"serviceName":"svc"}},'
        b'"spans":[{"traceID":"t1","spanID":"s1","operationName":"op","startTime":1,'
        b'"duration":2,"processID":"p1"}]}]}'
    )
    traces = readers.parse_bytes(doc, "inline")
    summary.analyse(traces[0])
    assert seen == [False, False]
    assert gc.isenabled()
