"""One walk over the operation's spans for everything the later steps need from every span.

A 100k-span operation used to be walked once per step: noise, work spans for the gaps, worker
calls, declared values, ``when`` matches, span-rule candidates. Each of those looks at every
span only to keep a few, so they share this one walk and the steps get what was kept:

* noise: the spans the noise check calls transport noise (whole traces: the critical path
  is computed over the whole trace);
* work spans (``analysis.gaps``): neither noise nor below it, nor a root that has children;
* calls (``neighbours.workers_of``): client spans, and the first span of each worker service,
  with the latest end of each worker service;
* the spans that carry one of the pack's declared value keys (``{op:symbol}``);
* the ``when`` matches some span satisfies, and the spans that meet a span-rule candidate
  (``span_rules.meeting_of``: holding one of the candidates' ``key_gate`` keys).

Every decision that depends on a span's name, kind, error flag or service alone is
remembered (rule shape indexes, the noise check, worker services), so most spans cost a few
dict lookups. Pure: spans in, lists out, nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from opdiag.diagnosis.candidates import MAX_SHAPES
from opdiag.diagnosis.matching import SpanContext, match_span
from opdiag.diagnosis.rules import RuleSet, SpanMatch
from opdiag.diagnosis.span_rules import Meeting, any_status, key_gate, status_allows
from opdiag.diagnosis.timing import noise_ids
from opdiag.globs import Globs
from opdiag.model import CLIENT, Span, Trace, http_status

Walk = Sequence[tuple[Span, int]]
_BARE = SpanContext()


class Survey(msgspec.Struct):
    """What the walk kept; lists per walk are in the order of the walks."""

    noisy: list[set[str]] = msgspec.field(default_factory=list)  # the noise span ids of each trace
    work: list[list[Span]] = msgspec.field(default_factory=list)
    calls: list[Span] = msgspec.field(default_factory=list)
    worker_ends: dict[str, int] = msgspec.field(default_factory=dict)  # worker service -> last end
    valued: list[Span] = msgspec.field(default_factory=list)
    held: frozenset[int] = frozenset()  # id() of the ``when`` matches satisfied
    meeting: list[Meeting] = msgspec.field(default_factory=list)


def survey(
    walks: Sequence[tuple[Trace, Walk]],
    rules: RuleSet,
    is_noise: Callable[[Span], bool],
    worker_globs: Sequence[str],
) -> Survey:
    """Walk the scoped spans once (see the module docstring). ``is_noise`` is
    ``bottleneck.noise_check``'s kind of check: for a span that is not a client span, the
    name alone decides (it is asked once per name, service and shape)."""
    out = Survey()
    own_index, when_index = rules.own_index, rules.when_index
    # (name, kind, error) -> span-rule candidates and ``when`` matches, without and with an
    # exception recorded, whether that makes a difference, and the candidates' key gates
    shapes = rules.shapes
    when_left = len(when_index)
    held: set[int] = set()
    value_keys = rules.value_keys
    # per (name, kind, error, service): the shape, whether the service is a worker's, and
    # whether the name alone makes the span noise (client spans may be noise by their URL)
    local: dict[tuple[str, str, bool, str], tuple[Any, bool, bool]] = {}
    calls, worker_ends, valued = out.calls, out.worker_ends, out.valued
    is_worker = Globs.of(worker_globs).known
    # (id of a shape's ``when`` matches, HTTP status) -> those the status allows
    by_status: dict[tuple[int, int | None], tuple[Any, tuple[SpanMatch, ...]]] = {}
    # (id() of a when match, service) -> whether its service globs take the service
    by_service: dict[tuple[int, str], bool] = {}
    for trace, walk in walks:
        noisy: set[str] = set()
        below: set[str] = set()  # every span under noise that is not noise itself
        work: list[Span] = []
        meeting: Meeting = []
        children = trace.children
        for span, depth in walk:
            sid = span.span_id
            kind = span.kind
            service = span.service
            seen = local.get((span.name, kind, span.error, service))
            if seen is None:
                key = (span.name, kind, span.error)
                shape = shapes.get(key)
                if shape is None:
                    own, when = own_index.entry(key), when_index.entry(key)
                    differs = own[1] is not own[0] or when[1] is not when[0]
                    gates = (
                        key_gate(r.match for r in own[0]),
                        key_gate(r.match for r in own[1]),
                    )
                    tested = (any_status(when[0]), any_status(when[1]))
                    if len(shapes) >= MAX_SHAPES:  # span names that hold ids: no end to them
                        shapes.clear()
                    shape = shapes[key] = (*own, *when, differs, *gates, *tested)
                seen = local[(*key, service)] = (
                    shape,
                    is_worker(service),
                    kind != CLIENT and is_noise(span),
                )
            shape, worker, name_noise = seen
            if name_noise or (kind == CLIENT and is_noise(span)):
                noisy.add(sid)
            elif (parent := span.parent_id) is not None and (parent in noisy or parent in below):
                below.add(sid)
            elif depth or not children.get(sid):
                work.append(span)
            if worker:
                end = span.start_us + span.duration_us
                last = worker_ends.get(service)
                if last is None:
                    calls.append(span)  # the first span of a worker service
                    worker_ends[service] = end
                else:
                    if end > last:
                        worker_ends[service] = end
                    if kind == CLIENT:
                        calls.append(span)
            elif kind == CLIENT:
                calls.append(span)
            attrs = span.attributes
            if value_keys and not attrs.keys().isdisjoint(value_keys):
                valued.append(span)
            if shape[4] and (  # candidates.has_exception, inlined: 100k calls
                span.events or "exception.type" in attrs or "error.type" in attrs
            ):
                maybe, whens, gate, tested = shape[1], shape[3], shape[6], shape[8]
            else:
                maybe, whens, gate, tested = shape[0], shape[2], shape[5], shape[7]
            if when_left and whens:
                if tested:  # only the matches the span's HTTP status allows
                    code = http_status(span)
                    sieved = by_status.get((id(whens), code))
                    if sieved is None:
                        sieved = by_status[(id(whens), code)] = (
                            whens,  # (held: its id stays its)
                            tuple(m for m in whens if status_allows(m, code)),
                        )
                    whens = sieved[1]
                for m in whens:
                    if id(m) in held:
                        continue
                    if m.services is not None:  # decided once per service, not per span
                        ok = by_service.get((id(m), service))
                        if ok is None:
                            ok = by_service[(id(m), service)] = m.services(service)
                        if not ok:
                            continue
                    if match_span(m, span, _BARE)[0]:
                        held.add(id(m))
                        when_left -= 1
            if maybe and (gate is None or not attrs.keys().isdisjoint(gate)):
                meeting.append((span, depth, maybe))
        out.noisy.append(noisy if len(walk) == len(trace.spans) else noise_ids(trace, is_noise))
        out.work.append(work)
        out.meeting.append(meeting)
    out.held = frozenset(held)
    return out
