"""A diagnosis in the KTRDR skill's "Trace Analysis" response template (Markdown).

Sections, in the skill's order: Trace Summary, Execution Flow, Diagnosis, Root Cause,
Solution. Every value from a trace (span names, attribute values, exception messages, even
ids) is untrusted and escaped, so a hostile span name cannot inject links, HTML or headings;
commands go into fenced blocks whose fence is longer than any backtick run inside.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from opdiag.controls import UNSAFE_IN_BLOCK
from opdiag.diagnosis.comparison import total_status
from opdiag.diagnosis.result import (
    Comparison,
    Diagnosis,
    FlowStep,
    PhaseChange,
    Solution,
    warned,
)
from opdiag.diagnosis.templates import split_evidence
from opdiag.render.outlived import outlived_ms
from opdiag.timeutil import format_duration, format_rfc3339

# Always escaped: they open code, emphasis, links, HTML, strikethrough anywhere in a line.
_SPECIAL = re.compile(r"([\\`*\[\]<>~])")
# "_" opens emphasis only at a word boundary: snake_case ids stay readable.
_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
# "&" only matters when it starts an entity (&amp; &#38;).
_ENTITY = re.compile(r"&(?=#?[0-9A-Za-z]+;)")
# At the start of a line these open a heading, list, quote or setext underline.
_LEADING = re.compile(r"^(?:#|=|[+\-](?:\s|$)|\d{1,9}[.)](?:\s|$))")
_CONTROL = re.compile(UNSAFE_IN_BLOCK)
_MAX_VALUE = 300
# Verdicts that mean the operation did not do its job (the template's Status: ERROR).
_ERROR_VERDICTS = frozenset(
    {"failed", "invalid_input", "data_missing", "service_unreachable", "no_workers",
     "no_capable_workers", "workers_busy", "worker_lost"}
)


def escape(value: Any, *, limit: int = _MAX_VALUE) -> str:
    """Untrusted text → inline Markdown that renders as the literal text, on one line."""
    text = "" if value is None else str(value)
    text = _CONTROL.sub(" ", text.replace("\r\n", " ").replace("\n", " ").replace("\r", " "))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = _SPECIAL.sub(r"\\\1", text)
    text = _UNDERSCORE.sub(r"\\_", text)
    text = _ENTITY.sub(r"\\&", text)
    if _LEADING.match(text):
        text = "\\" + text
    return text


def code(value: Any, *, limit: int = _MAX_VALUE) -> str:
    """Untrusted text as an inline code span (literal inside; backslashes do not escape
    there, so the fence is a backtick run longer than any inside)."""
    text = _CONTROL.sub(" ", ("" if value is None else str(value)).replace("\n", " "))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _ms(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.1f}ms" if value < 10_000 else f"{value:,.0f}ms"


def _human(ms: float | None) -> str:
    return f" ({format_duration(ms)})" if ms is not None and ms >= 60_000 else ""


def fence(lines: list[str], info: str = "bash") -> str:
    """A fenced code block that no line of untrusted content can close."""
    longest = max((len(m) for line in lines for m in re.findall(r"`+", line)), default=0)
    ticks = "`" * max(3, longest + 1)
    safe = [_CONTROL.sub(" ", line) for line in lines]
    return "\n".join([f"{ticks}{info}", *safe, ticks])


def _status_word(diagnosis: Diagnosis) -> str:
    """The template's OK/ERROR: error spans or a failure verdict make it ERROR."""
    if diagnosis.verdict == "not_found":
        return "NOT FOUND"
    failed = diagnosis.status == "failed" or diagnosis.verdict in _ERROR_VERDICTS
    if failed or any(step.error and not step.recovered for step in diagnosis.execution_flow):
        return "ERROR"
    return "OK"


def _warned(d: Diagnosis) -> str:
    """``, severity warning`` for a healthy verdict a rule warns about (a data load completed
    with missing bars): the one case the verdict alone reads as nothing to see."""
    return f", severity {escape(d.severity)}" if warned(d.verdict, d.severity) else ""


