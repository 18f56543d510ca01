"""Golden models of the trace readers: what every fixture, restyled fixture and mutated
("hostile") input parses into, frozen as one digest per input.

The digests were written by the reader opdiag had before the single msgspec decoder (issue
10) and are checked against the current one by ``test_reader_golden.py``: both must give the
same model — every span field, attribute value and type, event, reference, warning, the
tree (roots and children order) and the error flag — or the same error message.

``--write`` writes them with the reader's general path (plain JSON values, the former reader's
code), never the typed path under test: run it when a model change is intended or a corpus is
re-recorded (the demo's), and check that only the expected entries change.

    python tests/reader_golden.py --write
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
GOLDEN = TESTS / "data" / "reader-golden" / "golden.json"
CORPORA = (
    TESTS / "data" / "reference" / "jaeger",
    REPO / "demo" / "traces",
    TESTS / "data" / "real-ktrdr" / "run1" / "traces",
)
MUTATION_BASES = (
    TESTS / "data" / "reference" / "jaeger" / "jaeger-ui__testTrace.json",
    TESTS / "data" / "reference" / "jaeger" / "jaeger__otlp2jaeger-in.json",
    TESTS / "data" / "reference" / "jaeger" / "jaeger-ui__genaiTestTrace.json",
)
MUTATIONS_PER_BASE = 150
STYLES: dict[str, Callable[[Any], str]] = {
    "compact": lambda d: json.dumps(d, separators=(",", ":")),
    "default": json.dumps,
    "indent2": lambda d: json.dumps(d, indent=2),
    "indent4": lambda d: json.dumps(d, indent=4),
    "sorted": lambda d: json.dumps(d, sort_keys=True, ensure_ascii=False),
}
_ODD_VALUES: tuple[Any, ...] = (
    None, 7, -1, 1.5, True, "x", "", [], {}, "\ud800", 10**20, "0", "true", [None], {"k": 1},
)


def model_view(traces: list[Any]) -> Any:
    """Everything a reader decides, as plain values (``repr`` keeps int/float/bool apart)."""
    out = []
    for t in sorted(traces, key=lambda t: t.trace_id):
        spans = [
            (
                s.trace_id, s.span_id, s.original_span_id, s.name, s.service, s.start_us,
                s.duration_us, s.kind, list(s.attributes.items()),
                [(e.name, e.time_us, list(e.attributes.items())) for e in s.events],
                [(r.ref_type, r.trace_id, r.span_id) for r in s.references],
                s.status, s.status_message, list(s.resource.items()), list(s.warnings),
                s.parent_id, s.error,
            )
            for s in t.spans
        ]
        tree = (
            [r.span_id for r in t.roots],
            sorted((k, [c.span_id for c in v]) for k, v in t.children.items()),
        )
        out.append((t.trace_id, spans, tree, list(t.warnings), t.first_start_us, t.last_end_us))
    return out


def outcome(parse: Callable[[bytes, str], list[Any]], data: bytes) -> str:
    """The digest of the model ``data`` parses into, or the error it gives."""
    from opdiag.errors import TraceFormatError

    try:
        traces = parse(data, "input")
    except TraceFormatError as exc:
        return "error: " + exc.message.removeprefix("input: ")
    except Exception as exc:  # a crash is an outcome too, and must not change silently
        return f"crash: {type(exc).__name__}"
    text = repr(model_view(traces))
    return "model " + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _corpus_files() -> Iterator[tuple[str, Path]]:
    for corpus in CORPORA:
        for path in sorted(corpus.rglob("*")):
            if path.is_file() and path.name.endswith((".json", ".jsonl", ".ndjson")):
                yield str(path.relative_to(REPO)), path


def _paths(node: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield here
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*here, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*here, i))


def _mutate(doc: Any, rng: random.Random) -> Any:
    doc = json.loads(json.dumps(doc))
    paths = [p for p in _paths(doc) if p]
    path = rng.choice(paths)
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if isinstance(parent, dict) and rng.random() < 0.25:
        del parent[last]
    else:
        parent[last] = rng.choice(_ODD_VALUES)
    return doc


def inputs() -> Iterator[tuple[str, bytes]]:
    """Every golden input: corpus files as they are, legacy and OTLP fixtures in every
    whitespace style, and seeded mutations of a few fixtures (values, shapes, bytes)."""
    for name, path in _corpus_files():
        data = path.read_bytes()
        yield name, data
        if name.startswith("tests/data/reference/"):
            try:
                doc = json.loads(data)
            except ValueError:
                continue
            for style, dump in STYLES.items():
                yield f"{name} [{style}]", dump(doc).encode("utf-8", "surrogatepass")
    for base in MUTATION_BASES:
        data = base.read_bytes()
        doc = json.loads(data)
        rng = random.Random(f"{base.name}-10")
        for i in range(MUTATIONS_PER_BASE):
            kind = rng.random()
            if kind < 0.1:
                cut = rng.randrange(1, len(data))
                mutated = data[:cut]
            elif kind < 0.15:
                pos = rng.randrange(len(data))
                mutated = data[:pos] + bytes([rng.randrange(256)]) + data[pos:]
            else:
                style = rng.choice(sorted(STYLES))
                mutated = STYLES[style](_mutate(doc, rng)).encode("utf-8", "surrogatepass")
            yield f"{base.name} mutation {i}", mutated


def compute(*, general: bool = False) -> dict[str, str]:
    """Outcomes of every input; ``general``: with the typed path switched off."""
    from opdiag.sources import readers

    typed = readers._typed
    if general:
        readers._typed = lambda data, source: None  # type: ignore[assignment]
    try:
        return {name: outcome(readers.parse_bytes, data) for name, data in inputs()}
    finally:
        readers._typed = typed


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(compute(general=True), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
