"""Record the demo corpus: ``python -m ktrdr_sim.record --out demo/traces``.

Runs every scenario on a simulated clock with a seeded id generator, collects the SDK's spans
in memory and writes them in the formats opdiag reads (see ``demo/README.md``), plus
``expected.yaml``. The output is byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable, Sequence
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
from ktrdr_sim.noise import background_round
from ktrdr_sim.runtime import ProviderFactory, World

SEED = 20251122
BASE = datetime(2026, 11, 24, 8, 0, 0, tzinfo=UTC)
# `now` of expected.yaml: this long after the last span ended (the stuck training is silent
# at least this long, far beyond the 300 s threshold).
QUIET_AFTER_S = 42 * 60

FORMATS = {
    sc.BACKTESTS: "otlp-lines",
    sc.TRAININGS: "otlp-lines",
    sc.SLOW: "api-v3",
    sc.DISPATCH_FAILURES: "api-v3",
    sc.DATA_LOADS: "jaeger-envelope",
    sc.SPLIT_CLI: "jaeger-trace",
    sc.QUIRKS: "jaeger-quirks",
    "background": "otlp-lines",
}
NOISE_FILE = "background"
NOISE_FIRST_MIN = 3.0
NOISE_EVERY_MIN = 20.0
SUFFIX = {
    "otlp-lines": ".otlp.jsonl",
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
    """Spans by trace id (in first-seen order), which file each trace goes to, expectations."""

    traces: dict[str, list[ReadableSpan]] = field(default_factory=dict)
    # file → documents (OTLP lines, or traces to convert), each a list of trace ids
    files: dict[str, list[list[str]]] = field(default_factory=dict)
    expected: dict[str, dict[str, str]] = field(default_factory=dict)
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


def run_all(scenarios: Sequence[sc.Scenario] = sc.SCENARIOS) -> Recording:
    """Run the scenarios on the simulated timeline and collect what the SDK exported."""
    exporter = InMemorySpanExporter()
    base_ns = int(BASE.timestamp()) * NS_PER_S
    clock = SimClock(base_ns)
    world = World(clock, _provider_factory(exporter, SeededIdGenerator(random.Random(SEED))),
                  random.Random(SEED + 1))
    k = Ktrdr(world)
    for kind in ("backtesting", "backtesting", "training", "training"):
        k.start_worker(kind)
    rec = Recording()
    last_start = max(s.at_min for s in scenarios)
    rounds = [NOISE_FIRST_MIN + i * NOISE_EVERY_MIN
              for i in range(int((last_start - NOISE_FIRST_MIN) // NOISE_EVERY_MIN) + 1)]
    for scenario in scenarios:
        while rounds and rounds[0] < scenario.at_min:
            clock.set_ns(base_ns + round(rounds.pop(0) * 60 * NS_PER_S))
            order = _collect(rec, exporter, lambda: background_round(k), [])
            rec.files.setdefault(NOISE_FILE, []).append(order)  # one batch per line
        jitter_ns = world.rng.randrange(45 * NS_PER_S)  # users do not start on the minute
        clock.set_ns(base_ns + round(scenario.at_min * 60 * NS_PER_S) + jitter_ns)
        holder: list[RunResult] = []
        order = _collect(rec, exporter, lambda s=scenario, h=holder: h.append(s.run(k)),
                         holder)
        result = holder[0]
        for i, t in enumerate(order):
            target = scenario.file if i == 0 else EXTRA_TRACE_FILE.get(scenario.file,
                                                                       scenario.file)
            rec.files.setdefault(target, []).append([t])
        if scenario.keyed_by_trace or result.operation is None:
            key = order[0]
        else:
            key = result.operation.operation_id
        rec.expected[key] = {"verdict": scenario.verdict,
                             "operation_type": scenario.operation_type,
                             "scenario": scenario.name}
    world.shutdown()
    last_end = max(s.end_time or 0 for spans in rec.traces.values() for s in spans)
    now_s = -(-last_end // (60 * NS_PER_S)) * 60 + QUIET_AFTER_S
    rec.now = datetime.fromtimestamp(now_s, tz=UTC)
    return rec


def _collect(rec: Recording, exporter: InMemorySpanExporter, run: Callable[[], None],
             results: list[RunResult]) -> list[str]:
    """Run one piece of the timeline; file its new spans by trace; return their trace ids
    (the flow's own trace ids first, so the CLI trace leads)."""
    seen = len(exporter.get_finished_spans())
    run()
    new = exporter.get_finished_spans()[seen:]
    order = list(dict.fromkeys(t for r in results for t in r.trace_ids))
    order += [t for t in dict.fromkeys(_tid(s) for s in new) if t not in order]
    for t in order:
        rec.traces.setdefault(t, [])
    for s in new:
        rec.traces[_tid(s)].append(s)
    return order


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
        "# The verdict each operation of the demo corpus must get at `now`. Dispatch failures",
        "# create no operation id: they are keyed by the trace id of their CLI/dispatch trace.",
        f"now: \"{rec.now.strftime('%Y-%m-%dT%H:%M:%SZ')}\"",
        "operations:",
    ]
    for key, entry in rec.expected.items():
        lines.append(f"  \"{key}\":")
        lines.extend(f"    {field_}: {value}" for field_, value in entry.items())
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
