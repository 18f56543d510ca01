"""``opdiag mcp``: opdiag's answers for AI assistants, over the Model Context Protocol (stdio).

Four tools over the same trace source, settings and service as the CLI: list operations,
diagnose one, compare two, the execution flow of one. Answers are compact JSON with bounded
sizes (an assistant's context is small and a 45-minute CLI poll loop is thousands of spans),
ids and links kept so the assistant can cite them or open the trace in Jaeger. Failures are
tool errors the model can read: ``{"error", "kind"}`` with ``kind`` one of ``not_found``,
``bad_input``, ``source_unavailable`` (Jaeger down or too slow).

``OpdiagTools`` holds the logic; ``build_server`` registers each of its methods named in
``DESCRIPTIONS`` as a tool on the SDK's ``MCPServer`` (the method's signature is the tool's
input schema).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from functools import wraps
from typing import Annotated, Any

from pydantic import Field, ValidationError

from opdiag.diagnosis.comparison import WHERE_IT_STOPPED, total_status
from opdiag.diagnosis.result import Comparison, Diagnosis, FlowStep, PhaseChange
from opdiag.errors import InputError, NotFoundError, OpdiagError
from opdiag.model import addressable
from opdiag.operations import KNOWN_TYPES
from opdiag.render.json_render import dumps, run_brief
from opdiag.settings import Settings
from opdiag.timeutil import (
    ALL_END_US,
    TIME_FORMS,
    US_PER_S,
    format_duration,
    format_rfc3339,
    parse_any_time,
    resolve_range,
)

LIST_DEFAULT, LIST_MAX = 50, 200
FLOW_DEFAULT, FLOW_MAX = 40, 300
MAX_TEXT = 240
MAX_ANSWER = 12_000  # characters of one answer's JSON: an assistant's context is small
MAX_SERVICES = 24
_ROW_KEYS = {  # the keys of a listing's row
    "key",
    "operation_type",
    "verdict",
    "severity",
    "status",
    "started",
    "duration",
    "summary",
    "diagnosis_page",
}
MAX_EVIDENCE = 12
MAX_FINDINGS = 8
MAX_PHASES = 8
MAX_STEPS = 8
MAX_TRACE_LINKS = 12
# A time argument: its input schema says the forms it takes and how a number is read
Time = Annotated[str | int | float | None, Field(description=f"A time: {TIME_FORMS}.")]
Clock = Annotated[
    str | int | float | None,
    Field(
        description="The moment to judge at ('stuck' is judged by it; default: the end of the "
        f"recorded traces for files, the clock for Jaeger); a time: {TIME_FORMS}."
    ),
]
INSTRUCTIONS = (
    "opdiag diagnoses operations of a job system (KTRDR: training, backtesting, data loads) "
    "from their Jaeger traces. Start with list_operations (filter by verdict or type), then "
    "diagnose one id: the verdict, summary, root-cause span with evidence, bottleneck, what "
    "changed against the last good runs, and a solution. compare_operations lines up two "
    "runs phase by phase; execution_flow lists the spans. Open the 'jaeger' link for the "
    "raw trace."
)


def _cut(value: Any, limit: int = MAX_TEXT) -> Any:
    """Text (anything but a number, bool or null) at most ``limit`` characters long."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fitting(rows: list[dict[str, Any]], budget: int) -> int:
    """How many of ``rows`` (from the first) fit in ``budget`` characters of JSON."""
    used = 0
    for n, row in enumerate(rows):
        used += len(dumps(row, indent=False)) + 1
        if used > budget:
            return n
    return len(rows)


def _shrunk(value: Any, text: int, items: int) -> Any:
    """``value`` with every text cut to ``text`` characters and every list to ``items``."""
    if isinstance(value, dict):
        return {_cut(k, text): _shrunk(v, text, items) for k, v in value.items()}
    if isinstance(value, list):
        return [_shrunk(v, text, items) for v in value[:items]]
    return _cut(value, text) if isinstance(value, str) else value


