"""A run reduced to what a comparison needs of it: its ``RunProfile``.

The profile holds the run's phases on the worker side and the gaps between them
(``analysis.phases``), its error types, its data size and what makes it alike to other runs
(strategy, symbol), read once from the spans that hold it. The service keeps the profiles of
finished runs; the baseline (``diagnosis.baseline``) and the comparison
(``diagnosis.comparison``) read nothing else of a run. Pure: spans in, a profile out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter, methodcaller
from typing import Any

from opdiag.analysis.phases import PhaseProfile, phase_profile
from opdiag.diagnosis.bottleneck import noise_check
from opdiag.diagnosis.conditions import json_field, missing
from opdiag.diagnosis.facts import TERMINAL, scoped_walk
from opdiag.diagnosis.matching import exceptions_of
from opdiag.diagnosis.result import Diagnosis
from opdiag.globs import Globs
from opdiag.model import Span, Trace, lifecycle_status
from opdiag.settings import ComparisonSettings

_ALIKE_SPANS = 2_000  # alike values are read from this many spans at the operation's start


@dataclass(slots=True)
class RunProfile:
    """What a comparison needs of one run; small, kept per finished run by the service."""

    key: str
    operation_type: str | None
    started_at_ms: int
    duration_ms: float
    phases: PhaseProfile
    error_types: list[str] = field(default_factory=list)
    alike: dict[str, str] = field(default_factory=dict)
    verdict: str = "healthy"
    size: float | None = None  # how much data it processed (``ComparisonSettings.size``)
    status: str = "completed"  # the operation's status: a run that did not complete stopped
    # its work completed though its status is not (KTRDR's worker moves it to completed, then
    # fails it when saving that outcome raises: PostgreSQL down): its times are the work's
    work_completed: bool = False


_PHASES = RunProfile.__dict__["phases"]  # the slot the dataclass keeps ``phases`` in


class _LazyRunProfile(RunProfile):
    """A ``RunProfile`` whose phases are made when first read (``run_profile(lazy=True)``):
    a listing's rows read only the runs' starts, durations, sizes and alike values, unless a
    slow finding names the phase that changed most. Equal in every field to the eager one."""

    __slots__ = ("_make",)

    @property  # type: ignore[override]
    def phases(self) -> PhaseProfile:
        value: PhaseProfile | None = _PHASES.__get__(self, RunProfile)
        if value is None:
            value = self._make()
            _PHASES.__set__(self, value)
            del self._make
        return value

    @phases.setter
    def phases(self, value: PhaseProfile) -> None:
        _PHASES.__set__(self, value)


# --- one run ---------------------------------------------------------------------------------


def _field(raw: Any, path: str) -> Any:
    """A dotted field of a JSON-encoded attribute value (``None`` when absent or unreadable:
    ``conditions.json_field``)."""
    value = json_field(raw, path)
    return None if value is missing() else value


def _text(value: Any) -> str | None:
    """An alike value as text: lists joined by commas, empty and null values absent."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        parts = [str(v).strip() for v in value if v is not None and str(v).strip()]
        return ",".join(parts) or None
    if isinstance(value, Mapping):
        return None
    text = str(value).strip()
    return text if text and text.lower() not in {"none", "null"} else None