def _summary_section(d: Diagnosis) -> list[str]:
    trace_ids = ", ".join(escape(t) for t in d.trace_ids) or "none"
    services = ", ".join(escape(s) for s in d.services) or "none"
    label = "Trace IDs" if len(d.trace_ids) > 1 else "Trace ID"
    return [
        "**Trace Summary**:",
        f"- {label}: {trace_ids}",
        f"- Total Duration: {_ms(d.duration_ms)}{_human(d.duration_ms)}",
        f"- Services: {services}",
        f"- Status: {_status_word(d)} (verdict {escape(d.verdict)}{_warned(d)}, operation status "
        f"{escape(d.status)}, type {escape(d.operation_type or 'unknown')})",
    ]


def _flow_line(step: FlowStep, number: int, outlived_ms: float | None = None) -> str:
    marks: list[str] = []
    if step.root_cause:
        marks.append("ROOT CAUSE")
    if step.bottleneck:
        marks.append("BOTTLENECK")
    if step.error:
        marks.append("error")
    if step.recovered:  # a failed attempt that did not decide the outcome
        marks.append("recovered")
    if outlived_ms is not None:
        marks.append(f"ran {_ms(outlived_ms)} past its caller")
    # The numbered list stays flat (the template's shape); depth is shown by arrows.
    depth = "↳ " * min(step.depth, 8)
    tail = f" [{', '.join(marks)}]" if marks else ""
    star = "★ " if step.critical else ""
    return (
        f"{number}. {star}{depth}{escape(step.target or step.span_name)} "
        f"({escape(step.service)}) - {_ms(step.duration_ms)}{tail}"
    )


_Key = tuple[str, str]
_FOLD_MIN = 3  # this many like siblings in a row, none of them notable, make one line


def _flow_tree(steps: list[FlowStep]) -> tuple[list[FlowStep], dict[_Key, list[FlowStep]]]:
    """The rows as a tree (roots and children in start order): a flat start-ordered list
    put a worker's phase under the CLI's polls that started just before it."""
    present = {(s.trace_id, s.span_id) for s in steps}
    roots: list[FlowStep] = []
    kids: dict[_Key, list[FlowStep]] = {}
    for s in steps:
        parent = (s.trace_id, s.parent_id) if s.parent_id is not None else None
        if parent is not None and parent in present and s.parent_id != s.span_id:
            kids.setdefault(parent, []).append(s)
        else:
            roots.append(s)
    return roots, kids


def _notable(
    roots: list[FlowStep], kids: dict[_Key, list[FlowStep]]
) -> tuple[set[_Key], dict[_Key, int]]:
    """Rows that must stay visible, and every ancestor of one (error, root cause,
    bottleneck, recovered); and how many rows lie under each row. The critical path alone
    does not keep a row: a download's 30 like segment calls one after another are all on
    it, and fold into one starred line."""
    order: list[FlowStep] = []
    stack = list(roots)
    seen: set[_Key] = set()
    while stack:  # pre-order, without recursion (a hostile trace may be deep)
        step = stack.pop()
        key = (step.trace_id, step.span_id)
        if key in seen:
            continue
        seen.add(key)
        order.append(step)
        stack.extend(kids.get(key, ()))
    keep: set[_Key] = set()
    under: dict[_Key, int] = {}
    for step in reversed(order):  # children before parents
        key = (step.trace_id, step.span_id)
        below = [(k.trace_id, k.span_id) for k in kids.get(key, ())]
        under[key] = sum(1 + under.get(k, 0) for k in below)
        if (
            step.error
            or step.root_cause
            or step.bottleneck
            or step.recovered
            or any(k in keep for k in below)
        ):
            keep.add(key)
    return keep, under


def _folded_line(run: list[FlowStep], number: int, under: int) -> str:
    first = run[0]
    star = "★ " if any(s.critical for s in run) else ""
    depth = "↳ " * min(first.depth, 8)
    shortest = _ms(min(s.duration_ms for s in run))
    longest = _ms(max(s.duration_ms for s in run))
    spread = shortest if shortest == longest else f"{shortest}–{longest}"
    below = f", {under} spans under them" if under else ""
    return (
        f"{number}. {star}{depth}{escape(first.span_name)} ({escape(first.service)}) "
        f"× {len(run)}, {spread} each{below} (folded)"
    )