def fit_answer(body: dict[str, Any]) -> str:
    """The answer's JSON, at most ``MAX_ANSWER`` characters: the tools size their lists to
    the budget first (so their ``omitted`` counts hold); this is the guard for what they
    cannot foresee (hundreds of services, kilobyte-long span names), shortening every text
    and list step by step and saying so in ``shortened``."""
    text = dumps(body, indent=False)
    for cut, items in ((120, 24), (60, 8), (24, 3), (8, 1)):
        if len(text) <= MAX_ANSWER:
            break
        text = dumps({**_shrunk(body, cut, items), "shortened": True}, indent=False)
    return text


def _brief(d: Diagnosis) -> dict[str, Any]:
    out = run_brief(d)
    out["summary"] = _cut(out["summary"])
    out["started"] = format_rfc3339(d.started_at_ms * 1000) if d.started_at_ms else None
    out["duration"] = format_duration(d.duration_ms)
    return out


def compact_comparison(c: Comparison, rows: int = MAX_PHASES) -> dict[str, Any]:
    """The comparison in a few keys: totals (and what the comparison makes of them), the
    named runs and how much data each covered (a run of 3,120 rows against one of 12,505
    reads -74 % for its size, not for its speed), the phases that changed most whatever the
    sign."""
    changed = _changed_first(c.phases)
    shown = changed[:rows]
    unchanged = sum(p.status == "same" for p in c.phases)
    # the comparison orders 'same' rows last: when it kept one, the rows it cut were 'same'
    cut_same = c.phases_omitted if unchanged else 0
    return {
        "headline": c.headline,
        "note": c.note,
        "status": total_status(c),
        "this_ms": c.this_ms,
        "baseline_median_ms": c.baseline_ms,
        "change_ms": c.change_ms,
        "change_pct": None if c.change_pct is None else round(c.change_pct, 1),
        "size": c.size,
        "expected_ms": None if c.expected_ms is None else round(c.expected_ms, 1),
        "baseline_runs": [
            {
                "key": r.key,
                "started": format_rfc3339(r.started_at_ms * 1000),
                "duration_ms": r.duration_ms,
                "size": r.size,
            }
            for r in c.runs
        ],
        "matched_on": c.matched_on,
        "new_error_types": c.new_error_types,
        "phases": [_phase(p) for p in shown],
        "phases_unchanged": unchanged + cut_same,
        "phases_omitted": len(changed) - len(shown) + c.phases_omitted - cut_same,
    }


def _changed_first(phases: list[PhaseChange]) -> list[PhaseChange]:
    """The phases that changed, where the run stopped first, then the largest change first
    whatever its sign (ordered by the signed change, a slower run showed -2.2 ms and cut a
    phase 878 ms faster)."""
    changed = [p for p in phases if p.status != "same"]
    return sorted(changed, key=lambda p: (p.status not in WHERE_IT_STOPPED, -abs(p.change_ms)))


def _phase(p: PhaseChange) -> dict[str, Any]:
    return {
        "phase": _cut(p.name),
        "kind": p.kind,
        "status": p.status,
        "this_ms": round(p.this_ms, 1),
        "baseline_ms": round(p.baseline_ms, 1),
        "change_ms": round(p.change_ms, 1),
        "change_pct": None if p.change_pct is None else round(p.change_pct, 1),
    }


