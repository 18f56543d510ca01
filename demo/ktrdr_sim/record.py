"""Record the demo corpus: ``python -m ktrdr_sim.record --out demo/traces``.

Runs every scenario on a simulated clock with a seeded id generator, collects the SDK's spans
in memory and writes them in the formats opdiag reads (see ``demo/README.md``), plus
``expected.yaml``. The output is byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from ktrdr_sim import scenarios as sc
from ktrdr_sim.clock import NS_PER_S, SimClock
from ktrdr_sim.encode import to_otlp_json
from ktrdr_sim.ids import SeededIdGenerator
from ktrdr_sim.ktrdr import Ktrdr, RunResult
from ktrdr_sim.runtime import ProviderFactory, World

SEED = 20251122
BASE = datetime(2026, 11, 24, 8, 0, 0, tzinfo=UTC)
# `now` of expected.yaml: this long after the last span ended (the hung training is silent
# far beyond the 300 s stuck threshold by then).
QUIET_AFTER_S = 10 * 60
TAIL_S = 30.0  # the recording goes on this long after the last scenario ended
EXPORT_BATCH_S = 5.0  # BatchSpanProcessor's schedule delay: one background line per batch

FORMATS = {
    sc.BACKTESTS: "otlp-lines",
    sc.TRAININGS: "otlp-lines",
    sc.SLOW: "api-v3",
    sc.DISPATCH_FAILURES: "api-v3",
    sc.DATA_LOADS: "jaeger-envelope",
    sc.SPLIT_CLI: "jaeger-trace",
    sc.QUIRKS: "jaeger-quirks",
    "background": "otlp-batches",
}
NOISE_FILE = "background"
SUFFIX = {
    "otlp-lines": ".otlp.jsonl",
    "otlp-batches": ".otlp.jsonl",
    "api-v3": ".api_v3.json",
    "jaeger-envelope": ".jaeger.json",
    "jaeger-trace": ".jaeger-trace.json",
    "jaeger-quirks": ".jaeger.json",
}
# Where traces after the first one of a scenario go (the split scenario's worker trace lands
# in another file on purpose: the reader must merge an operation across files).
EXTRA_TRACE_FILE = {sc.SPLIT_CLI: sc.BACKTESTS}


@dataclass(slots=True)
class Recording:
    """Spans by trace id, which file each trace goes to, and the expectations."""

    traces: dict[str, list[ReadableSpan]] = field(default_factory=dict)
    # file -> documents (OTLP lines, or traces to convert), each a list of trace ids
    files: dict[str, list[list[str]]] = field(default_factory=dict)
    background: list[ReadableSpan] = field(default_factory=list)
    expected: dict[str, dict[str, Any]] = field(default_factory=dict)
    now: datetime = BASE


def _provider_factory(exporter: InMemorySpanExporter, ids: SeededIdGenerator) -> ProviderFactory:
    def make(resource: Resource) -> TracerProvider:
        provider = TracerProvider(
            resource=resource,
            id_generator=ids,
            sampler=ALWAYS_ON,
            span_limits=SpanLimits(
                max_attributes=128, max_events=128, max_links=128, max_span_attributes=128,
                max_event_attributes=128, max_link_attributes=128,
                max_attribute_length=SpanLimits.UNSET, max_span_attribute_length=SpanLimits.UNSET,
            ),
        )
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider

    return make


def run_all(steps: Sequence[sc.Step] = sc.STEPS) -> Recording:
    """Run the timeline on the simulated clock and file what the SDK exported."""
    exporter = InMemorySpanExporter()
    base_ns = int(BASE.timestamp()) * NS_PER_S
    clock = SimClock(base_ns)
    world = World(clock, _provider_factory(exporter, SeededIdGenerator(random.Random(SEED))),
                  random.Random(SEED + 1))
    stage = sc.Stage(Ktrdr(world))
    results: dict[str, RunResult] = {}

    def timeline() -> None:
        jobs = []
        for step in sorted(steps, key=lambda st: st.at_s):
            clock.sleep_until(base_ns + round(step.at_s * NS_PER_S))
            jobs.append(clock.background(lambda st=step: _run(st, stage, results)))
        for job in jobs:
            clock.join(job)
        stage.k.wait_all()
        clock.sleep(TAIL_S)

    clock.run(timeline)
    world.shutdown()
    return _file(steps, results, exporter.get_finished_spans())


def _run(step: sc.Step, stage: sc.Stage, results: dict[str, RunResult]) -> None:
    result = step.run(stage)
    if result is not None:
        results[step.name] = result


def _file(steps: Sequence[sc.Step], results: dict[str, RunResult],
          spans: Sequence[ReadableSpan]) -> Recording:
    """Each scenario's traces go to its file (in time order); every other trace is
    background; the expectations are keyed by operation id, or by the first trace id of a
    request that never became an operation."""
    rec = Recording()
    for sp in spans:
        rec.traces.setdefault(_tid(sp), []).append(sp)
    owned: dict[str, str] = {}
    for step in steps:
        if step.expect is None:
            continue
        result = results[step.name]
        for i, t in enumerate(result.trace_ids):
            if t in rec.traces and t not in owned:
                owned[t] = step.file if i == 0 else EXTRA_TRACE_FILE.get(step.file, step.file)
        key = result.trace_ids[0] if step.keyed_by_trace or result.operation is None \
            else result.operation.operation_id
        rec.expected[key] = _expectation(step, result)
    first_start = {t: min(s.start_time or 0 for s in ss) for t, ss in rec.traces.items()}
    for t in sorted(owned, key=lambda t: (first_start[t], t)):
        rec.files.setdefault(owned[t], []).append([t])
    rec.background = [sp for t, ss in rec.traces.items() if t not in owned for sp in ss]
    last_end = max(sp.end_time or 0 for sp in spans)
    now_s = -(-last_end // (60 * NS_PER_S)) * 60 + QUIET_AFTER_S
    rec.now = datetime.fromtimestamp(now_s, tz=UTC)
    return rec


def _expectation(step: sc.Step, result: RunResult) -> dict[str, Any]:
    expect = step.expect
    assert expect is not None
    facts = result.facts
    entry: dict[str, Any] = {
        "verdict": expect.verdict,
        "also_acceptable": list(expect.also_acceptable),
        "operation_type": step.operation_type,
        "scenario": step.name,
        "root_cause": None if expect.root_cause is None else {
            "service": expect.root_cause[0], "span": expect.root_cause[1]},
        "mentions": [m.format(**facts) for m in expect.mentions],
        "bottleneck": None if expect.bottleneck is None else {
            expect.bottleneck[0]: expect.bottleneck[1]},
        "truth": expect.truth.format(**facts),
    }
    return entry


def _tid(span: ReadableSpan) -> str:
    return format(span.context.trace_id, "032x")


def _sorted(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return sorted(spans, key=lambda s: (s.start_time or 0, s.context.span_id))


def _dump(obj: Any, *, pretty: bool = False) -> str:
    """Compact like an HTTP body, or indented like a file saved from the UI."""
    if pretty:
        return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n"


def render(rec: Recording) -> dict[str, str]:
    """File name → content, for every corpus file and expected.yaml."""
    out: dict[str, str] = {}
    out[NOISE_FILE + SUFFIX[FORMATS[NOISE_FILE]]] = "".join(
        json.dumps(to_otlp_json(_sorted(batch)), separators=(",", ":")) + "\n"
        for batch in _export_batches(rec.background))
    for name, units in rec.files.items():
        fmt = FORMATS[name]
        docs = [to_otlp_json(_sorted([s for t in unit for s in rec.traces[t]]))
                for unit in units]
        if fmt == "otlp-lines":
            text = "".join(json.dumps(d, separators=(",", ":")) + "\n" for d in docs)
        elif fmt == "api-v3":
            merged = [rs for d in docs for rs in d["resourceSpans"]]
            text = _dump({"result": {"resourceSpans": merged}})
        else:
            text = _render_jaeger(fmt, docs)
        out[name + SUFFIX[fmt]] = text
    out["expected.yaml"] = _expected_yaml(rec)
    return out


def _export_batches(spans: Sequence[ReadableSpan]) -> list[list[ReadableSpan]]:
    """What each process's BatchSpanProcessor would send: the spans one process ended within
    one schedule period, one export request (one line) each, in time order."""
    period = round(EXPORT_BATCH_S * NS_PER_S)
    batches: dict[tuple[int, str, int], list[ReadableSpan]] = {}
    for sp in spans:
        service = str(sp.resource.attributes.get("service.name", ""))
        key = ((sp.end_time or 0) // period, service, id(sp.resource))
        batches.setdefault(key, []).append(sp)
    order = sorted(batches, key=lambda k: (k[0], k[1], min(s.start_time or 0
                                                             for s in batches[k])))
    return [batches[k] for k in order]


def _render_jaeger(fmt: str, docs: list[dict[str, Any]]) -> str:
    from opdiag.sources.otlp2jaeger import otlp_to_jaeger

    traces = []
    for doc in docs:
        if fmt == "jaeger-quirks":
            converted = otlp_to_jaeger(doc, scope_tags="library")
            _stringify_bools(converted)
        else:
            converted = otlp_to_jaeger(doc)
        traces.extend(converted.get("data", [converted]))
    if fmt == "jaeger-trace":
        if len(traces) != 1:
            raise ValueError(f"a single-trace file needs exactly one trace, got {len(traces)}")
        return _dump(traces[0], pretty=True)
    return _dump({"data": traces, "total": 0, "limit": 0, "offset": 0, "errors": None})


def _stringify_bools(envelope: dict[str, Any]) -> None:
    """Jaeger quirk seen in captures: ``{"type": "bool", "value": "true"}`` (a string)."""
    for tr in envelope.get("data", []):
        for sp in tr["spans"]:
            for tag in sp["tags"]:
                if tag["type"] == "bool":
                    tag["value"] = "true" if tag["value"] else "false"


def _expected_yaml(rec: Recording) -> str:
    lines = [
        "# Generated by `python -m ktrdr_sim.record`; do not edit.",
        "# What a correct diagnosis of each operation of the demo corpus says at `now`, with the",
        "# keys of tests/data/real-ktrdr/run1/cases.yaml: verdict (and also_acceptable ones),",
        "# root_cause (service fnmatch pattern and span name, null when there is none), words the",
        "# summary must contain (mentions), bottleneck ({span: NAME} or {gap_after: NAME}, null:",
        "# not judged), truth. Requests that never became an operation (400, 500, 503) are keyed",
        "# by the trace id of their CLI (or curl) trace.",
        f"now: \"{rec.now.strftime('%Y-%m-%dT%H:%M:%SZ')}\"",
        "operations:",
    ]
    for key, entry in rec.expected.items():
        lines.append(f"  \"{key}\":")
        lines.extend(f"    {name}: {json.dumps(value, ensure_ascii=False)}"
                     for name, value in entry.items())
    return "\n".join(lines) + "\n"


def write(out_dir: Path, files: dict[str, str]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out_dir / name).write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo/traces"))
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when --out differs from a fresh recording")
    args = parser.parse_args(argv)
    files = render(run_all())
    if args.check:
        stale = check(args.out, files)
        for name in stale:
            print(f"ktrdr_sim.record: {args.out / name} is stale or unexpected")
        return 1 if stale else 0
    write(args.out, files)
    return 0


def check(out_dir: Path, files: dict[str, str]) -> list[str]:
    """Names of files that differ, are missing, or should not be in ``out_dir``."""
    present = {p.name for p in out_dir.iterdir()} if out_dir.is_dir() else set()
    stale = [name for name, text in files.items()
             if name not in present or (out_dir / name).read_text(encoding="utf-8") != text]
    return sorted(stale + [name for name in present - files.keys()])


if __name__ == "__main__":
    raise SystemExit(main())