def _flow_lines(steps: list[FlowStep]) -> list[str]:
    """The rows in tree order; runs of like siblings that matter to nothing (the CLI's
    status polls, a server span's http send/receive) folded into one line each."""
    roots, kids = _flow_tree(steps)
    by_key = {(s.trace_id, s.span_id): s for s in steps}
    keep, under = _notable(roots, kids)
    lines: list[str] = []
    # a stack of sibling lists still to emit, each with the index of its next row
    stack: list[tuple[list[FlowStep], int]] = [(roots, 0)]
    seen: set[_Key] = set()
    while stack:
        siblings, i = stack.pop()
        if i >= len(siblings):
            continue
        step = siblings[i]
        key = (step.trace_id, step.span_id)
        j = i + 1
        if key not in keep:
            while (
                j < len(siblings)
                and (siblings[j].trace_id, siblings[j].span_id) not in keep
                and siblings[j].span_name == step.span_name
                and siblings[j].service == step.service
            ):
                j += 1
        if j - i >= _FOLD_MIN:
            run = siblings[i:j]
            below = sum(under.get((s.trace_id, s.span_id), 0) for s in run)
            lines.append(_folded_line(run, len(lines) + 1, below))
            stack.append((siblings, j))
            continue
        stack.append((siblings, i + 1))
        if key in seen:
            continue
        seen.add(key)
        lines.append(_flow_line(step, len(lines) + 1, outlived_ms(step, by_key)))
        children = kids.get(key)
        if children:
            stack.append((children, 0))
    return lines


def _flow_section(d: Diagnosis) -> list[str]:
    lines = ["**Execution Flow** (★ = critical path):"]
    if not d.execution_flow:
        lines.append("- no spans")
        return lines
    lines.extend(_flow_lines(d.execution_flow))
    if d.execution_flow_truncated:
        lines.append(f"- … {d.execution_flow_truncated} more spans not shown")
    return lines


def _evidence_lines(evidence: dict[str, Any]) -> list[str]:
    return [f"  - {code(k)} = {escape(v)}" for k, v in sorted(evidence.items())]


def _diagnosis_section(d: Diagnosis) -> list[str]:
    lines = ["**Diagnosis**:", f"**{escape(d.verdict)}**: {escape(d.summary, limit=1000)}"]
    if d.bottleneck is not None:
        b = d.bottleneck
        so_far = ", so far (not finished)" if d.still_working else ""
        if b.kind == "gap":
            lines.append(
                f"- Bottleneck: {b.share * 100:.0f} % of {d.share_basis} "
                f"({_ms(b.duration_ms)}) is uninstrumented work on {escape(b.service)} after "
                f"{escape(b.after_span_name or '?')} (no span covers it){so_far}"
            )
        else:
            length = (
                f"{b.calls_text}, {_ms(b.duration_ms)} in all"
                if b.attempts > 1
                else f"{_ms(b.duration_ms)} (self time {_ms(b.self_time_ms)})"
            )
            name = b.target or b.span_name or "?"
            lines.append(
                f"- Bottleneck: {escape(name)} ({escape(b.service)}), {length}, "
                f"{b.share * 100:.0f} % of {d.share_basis}{so_far}"
            )
    if d.baseline_ms is not None:
        lines.append(f"- Baseline ({d.baseline_basis}): {_ms(d.baseline_ms)}")
    for finding in d.findings:
        name = finding.target or finding.span_name
        where = f" on {escape(name)}" if name else ""
        if finding.neighbour:
            where += (
                f" (trace {escape(finding.trace_id or '?')}, "
                f"{_clock(finding.time_ms)}, outside the operation's traces)"
            )
        lines.append(
            f"- [{escape(finding.severity)}] {escape(finding.rule_id)}{where}: "
            f"{escape(finding.summary, limit=1000)}"
        )
        also = finding.evidence.get("also")
        if isinstance(also, list) and also:
            lines.append(
                "  - also fired: "
                + ", ".join(escape(str(a.get("rule_id", "?"))) for a in also if isinstance(a, dict))
            )
    lines.extend(f"- warning: {escape(w)}" for w in d.warnings)
    return lines