def compact_diagnosis(d: Diagnosis) -> dict[str, Any]:
    """A diagnosis an assistant can read in one go: no flow (``execution_flow`` has it)."""
    out = _brief(d)
    out["services"] = [_cut(x, 80) for x in d.services[:MAX_SERVICES]]
    rc = d.root_cause
    if rc is not None:
        evidence = dict(sorted(rc.evidence.items())[:MAX_EVIDENCE])
        out["root_cause"] = {
            "service": _cut(rc.service, 80),
            "span": _cut(rc.span_name, 120),
            "span_id": rc.span_id,
            "trace_id": rc.trace_id,
            "exception": _cut(
                ": ".join(x for x in (rc.exception_type, rc.exception_message) if x) or None
            ),
            "evidence": {_cut(k, 80): _cut(v, 200) for k, v in evidence.items()},
        }
    else:
        out["root_cause"] = None
    b = d.bottleneck
    out["bottleneck"] = (
        None
        if b is None
        else {
            "kind": b.kind,
            "service": _cut(b.service, 80),
            "span": _cut(b.span_name, 120),
            "after_span": _cut(b.after_span_name, 120),
            "span_id": b.span_id,
            "self_time_ms": b.self_time_ms,
            "duration_ms": b.duration_ms,
            "share": round(b.share, 3),
            **({"calls": _cut(b.target, 200)} if b.target else {}),
            **({"attempts": b.attempts} if b.attempts > 1 else {}),
            **({"failed_attempts": b.failed_attempts} if b.failed_attempts else {}),
        }
    )
    out["baseline_ms"] = d.baseline_ms
    out["findings"] = [
        {
            "rule": f.rule_id,
            "severity": f.severity,
            "verdict": f.verdict,
            "summary": _cut(f.summary),
        }
        for f in d.findings[:MAX_FINDINGS]
    ]
    out["findings_omitted"] = max(0, len(d.findings) - MAX_FINDINGS)
    out["comparison"] = compact_comparison(d.comparison) if d.comparison is not None else None
    s = d.solution
    out["solution"] = (
        None
        if s is None
        else {
            "title": _cut(s.title),
            "steps": [_cut(t) for t in s.steps[:MAX_STEPS]],
            "commands": [_cut(c) for c in s.commands[:MAX_STEPS]],
        }
    )
    out["links"] = {
        "jaeger": d.links.jaeger,
        "diagnosis_page": d.links.diagnosis_page,
        "grafana_dashboard": d.links.grafana_dashboard,
        **_trace_links(d),
    }
    out["warnings"] = [_cut(w) for w in d.warnings[:MAX_STEPS]]
    return out


def _trace_links(d: Diagnosis) -> dict[str, Any]:
    """The Jaeger links of the first ``MAX_TRACE_LINKS`` traces and how many more there are:
    an operation of 40 traces had 4,000 characters of them, more than half the flow's room."""
    links = d.links.traces
    out: dict[str, Any] = {"traces": dict(list(links.items())[:MAX_TRACE_LINKS])}
    if len(links) > MAX_TRACE_LINKS:
        out["traces_omitted"] = len(links) - MAX_TRACE_LINKS
    return out


def _step(s: FlowStep) -> dict[str, Any]:
    marks = [
        name
        for name, on in (
            ("critical", s.critical),
            ("error", s.error),
            ("recovered", s.recovered),
            ("root_cause", s.root_cause),
            ("bottleneck", s.bottleneck),
        )
        if on
    ]
    return {
        "i": s.index,
        "service": _cut(s.service, 80),
        "span": _cut(s.span_name, 120),
        "start_ms": round(s.start_ms, 1),
        "duration_ms": round(s.duration_ms, 1),
        "depth": s.depth,
        "marks": marks,
        "span_id": s.span_id,
        "trace_id": s.trace_id,
    }


_KINDS: tuple[tuple[type[OpdiagError], str], ...] = (
    (NotFoundError, "not_found"),
    (InputError, "bad_input"),
)


def _kind(exc: OpdiagError) -> str:
    for cls, name in _KINDS:
        if isinstance(exc, cls):
            return name
    return "source_unavailable" if exc.exit_code == 4 else "error"


def _ident(value: str, field: str) -> None:
    """An id as the HTTP API takes it (``model.addressable``): the same refusal both ways."""
    if not isinstance(value, str) or not addressable(value):
        raise InputError(f"{field}: expected an operation id or trace id", field=field)