def alike_values(spans: Sequence[Span], sources: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Per alike name (``strategy``, ``symbol``), the value of its first source that one of the
    first ``_ALIKE_SPANS`` spans carries (what a run is about is said when it starts: the CLI's
    arguments, the registration, the first phase), the first carrier of a key winning."""
    early = [span.attributes for span in spans[:_ALIKE_SPANS]]
    first: dict[str, Any] = {}
    if len(early) == 1:  # a one-span run (a listing of many small ones)
        only = early[0]
        first = {key: only[key] for key in _source_keys(sources) if key in only}
    else:
        for key in _source_keys(sources):
            found = next(filter(methodcaller("__contains__", key), early), None)
            if found is not None:
                first[key] = found[key]
    out: dict[str, str] = {}
    for name, options in _parsed_sources(sources):
        for key, path in options:
            if key not in first:
                continue
            value = _text(_field(first[key], path) if path else first[key])
            if value is not None:
                out[name] = value
                break
    return out


_SOURCE_KEYS: dict[int, tuple[Mapping[str, Sequence[str]], frozenset[str]]] = {}
_PARSED: dict[
    int, tuple[Mapping[str, Sequence[str]], tuple[tuple[str, tuple[tuple[str, str], ...]], ...]]
] = {}


def _parsed_sources(
    sources: Mapping[str, Sequence[str]],
) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """``sources`` as (name, ((key, path), …)) pairs, ``key>path`` split once per mapping
    (held: its id stays its), not once per run of a listing."""
    known = _PARSED.get(id(sources))
    if known is not None and known[0] is sources:
        return known[1]
    parsed = tuple(
        (name, tuple((key, path) for key, _, path in (s.partition(">") for s in options)))
        for name, options in sources.items()
    )
    if len(_PARSED) >= 64:
        _PARSED.clear()
    _PARSED[id(sources)] = (sources, parsed)
    return parsed


def _source_keys(sources: Mapping[str, Sequence[str]]) -> frozenset[str]:
    """The attribute keys ``sources`` read (``key>path`` reads ``key``), kept per mapping
    (held: its id stays its): every run of a listing asks."""
    known = _SOURCE_KEYS.get(id(sources))
    if known is not None and known[0] is sources:
        return known[1]
    keys = frozenset(source.split(">", 1)[0] for options in sources.values() for source in options)
    if len(_SOURCE_KEYS) >= 64:
        _SOURCE_KEYS.clear()
    _SOURCE_KEYS[id(sources)] = (sources, keys)
    return keys


def data_size(spans: Iterable[Span], keys: Sequence[str]) -> float | None:
    """The first positive number one of ``keys`` holds on the spans (``data.rows`` on a
    data-loading phase): how much data the run processed. Its siblings of the same name
    that hold one add theirs: a phase repeated under one parent is the same step on more
    data (KTRDR's training loads each of its symbols in a ``training.data_loading`` of its
    own and trains on them all); a run's other spans that hold the key again (a backtest's
    ``backtest.feature_compute``, a resume's load in its own trace) hold the same data."""
    if not keys:
        return None
    spans = spans if isinstance(spans, Sequence) else list(spans)
    for at, span in enumerate(spans):
        for key in keys:
            number = _positive(span.attributes, key)
            if number is not None:
                return number + sum(
                    _positive(other.attributes, key) or 0.0
                    for other in spans[at + 1 :]
                    if other.name == span.name
                    and other.parent_id == span.parent_id
                    and other.trace_id == span.trace_id
                )
    return None


def _positive(attributes: Mapping[str, Any], key: str) -> float | None:
    """``attributes[key]`` as a positive finite number, or None."""
    if key not in attributes:
        return None
    value = attributes[key]
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit int
        return None
    return number if 0 < number < float("inf") else None


def error_types(spans: Iterable[Span]) -> list[str]:
    """Distinct exception types of the error spans (or ``error in <span>`` without one)."""
    found: set[str] = set()
    for span in spans:
        if not span.error:
            continue
        types = [e.type for e in exceptions_of(span) if e.type]
        found.update(types or [f"error in {span.name}"])
    return sorted(found)


def operation_spans(traces: Sequence[Trace], operation_id: str | None) -> list[Span]:
    """The spans of the operation, trace by trace in walk order (pre-order, children by
    start), context-only ancestors left out."""
    spans: list[Span] = []
    for trace in traces:
        walk, context = scoped_walk(trace, operation_id)
        if context:
            spans.extend(span for span, _ in walk if span.span_id not in context)
        else:
            spans.extend(map(itemgetter(0), walk))
    return spans


def run_profile(
    diagnosis: Diagnosis,
    traces: Sequence[Trace],
    settings: ComparisonSettings,
    noise_patterns: Sequence[str],
    *,
    lazy: bool = False,
) -> RunProfile:
    """The profile of one diagnosed run from the traces that hold it. ``lazy``: its phases
    are made when first read (the profile then holds the run's spans until they are)."""
    spans = operation_spans(traces, diagnosis.operation_id)
    if diagnosis.finished and diagnosis.ended_at_ms:
        # what came after its end is not its time: a failure the orphan detector recorded
        # a minute after the worker completed it (``facts``: its end leaves them out)
        last_us = (diagnosis.ended_at_ms + 1) * 1000
        spans = [s for s in spans if s.start_us <= last_us]

    def phases_of() -> PhaseProfile:
        is_worker = Globs.of(settings.worker_services)
        return phase_profile(
            spans,
            is_worker=is_worker,
            is_noise=noise_check(Globs.of(noise_patterns)),
            min_gap_us=int(settings.min_gap_ms * 1000),
            open_until_us=_open_until(diagnosis, spans, is_worker),
        )

    if lazy and diagnosis.started_at_ms and diagnosis.duration_ms is not None:
        profile = _LazyRunProfile(
            key=diagnosis.key,
            operation_type=diagnosis.operation_type,
            started_at_ms=int(diagnosis.started_at_ms),
            duration_ms=float(diagnosis.duration_ms),
            phases=None,  # type: ignore[arg-type]
            error_types=error_types(spans),
            alike=alike_values(spans, settings.alike),
            verdict=diagnosis.verdict,
            size=data_size(spans, settings.size),
            status=diagnosis.status,
            work_completed=_work_completed(diagnosis, spans),
        )
        profile._make = phases_of
        return profile
    phases = phases_of()
    return RunProfile(
        key=diagnosis.key,
        operation_type=diagnosis.operation_type,
        started_at_ms=int(diagnosis.started_at_ms or phases.start_us // 1000),
        duration_ms=float(
            diagnosis.duration_ms if diagnosis.duration_ms is not None else phases.duration_us / 1e3
        ),
        phases=phases,
        error_types=error_types(spans),
        alike=alike_values(spans, settings.alike),
        verdict=diagnosis.verdict,
        size=data_size(spans, settings.size),
        status=diagnosis.status,
        work_completed=_work_completed(diagnosis, spans),
    )


def _work_completed(diagnosis: Diagnosis, spans: Sequence[Span]) -> bool:
    """A run that failed after a transition of its own to completed."""
    return diagnosis.status == "failed" and any(
        lifecycle_status(s.attributes) == "completed" for s in spans
    )


def _open_until(
    diagnosis: Diagnosis, spans: Sequence[Span], is_worker: Callable[[str], bool]
) -> int | None:
    """Until when the worker's side of a run it did not close is open: now for a run in
    flight, its end for one KTRDR closed elsewhere (the orphan detector on the backend), and
    a lost worker's last answer (what came after, to the orphan detector's failure minutes
    later, was no work: ``engine._open_tail`` ends its bottleneck there too); None when it
    completed or its worker recorded the end (a cancel it answered)."""
    if diagnosis.status == "completed" or diagnosis.started_at_ms is None:
        return None
    if any(
        lifecycle_status(s.attributes) in TERMINAL and is_worker(s.service) for s in spans
    ):
        return None
    if diagnosis.worked_until_ms is not None:
        return int(diagnosis.worked_until_ms * 1000)
    return int((diagnosis.started_at_ms + (diagnosis.duration_ms or 0)) * 1000)