def _cell(value: Any) -> str:
    """Untrusted text in a table cell: escaped, and ``|`` cannot end the cell."""
    return escape(value, limit=120).replace("|", "\\|")


def _signed(ms: float | None) -> str:
    if ms is None:
        return "?"
    return ("+" if ms >= 0 else "-") + format_duration(abs(ms))


def _pct(pct: float | None) -> str:
    return "" if pct is None else f" ({pct:+,.0f} %)"


def _phase_row(row: PhaseChange) -> str:
    name = _cell(row.name)
    if row.kind == "gap":
        name = f"{name} (no span)"
    elif row.kind == "outside":
        name = f"*{name}*"
    return (
        f"| {name} | {format_duration(row.this_ms)} | {format_duration(row.baseline_ms)} | "
        f"{_signed(row.change_ms)}{_pct(row.change_pct)} | {row.status} |"
    )


def _runs_line(c: Comparison, started_at_ms: int | None) -> str:
    alike = ", ".join(f"{escape(k)} {escape(v)}" for k, v in c.matched_on.items())
    same = f", same {alike}" if alike else ""
    runs = "; ".join(
        f"{escape(r.key)} ({format_rfc3339(r.started_at_ms * 1000)}, "
        f"{format_duration(r.duration_ms)}{_later(r.started_at_ms, started_at_ms)})"
        for r in c.runs
    )
    noun = "run" if len(c.runs) == 1 else "runs"
    return f"- Baseline: {len(c.runs)} {noun} ({c.wanted_runs} wanted){same}: {runs}"


def _later(run_ms: int, this_ms: int | None) -> str:
    """Marks a baseline run that started after this one (taken when too few came before)."""
    return ", later than this run" if this_ms is not None and run_ms > this_ms else ""


def comparison_lines(c: Comparison, started_at_ms: int | None = None) -> list[str]:
    """The comparison's body: totals, the runs, new error types, one row per phase.
    ``started_at_ms``: this run's start (baseline runs after it are marked)."""
    if not c.runs:
        return [f"- {escape(c.note or 'no run to compare with')}"]
    lines = [_total_line(c)]
    if c.expected_ms is not None and c.size:
        lines.append(
            f"- Expected for its {c.size:,.0f} data rows (the runs' time per row): "
            f"{format_duration(c.expected_ms)}"
        )
    lines.append(_runs_line(c, started_at_ms))
    if c.note:
        lines.append(f"- Note: {escape(c.note, limit=400)}")
    if c.headline:
        lines.append(f"- Most of the change: {escape(c.headline, limit=400)}")
    if c.new_error_types:
        lines.append(f"- New error types: {', '.join(code(t) for t in c.new_error_types)}")
    lines += [
        "",
        "| phase | this run | baseline median | change | |",
        "|---|---:|---:|---:|---|",
        *(_phase_row(row) for row in c.phases),
    ]
    if c.phases_omitted:
        lines.append(f"\n… {c.phases_omitted} more phases not shown")
    return lines


def _total_line(c: Comparison) -> str:
    """This run's total beside the runs' median, and what the comparison makes of it: a run
    that did not complete is where it stopped, with no change (it is no speed)."""
    status = total_status(c)
    base = f"baseline median {format_duration(c.baseline_ms)}"
    if status == "stopped":
        return f"- This run: stopped after {format_duration(c.this_ms)} (did not complete); {base}"
    if status == "in progress":
        return f"- This run: in progress, {format_duration(c.this_ms)} so far; {base}"
    return (
        f"- This run: {format_duration(c.this_ms)}; {base}; change "
        f"{_signed(c.change_ms)}{_pct(c.change_pct)}; total: {status}"
    )


def _comparison_section(d: Diagnosis) -> list[str]:
    if d.comparison is None:
        return []
    return [
        "**What changed since the last good runs**:",
        *comparison_lines(d.comparison, d.started_at_ms),
    ]