class OpdiagTools:
    """The tools' logic over one ``DiagnosisService``; every answer is a JSON-able dict."""

    def __init__(
        self,
        service: Any,
        settings: Settings,
        *,
        clock: Callable[[], int] | None = None,
        file_source: bool = False,
    ) -> None:
        """``clock``: the moment to judge at when a call gives none (None: the service's
        default, the end of a recording or Jaeger's clock)."""
        self.service = service
        self.settings = settings
        self.clock = clock
        self.file_source = file_source

    def _default_now(self) -> int:
        return self.clock() if self.clock is not None else self.service.default_now_us()

    def _now(self, now: str | float | None) -> int | None:
        """The moment a call judges at: its ``now`` (relative ones from the default), else
        the given clock, else None (the service's default, which its answers name)."""
        if now is not None and now != "":
            return parse_any_time(now, name="now", now_us=self._default_now())
        return self.clock() if self.clock is not None else None

    def list_operations(
        self,
        *,
        since: Time = None,
        until: Time = None,
        operation_type: str | None = None,
        verdict: str | None = None,
        limit: int = LIST_DEFAULT,
        offset: int = 0,
        now: Clock = None,
    ) -> dict[str, Any]:
        now_us = self._now(now)
        start, end = resolve_range(
            since,
            until,
            clock=lambda: self._default_now() if now_us is None else now_us,
            span_us=int(self.settings.jaeger.lookback_s * US_PER_S),
            parse=parse_any_time,
            names=("since", "until"),
            whole=(lambda: (0, ALL_END_US)) if self.file_source else None,
        )
        if not 1 <= limit <= LIST_MAX:
            raise InputError(f"limit must be 1..{LIST_MAX}", field="limit")
        if offset < 0:
            raise InputError("offset must be 0 or more", field="offset")
        verdicts = [verdict] if verdict else None
        self.service.rules.check_verdicts(verdicts, "verdict")
        op_type = self._operation_type(operation_type, start, end) if operation_type else None
        found = self.service.operations(
            start,
            end,
            now_us,
            operation_types=[op_type] if op_type else None,
            verdicts=verdicts,
        )
        page = found[offset : offset + limit]
        rows = [{k: v for k, v in _brief(d).items() if k in _ROW_KEYS} for d in page]
        rows = rows[: _fitting(rows, MAX_ANSWER - 200)]
        after = offset + len(rows)
        answer: dict[str, Any] = {
            "operations": rows,
            "total": len(found),
            # rows of the page asked for that did not fit; those before offset or after the
            # limit were not asked for (next_offset reaches the rest)
            "omitted": len(page) - len(rows),
            "next_offset": after if after < len(found) else None,
        }
        note = self.service.clock_note(now_us) if any(not d.finished for d in page) else None
        if note is not None:  # the verdicts of what was in flight depend on it
            answer["note"] = note
        return answer

    def _known_types(self) -> frozenset[str]:
        """The types opdiag gives, the rule packs name and the settings budget."""
        hinted = {hint.type for hint in self.service.rules.type_hints}
        budgeted = set(self.settings.diagnosis.slow_budget_s)
        return KNOWN_TYPES | hinted | budgeted

    def _operation_type(self, wanted: str, start: int, end: int) -> str:
        """``wanted`` as the listing spells it. Types are open-ended (a pack's id pattern may
        name more), so a type no operation in the range has and opdiag does not know is
        refused, listing the types seen: a typo answered "no such operations"; a type in
        other case ('Training') is that type."""
        known = self._known_types()
        if wanted in known:
            return wanted
        seen = {row.value for row in self.service.variable_values("operation_types", start, end)}
        if wanted in seen:
            return wanted
        by_case = {t.lower(): t for t in sorted(known | seen)}
        match = by_case.get(wanted.strip().lower())
        if match is not None:
            return match
        raise InputError(
            f"operation_type: no operation of type {_cut(wanted, 80)!r} in the range and no "
            f"such type known (seen: {', '.join(sorted(seen)) or 'none'}; known: "
            f"{', '.join(sorted(known))})",
            field="operation_type",
        )

    def diagnose(self, *, operation_id: str, now: Clock = None) -> dict[str, Any]:
        _ident(operation_id, "operation_id")
        return compact_diagnosis(self.service.diagnose(operation_id, now_us=self._now(now)))

    def compare_operations(
        self, *, operation_id: str, against: str, now: Clock = None
    ) -> dict[str, Any]:
        _ident(operation_id, "operation_id")
        _ident(against, "against")
        this, other, comparison = self.service.compare(operation_id, against, now_us=self._now(now))
        return {
            "operation": _brief(this),
            "against": _brief(other),
            "comparison": compact_comparison(comparison, rows=self.settings.comparison.max_rows),
        }

    def execution_flow(
        self,
        *,
        operation_id: str,
        limit: int = FLOW_DEFAULT,
        include_noise: bool = False,
        now: Clock = None,
    ) -> dict[str, Any]:
        from opdiag.web.waterfall import hide_noise

        _ident(operation_id, "operation_id")
        if not 1 <= limit <= FLOW_MAX:
            raise InputError(f"limit must be 1..{FLOW_MAX}", field="limit")
        d = self.service.diagnose(operation_id, now_us=self._now(now))
        steps = d.execution_flow
        shown = (
            steps
            if include_noise
            else hide_noise(steps, self.settings.diagnosis.noise_span_patterns)
        )
        body: dict[str, Any] = {
            "key": d.key,
            "verdict": d.verdict,
            "steps": [],
            "noise_hidden": len(steps) - len(shown),
            "omitted": len(shown) + d.execution_flow_truncated,  # as long as it can be
            "links": {"jaeger": d.links.jaeger, **_trace_links(d)},
        }
        # the room the steps have is what the rest leaves (links alone were 1,222 characters
        # of a 600 reserve: the last guard cut the steps after 'omitted' was counted)
        chosen = _fitting_flow(shown, limit, len(dumps(body, indent=False)))
        body["steps"] = [_step(s) for s in chosen]
        body["omitted"] = len(shown) - len(chosen) + d.execution_flow_truncated
        return body


