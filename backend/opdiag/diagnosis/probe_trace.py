"""A trace that is itself one of the background calls the pack's ``neighbours`` section reads.

opdiag shows the backend's health checks of a worker, its status reads from it and the IB
host service's ``ib.connect`` loop as evidence of other operations, each in its own trace; an
operator who opens one by its trace id asked about that call, not about a request. It was
judged as a request: a refused health check read as "did not answer the dispatch", status
``rejected``, "run the operation again", and the ``ib.connect`` asked about was left out of
its own count. Pure: traces in, values out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from typing import Any

from opdiag.diagnosis.facts import operation_id_of
from opdiag.diagnosis.neighbour_spec import NeighbourSpec
from opdiag.diagnosis.neighbours import clock_text, probe_failure
from opdiag.diagnosis.probes import Probe, WorkerView, probes_of
from opdiag.diagnosis.result import IN_FLIGHT
from opdiag.model import Span, Trace, lifecycle_status, url_of
from opdiag.operations import operation_route

__all__ = ["BACKGROUND", "is_background", "probe_values"]

# The status of such a trace: no request was made, so none was rejected or answered.
BACKGROUND = "background"


def is_background(
    walks: Sequence[tuple[Trace, Sequence[tuple[Span, int]]]], spec: NeighbourSpec
) -> bool:
    """Every root of the traces is a probe (``health_checks``) or a background span
    (``spans``): what is below a probe is the worker's answer to it."""
    roots = [span for _, walk in walks for span, depth in walk if depth == 0]
    if not roots or not (spec.health_checks or spec.spans):
        return False
    probed = {p.span_id for p in probes_of((t for t, _ in walks), spec.health_checks)}
    return all(
        span.span_id in probed
        or any(q.span == span.name and fnmatchcase(span.service, q.service) for q in spec.spans)
        for span in roots
    )


def probe_values(
    own: Sequence[Trace], near: Sequence[Trace], spec: NeighbourSpec
) -> dict[str, Any]:
    """``probe.*`` template values of a background probe's trace: the worker behind the
    address it called (named by the probes around it it answered), the call in words, and
    the operation it concerns: the one a status read names, else the run that worker was
    on then (its own state transitions). Empty for a trace that holds no probe."""
    mine = probes_of(own, spec.health_checks)
    if not mine:
        return {}
    probe = next((p for p in mine if not p.ok), mine[0])
    view = WorkerView.of(probes_of([*near, *own], spec.health_checks))
    service = view.service_at(probe.address, probe.time_us)
    who = f"{service} at {probe.address}" if service else f"the worker at {probe.address}"
    out: dict[str, Any] = {"probe.address": probe.address}
    if service:
        out["probe.service"] = service
    failure = probe_failure(probe)
    if failure is not None:
        out["probe.failure"] = failure
    if not probe.ok:
        again = view.first_answer(probe.address, probe.time_us)
        if again is None:
            out["probe.down"] = probe.address
        else:  # a process answers there again: the one that failed was replaced
            by = f" as {again.answered_by}" if again.answered_by else ""
            out["probe.again"] = f"at {clock_text(again.time_us)}{by}"
    read = operation_route(_path_of(probe, own) or "")  # the id alone, or /metrics and such
    if read is not None:
        op = read[0]
        out["probe.operation"] = op
        out["probe.call"] = f"read of {op} from {who}"
        out["probe.about"] = f"see the diagnosis of {op}"
        return out
    out["probe.call"] = f"health check of {who}"
    run = _run_on(near, service, probe.time_us) if service else None
    if run is not None:
        op, status = run
        out["probe.operation"] = op
        ran = f"was running {op}" if status in IN_FLIGHT else f"had last run {op} ({status})"
        out["probe.about"] = f"that worker {ran}: see its diagnosis"
    return out


def _path_of(probe: Probe, traces: Iterable[Trace]) -> str | None:
    """The URL the probe called."""
    for trace in traces:
        span = trace.by_id.get(probe.span_id)
        if span is not None:
            url = url_of(span)
            return url if isinstance(url, str) else None
    return None


def _run_on(near: Sequence[Trace], service: str, at_us: int) -> tuple[str, str] | None:
    """The operation whose state the worker ``service`` moved last up to ``at_us``, and to
    what status."""
    best: tuple[int, str, str] | None = None
    for trace in near:
        for span in trace.spans:
            if span.service != service or span.start_us > at_us:
                continue
            status = lifecycle_status(span.attributes)
            op = operation_id_of(span) if status else None
            if op is not None and status and (best is None or span.start_us >= best[0]):
                best = (span.start_us, op, status)
    return (best[1], best[2]) if best is not None else None