def _clock(ms: float | None) -> str:
    if ms is None:
        return "an unknown time"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _root_cause_section(d: Diagnosis) -> list[str]:
    lines = ["**Root Cause**:"]
    rc = d.root_cause
    if rc is None:
        lines.append(d.without_root_cause)
        return lines
    lines.append(
        f"Span {escape(rc.target or rc.span_name)} in {escape(rc.service)} "
        f"(span {escape(rc.span_id)}, trace {escape(rc.trace_id)})"
    )
    if rc.neighbour:
        lines.append(
            f"- Found in another trace than the operation's own, at {_clock(rc.time_ms)}"
        )
    if rc.exception_type or rc.exception_message:
        lines.append(
            f"- Exception: {escape(rc.exception_type or '?')}: "
            f"{escape(rc.exception_message or '', limit=1000)}"
        )
    attributes, derived = split_evidence(rc.evidence)
    if attributes:
        lines.append("- Span attributes:")
        lines.extend(_evidence_lines(dict(attributes)))
    if derived:
        lines.append("- Worked out from the traces:")
        lines.extend(_evidence_lines(dict(derived)))
    return lines


def solution_markdown(solution: Solution | None) -> str:
    """The Solution body alone (also the ``solution`` column of the diagnosis row)."""
    if solution is None:
        return "No action needed."
    lines = [escape(solution.title, limit=1000)]
    lines.extend(f"{i}. {escape(step, limit=1000)}" for i, step in enumerate(solution.steps, 1))
    if solution.commands:
        lines.append("")
        lines.append(fence([str(c) for c in solution.commands]))
    return "\n".join(lines)


def _links_section(d: Diagnosis) -> list[str]:
    links = [
        ("Jaeger", d.links.jaeger),
        ("Grafana Explore", d.links.grafana_explore),
        ("Dashboard", d.links.grafana_dashboard),
        ("Diagnosis page", d.links.diagnosis_page),
    ]
    present = [(name, url) for name, url in links if url]
    if not present:
        return []
    # URLs are built by render.links with every id percent-encoded; <> keeps them literal.
    return ["**Links**:", *(f"- {name}: <{url}>" for name, url in present)]


def render_markdown(diagnosis: Diagnosis) -> str:
    """The whole Trace Analysis, ending with a newline."""
    d = diagnosis
    title = "operation_id" if d.operation_id else "trace_id"
    head = f"🔍 **Trace Analysis for {title}: {escape(d.key or 'unknown')}**"
    sections = [
        [head],
        _summary_section(d),
        _flow_section(d),
        _diagnosis_section(d),
        _comparison_section(d),
        _root_cause_section(d),
        ["**Solution**:", solution_markdown(d.solution)],
        _links_section(d),
    ]
    return "\n\n".join("\n".join(s) for s in sections if s) + "\n"


def render_comparison_markdown(this: Diagnosis, other: Diagnosis, comparison: Comparison) -> str:
    """``opdiag compare A B``: both runs in one line each, then A's phases against B's."""
    def one(d: Diagnosis) -> str:
        return (
            f"{escape(d.key)}: **{escape(d.verdict)}**, {format_duration(d.duration_ms)}, "
            f"started {format_rfc3339((d.started_at_ms or 0) * 1000)} — "
            f"{escape(d.summary, limit=300)}"
        )

    head = f"🔍 **Comparison of {escape(this.key)} with {escape(other.key)}**"
    sections = [
        [head],
        ["**Runs**:", f"- This run: {one(this)}", f"- Against: {one(other)}"],
        ["**What changed**:", *comparison_lines(comparison)],
    ]
    if this.links.diagnosis_page or other.links.diagnosis_page:
        sections.append(
            [
                "**Links**:",
                *(
                    f"- {escape(d.key)}: <{d.links.diagnosis_page}>"
                    for d in (this, other)
                    if d.links.diagnosis_page
                ),
            ]
        )
    return "\n\n".join("\n".join(s) for s in sections) + "\n"