def _fitting_flow(shown: list[FlowStep], limit: int, frame: int) -> list[FlowStep]:
    """``_flow_steps`` of at most ``limit`` steps, fewer when their JSON would not fit in the
    answer beside ``frame`` characters of the rest (the marked steps a smaller limit keeps
    differ from the first ones, so the fit is measured again)."""
    while True:
        chosen = _flow_steps(shown, limit)
        fit = _fitting([_step(s) for s in chosen], MAX_ANSWER - frame - 2)  # [ ] of the list
        if fit >= len(chosen) or limit <= 1:
            return chosen
        limit = max(1, min(fit, limit - 1))


def _flow_steps(shown: list[FlowStep], limit: int) -> list[FlowStep]:
    """At most ``limit`` steps in time order: the first ones, and when the cut falls before
    marked steps (root cause, bottleneck, errors), up to half the room goes to those."""
    if len(shown) <= limit:
        return shown
    marked = [s for s in shown[limit:] if s.root_cause or s.bottleneck or s.error]
    kept = sorted(marked, key=lambda s: not (s.root_cause or s.bottleneck))[: limit // 2]
    head = shown[: limit - len(kept)]
    ids = {id(s) for s in kept}
    return head + [s for s in marked if id(s) in ids]


def answer(produce: Callable[[], dict[str, Any]], error: type[Exception]) -> str:
    """A tool's answer as compact JSON; opdiag's failures become ``error`` (the SDK's
    ``ToolError``) carrying ``{"error", "kind", "field"}`` as JSON for the model to read."""
    try:
        return fit_answer(produce())
    except OpdiagError as exc:
        body = {"error": _cut(exc.message, 2000), "kind": _kind(exc)}
        if getattr(exc, "field", None):
            body["field"] = exc.field
        raise error(dumps(body, indent=False)) from None


DESCRIPTIONS: dict[str, str] = {
    "list_operations": (
        "Recent operations with their verdicts, newest first. since/until/now: RFC 3339, epoch "
        "seconds or ms (told apart by magnitude) or relative (now-6h); default: the whole "
        "recorded corpus for files, the last lookback for Jaeger. operation_type: "
        "training|backtesting|data_load|… in any case (one no operation has and opdiag does "
        "not know is refused, naming the types seen); verdict: "
        f"healthy|failed|stuck|slow|worker_lost|…; limit 1..{LIST_MAX}, fewer when the answer "
        f"would pass {MAX_ANSWER:,} characters ('omitted' counts the rows of the page cut so); "
        "'total' counts every match; offset: where to start, 'next_offset' of the previous "
        "answer (null: no more; keep since/until/now the same to page a live Jaeger). now: the "
        "moment to judge at ('stuck' is judged by it; a moment in the past sees only what had "
        "happened by then); default: the end of the recorded traces for files ('note' says so "
        "when that matters), the clock for Jaeger."
    ),
    "diagnose": (
        "Diagnose one operation id (op_…) or trace id: verdict, one-line summary, root-cause "
        "span with the attributes that prove it, bottleneck, what changed against the last good "
        "runs of its type (named), findings, solution, links. now as for list_operations."
    ),
    "compare_operations": (
        "Compare operation_id against another operation (against), phase by phase: time per "
        "phase (span name on the worker side, and 'after X' gaps where no span was open), the "
        "change, new or missing phases, new error types; where a run stopped first, then the "
        "largest changes whatever their sign. size: how much data each run covered (data rows; "
        "a run of a quarter of the data is faster for that), expected_ms: what a good run "
        "would take for this one's size, note: what the comparison cannot judge."
    ),
    "execution_flow": (
        "The spans of one operation in time order (service, span, start and duration in ms, "
        "marks: critical, error, root_cause, bottleneck); transport noise (polling, health "
        f"checks) folded away unless include_noise; limit 1..{FLOW_MAX} steps, the first ones "
        "and, when cut, the marked ones after them; fewer when the answer would pass "
        f"{MAX_ANSWER:,} characters ('omitted' counts every step not shown). links.traces: "
        f"the Jaeger links of the first {MAX_TRACE_LINKS} traces ('traces_omitted': the rest)."
    ),
}


def _as_tool(method: Callable[..., dict[str, Any]], error: type[Exception]) -> Callable[..., str]:
    """A tool function with ``method``'s signature (the SDK reads it for the input schema)."""

    from opdiag.sources.budget import jaeger_budget

    @wraps(method)
    def run(**arguments: Any) -> str:
        with jaeger_budget():  # one tool call: its Jaeger calls share one budget
            return answer(lambda: method(**arguments), error)

    return run


def argument_error(exc: ValidationError) -> dict[str, Any]:
    """The SDK's refusal of a tool's arguments (checked against its signature before opdiag
    sees them), as opdiag's own: ``{"error", "kind": "bad_input", "field"}``."""
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(part) for part in first.get("loc", ())]
    field = loc[0] if loc else None
    what = first.get("msg", "invalid")
    return {
        "error": _cut(f"{'.'.join(loc) or 'arguments'}: {what}", 500),
        "kind": "bad_input",
        "field": field,
    }


