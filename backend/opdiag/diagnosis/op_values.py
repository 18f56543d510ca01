"""Operation-level template values: lifecycle, where it is, bottleneck, worker, and the
pack's declared values (``{op:symbol}``), so summaries and commands carry the operation's own.

They are made a group at a time, when a template first asks for one of the group: most
operations fire a single rule that reads ``minutes`` and ``operation.id``, and a listing of
200k operations would otherwise format every worker's clock and search every span for the
declared values 200k times for nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from opdiag.diagnosis.bottleneck import Choice
from opdiag.diagnosis.conclusion import duration_text, minutes_text
from opdiag.diagnosis.conditions import json_field
from opdiag.diagnosis.facts import OperationFacts
from opdiag.diagnosis.neighbours import WorkerAssessment, clock_text
from opdiag.diagnosis.occupancy import Held, describe
from opdiag.diagnosis.templates import OPERATION_VALUE_PREFIX, listed_items
from opdiag.model import Span

_WORKER_PREFIX = "worker."
# In the base group, where a time text stands until it is read (``OperationValues._later``
# says how it is made): a rule reads one or two of the seven, and a listing would format
# all of them for every operation.
_LATER: Any = object()


class OperationValues:
    """``get`` and ``full`` over one operation's template values. The groups are disjoint
    by key: ``worker.*`` from the worker assessment, ``op:*`` from the declared values,
    everything else made at once (cheap, and read by nearly every rule) but its time texts,
    each formatted when first read (a rule reads one or two of them)."""

    __slots__ = (
        "_declared", "_keys", "_later", "_operation_type", "_valued", "_values", "_workers",
        "start_us",
    )

    def __init__(
        self,
        base: dict[str, Any],
        *,
        workers: WorkerAssessment,
        operation_type: str | None,
        valued: Sequence[Span],
        declared: dict[str, tuple[str, ...]],
        later: dict[str, tuple[Callable[[Any], Any], Any]] | None = None,
        start_us: int | None = None,
    ) -> None:
        self._values = base
        # when the operation started: a span's own ``{cancel_in}`` is counted from it
        self.start_us = start_us
        # the base values still ``_LATER`` in ``base`` (kept in their place: ``full``'s
        # order is the base's): how each is made from what
        self._later = later or {}
        # each group's source until the group is made, then None
        self._workers: WorkerAssessment | None = workers
        self._operation_type = operation_type
        self._valued = valued
        self._declared: dict[str, tuple[str, ...]] | None = declared
        self._keys = declared  # kept after the group is made: ``for_span`` reads them

    def _make_workers(self) -> None:
        if self._workers is not None:
            self._values.update(self._workers.values(self._operation_type))
            self._workers = None

    def _make_declared(self) -> None:
        if self._declared is not None:
            self._values.update(declared_values(self._valued, self._declared))
            self._declared = None

    def get(self, key: str, default: Any = None) -> Any:
        if key.startswith(_WORKER_PREFIX):
            self._make_workers()
        elif key.startswith(OPERATION_VALUE_PREFIX):
            self._make_declared()
        value = self._values.get(key, default)
        if value is _LATER:
            make, source = self._later[key]
            value = self._values[key] = make(source)
        return value

    def for_span(self, key: str, span: Span | None, said: str | None = None) -> Any:
        """``get``, but where the operation's value lists several (a training on
        ``EURUSD,ZZZZ`` or on ``1h,4h,1d``: KTRDR's worker names it by all of them), the
        one the rule's span is about: the one it carries under a declared key (ZZZZ's
        ``training.data_loading``), else the only one its error ``said`` names ('Failed
        to load base timeframe 1h for ZZZZ'). A summary or command about that span is
        about it, and ``ktrdr data load EURUSD,ZZZZ`` or ``--timeframe 1h,4h,1d`` loads
        nothing."""
        value = self.get(key)
        if span is None or not isinstance(value, str) or "," not in value:
            return value
        several = listed_items(value)
        for attr in self._keys.get(key.removeprefix(OPERATION_VALUE_PREFIX), ()):
            own = span.attributes.get(attr)  # a ``key#path`` is no span attribute
            if isinstance(own, str) and own in several:
                return own
        if said:
            named = [item for item in several if _names(said, item)]
            if len(named) == 1:
                return named[0]
        return value

    def full(self) -> dict[str, Any]:
        """Every value (a slow rule's evidence takes them all)."""
        self._make_workers()
        self._make_declared()
        for key, (make, source) in self._later.items():
            if self._values[key] is _LATER:
                self._values[key] = make(source)
        return dict(self._values)


def operation_values(
    facts: OperationFacts,
    choice: Choice,
    ident: str,
    now_us: int,
    *,
    workers: WorkerAssessment,
    valued: Sequence[Span],
    declared: dict[str, tuple[str, ...]],
    quiet_since_us: int | None = None,
    held: Sequence[Held] = (),
    probe: dict[str, Any] | None = None,
    quiet_ms: float | None = None,
    answered_again_us: int | None = None,
) -> OperationValues:
    """The operation's template values (see ``OperationValues``); ``valued``: its spans
    that carry a key of the pack's ``declared`` values, in walk order; ``quiet_since_us``:
    when the last span of any service ended, when that is long ago; ``quiet_ms``: how long
    its work has been quiet while its worker answers (``Diagnosis.quiet_ms``);
    ``answered_again_us``: when its refused status reads were answered again
    (``diagnosis.answered_again``)."""
    duration_us, idle_us = facts.duration_us, facts.idle_us
    values: dict[str, Any] = {
        "operation.id": facts.operation_id,
        "operation.type": facts.operation_type,
        "operation.status": facts.status,
        "phase": facts.phase,
        "where": facts.where,
        "minutes": _LATER,
        "idle_minutes": _LATER,
        "duration": _LATER,
        "idle": _LATER,
        "trace_count": facts.trace_count,
        "error_spans": facts.error_spans,
        "ident": ident,
    }
    later: dict[str, tuple[Callable[[Any], Any], Any]] = {
        "minutes": (minutes_text, duration_us),
        "idle_minutes": (minutes_text, idle_us),
        "duration": (duration_text, duration_us),
        "idle": (duration_text, idle_us),
    }
    late, done = facts.failed_late, facts.last_transition
    if late is not None and done is not None:  # failed after it had completed
        values["completed.service"] = done.service
        values["failed_after"] = duration_text(max(0, late.start_us - done.start_us))
    busy_with = describe(held, facts.start_us)
    if busy_with is not None:
        values["worker.busy_with"] = busy_with
    running = [h for h in held if h.running]
    if running:  # the run to cancel to free a worker now: the one running longest
        values["worker.busy_op"] = min(running, key=lambda h: h.at_us).operation_id
    if facts.unrecorded_us:  # no status to keep: KTRDR never saved it
        values["unrecorded"] = clock_text(facts.unrecorded_us)
    elif not facts.finished:
        values["in_flight"] = facts.status
    elif facts.status == "failed" and done is not None and late is None and not facts.followed:
        values["outcome"] = _outcome(done)
    if probe:  # a background probe's own trace (diagnosis.probe_trace)
        values.update(probe)
    if quiet_since_us is not None:
        values["quiet_since"] = clock_text(quiet_since_us)
    if quiet_ms is not None:
        values["quiet"] = duration_text(quiet_ms * 1000)
    if answered_again_us is not None:
        values["answered_again"] = clock_text(answered_again_us)
    if facts.unlinked_caller is not None:
        values["unlinked_calls"] = facts.unlinked_calls
        values["caller.service"] = facts.unlinked_caller.service
    if facts.phase_span is not None:
        values["phase_minutes"] = _LATER
        later["phase_minutes"] = (minutes_text, max(0, now_us - facts.phase_span.start_us))
        since = facts.where_since_us
    else:  # no phase yet: how long ago it started
        since = facts.start_us
    values["where_minutes"] = _LATER
    values["where_ago"] = _LATER
    later["where_minutes"] = (minutes_text, max(0, now_us - since))
    later["where_ago"] = (duration_text, max(0, now_us - since))
    result = choice.result
    if result is not None:
        values["bottleneck"] = result.text
        values["bottleneck.service"] = result.service
        values["bottleneck.named"] = result.named
        values["share"] = f"{round(result.share * 100)} %"
    return OperationValues(
        values,
        workers=workers,
        operation_type=facts.operation_type,
        valued=valued,
        declared=declared,
        later=later,
        start_us=facts.start_us,
    )


def _names(text: str, item: str) -> bool:
    """Does ``text`` name ``item`` as a word of its own ('1h' in 'timeframe 1h for', not
    in '21h')?"""
    return re.search(rf"(?<![\w.]){re.escape(item)}(?![\w])", text) is not None


def _outcome(done: Span) -> str:
    """How the operation ended, as its service recorded it (``failed at 16:07:08 UTC:
    "Operation was RUNNING but no worker claimed it"``): what the job system's own status
    command shows, so a step can say the end happened rather than that it will."""
    error = done.attributes.get("operation.error")
    # KTRDR wraps an empty inner message: "Request timed out after 4 attempts: "
    text = error.strip().rstrip(":").rstrip() if isinstance(error, str) else ""
    said = f": \"{text}\"" if text else ""
    return f"failed at {clock_text(done.start_us)}{said}"


def declared_values(
    valued: Sequence[Span], declared: dict[str, tuple[str, ...]]
) -> dict[str, Any]:
    """``op:NAME`` for each ``operation.values`` entry: the first span (in walk order) that
    has one of its attribute keys; ``key#a.b`` reads a path inside a JSON text attribute.
    ``valued``: the operation's spans that carry any of the keys, in walk order."""
    if not declared:
        return {}
    wanted = {name: keys for name, keys in declared.items()}
    # the keys of the values still wanted, once one is found: the spans the survey keeps
    # carry one of the pack's keys, so the first ones need no test
    wanted_keys: frozenset[str] | None = None
    out: dict[str, Any] = {}
    for span in valued:
        attrs = span.attributes
        if wanted_keys is not None and attrs.keys().isdisjoint(wanted_keys):
            continue
        for name in list(wanted):
            for key in wanted[name]:
                attr, _, path = key.partition("#")
                raw = attrs.get(attr)
                if raw is None:
                    continue
                value = _json_path(raw, path) if path else raw
                if value not in (None, "", "None", "null"):
                    out[OPERATION_VALUE_PREFIX + name] = value
                    del wanted[name]
                    wanted_keys = _attr_keys(wanted)
                    break
        if not wanted:
            return out
    return out


def _attr_keys(declared: dict[str, tuple[str, ...]]) -> frozenset[str]:
    """The attribute keys ``declared`` values read (``key#path`` reads ``key``)."""
    return frozenset(key.partition("#")[0] for keys in declared.values() for key in keys)


def _json_path(raw: Any, path: str) -> Any:
    """``kwargs.strategy`` inside ``raw`` (``conditions.json_field``, as a rule's
    ``name#path`` condition reads it); None when absent. Scalars only: never a whole object."""
    node = json_field(raw, path)
    return node if isinstance(node, str | int | float) and not isinstance(node, bool) else None
