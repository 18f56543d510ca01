"""The demo corpus served by the replay Jaeger and read back by JaegerSource gives the same
traces as reading the files directly: every expected operation is found, whole, over both
api_v3 and the legacy API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from opdiag.devtools.replay_jaeger import ReplayJaeger
from opdiag.model import Trace, merge_traces
from opdiag.operations import NOISE_SPAN_PATTERNS, group_operations
from opdiag.settings import JaegerSettings
from opdiag.sources.jaeger import JaegerSource
from opdiag.sources.jaeger_query import window_span_names
from opdiag.sources.readers import read_file


@pytest.fixture(scope="module")
def expected(demo_traces: Path) -> dict:
    path = demo_traces / "expected.yaml"
    if not path.is_file():
        pytest.fail(f"demo corpus missing: {path}")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def corpus(demo_traces: Path) -> list[Trace]:
    files = sorted(p for p in demo_traces.iterdir() if p.suffix in {".json", ".jsonl"})
    return merge_traces(t for f in files for t in read_file(f))


def holding(corpus: list[Trace], ident: str) -> dict[str, int]:
    """Trace id -> span count of the corpus traces that hold ``ident``."""
    return {
        t.trace_id: len(t.spans)
        for t in corpus
        if t.trace_id == ident or any(s.attr("operation.id") == ident for s in t.spans)
    }


@pytest.fixture(params=["v2.20", "v1"])
def demo_source(
    request: pytest.FixtureRequest, demo_traces: Path, expected: dict
) -> Iterator[JaegerSource]:
    now = datetime.fromisoformat(expected["now"].replace("Z", "+00:00")).timestamp()
    with (
        ReplayJaeger(demo_traces, flavor=request.param) as server,
        # deep enough for the whole corpus (its background holds a health check every 10 s)
        JaegerSource(JaegerSettings(url=server.url, search_limit=5000),
                     clock=lambda: now) as source,
    ):
        assert not server.problems
        yield source


def test_every_expected_operation_is_found_whole(
    demo_source: JaegerSource, expected: dict, corpus: list[Trace]
):
    for ident in expected["operations"]:
        found = demo_source.traces_for(ident)
        assert {t.trace_id: len(t.spans) for t in found} == holding(corpus, ident), ident


def test_operations_spread_over_several_traces_are_found_whole(
    demo_source: JaegerSource, expected: dict, corpus: list[Trace]
):
    """A killed worker's operation (its own trace, then the orphan detector's), a cancelled one
    (its trace, then ``ktrdr cancel``'s): every trace that names the operation is found."""
    spread = {
        ident: row["scenario"]
        for ident, row in expected["operations"].items()
        if len(holding(corpus, ident)) >= 2
    }
    assert {"worker_lost_training_killed", "cancelled_training"} <= set(spread.values())
    for ident, scenario in spread.items():
        assert len(demo_source.traces_for(ident)) >= 2, scenario


def test_recent_traces_cover_every_operation_of_the_corpus(
    demo_source: JaegerSource, corpus: list[Trace]
):
    start = min(t.start_us for t in corpus)
    end = max(t.start_us for t in corpus) + 1
    found = {t.trace_id for t in demo_source.recent_traces(start, end, limit=len(corpus) + 1)}
    wanted = {t.trace_id for g in group_operations(corpus) for t in g.traces}
    assert wanted <= found
    left_out = [t for t in corpus if t.trace_id not in found]
    assert left_out  # the corpus has health checks and polling, never searched for
    for trace in left_out:  # nothing but noise and bare HTTP client spans
        assert window_span_names({s.name for s in trace.spans}, NOISE_SPAN_PATTERNS) == []