def unknown_arguments(tool: str, given: Iterable[str], accepted: Sequence[str]) -> dict[str, Any]:
    """The refusal of arguments a tool does not take (the SDK dropped them without a word,
    so a misspelt 'verdcit' listed every operation), naming them and the ones it takes."""
    unknown = [name for name in given if name not in accepted]
    names = ", ".join(repr(_cut(name, 80)) for name in unknown[:8])
    plural = "s" if len(unknown) > 1 else ""
    return {
        "error": f"unknown argument{plural} {names}; {tool} takes {', '.join(accepted)}",
        "kind": "bad_input",
        "field": _cut(unknown[0], 80),
    }


_CLOSED = {"additionalProperties": False}


def _server_class() -> type:
    """``MCPServer`` whose failed tool calls answer JSON the model can parse: opdiag's
    ``{"error", "kind", "field"}`` without the SDK's "Error executing tool …" prefix, and
    argument errors (unknown ones too) in the same form; over stdio, a line that is not a
    message gets the JSON-RPC error it asks for (``mcp_protocol``)."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
    from mcp.types import CallToolResult, TextContent

    def refused(body: dict[str, Any]) -> CallToolResult:
        text = dumps(body, indent=False)
        return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)

    class OpdiagMCPServer(MCPServer):  # type: ignore[misc]
        def __init__(self, *, accepted: dict[str, tuple[str, ...]], **settings: Any) -> None:
            super().__init__(**settings)
            self.accepted = accepted  # tool -> the arguments it takes

        async def list_tools(self) -> Any:
            """The tools, each saying it takes no argument but its own."""
            return [
                t.model_copy(update={"input_schema": {**t.input_schema, **_CLOSED}})
                for t in await super().list_tools()
            ]

        async def call_tool(
            self, name: str, arguments: dict[str, Any], context: Any = None
        ) -> Any:
            accepted = self.accepted.get(name)
            if accepted is not None and set(arguments or {}) - set(accepted):
                return refused(unknown_arguments(name, arguments, accepted))
            try:
                return await super().call_tool(name, arguments, context)
            except ToolError as exc:
                if isinstance(exc, UnexpectedToolError):
                    raise
                cause = exc.__cause__
                if isinstance(cause, ValidationError):
                    return refused(argument_error(cause))
                if isinstance(cause, ToolError):  # answer(): already opdiag's JSON
                    return CallToolResult(
                        content=[TextContent(type="text", text=str(cause))], is_error=True
                    )
                # an unknown tool
                return refused({"error": _cut(str(exc), 500), "kind": "bad_input", "field": "name"})

        async def run_stdio_async(self) -> None:
            from mcp.server.stdio import stdio_server

            from opdiag.mcp_protocol import AnsweredWriteStream, ExplainedReadStream, Pending

            lowlevel = self._lowlevel_server
            pending = Pending()  # answered before the end of input ends the session
            async with stdio_server() as (read_stream, write_stream):
                await lowlevel.run(
                    ExplainedReadStream(read_stream, write_stream, pending),
                    AnsweredWriteStream(write_stream, pending),
                    lowlevel.create_initialization_options(),
                )

    return OpdiagMCPServer


def build_server(tools: OpdiagTools) -> Any:
    """The SDK's ``MCPServer`` with one tool per ``OpdiagTools`` method in ``DESCRIPTIONS``."""
    from mcp.server.mcpserver.exceptions import ToolError

    import opdiag
    from opdiag.mcp_protocol import explain_invalid_params

    server = _server_class()(
        name="opdiag",
        version=opdiag.__version__,
        instructions=INSTRUCTIONS,
        log_level="WARNING",
        middleware=[explain_invalid_params],
        accepted={
            name: tuple(inspect.signature(getattr(tools, name)).parameters)
            for name in DESCRIPTIONS
        },
    )
    for name, description in DESCRIPTIONS.items():
        server.add_tool(
            _as_tool(getattr(tools, name), ToolError),
            name=name,
            description=description,
            structured_output=False,
        )
    return server


def serve_stdio(settings: Settings) -> int:
    """Run the MCP server on stdin/stdout until the client closes it."""
    from opdiag.service import DiagnosisService
    from opdiag.sources.factory import make_source
    from opdiag.sources.files import FileSource

    source = make_source(settings)
    tools = OpdiagTools(
        DiagnosisService(source, settings, recording_clock=True),
        settings,
        file_source=isinstance(source, FileSource),
    )
    build_server(tools).run("stdio")
    return 0
