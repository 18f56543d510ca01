"""The operations list for a terminal: the twin of Grafana's operations table.

Values from traces may hold escape sequences; they are stripped so a hostile span cannot
repaint the operator's terminal.
"""

from __future__ import annotations

from collections.abc import Sequence

from opdiag.controls import one_line
from opdiag.diagnosis.result import Diagnosis, warned
from opdiag.timeutil import format_duration, format_rfc3339

_SUMMARY_MAX = 100
COLUMNS: tuple[str, ...] = ("TIME", "ID", "TYPE", "STATUS", "VERDICT", "DURATION", "SUMMARY")


def clean(value: object, limit: int | None = None) -> str:
    """One printable line."""
    text = "" if value is None else str(value)
    text = one_line(text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def _cells(d: Diagnosis) -> list[str]:
    started = format_rfc3339(d.started_at_ms * 1000) if d.started_at_ms is not None else "-"
    return [
        started,
        clean(d.key),
        clean(d.operation_type or "unknown"),
        clean(d.status),
        clean(f"{d.verdict} ({d.severity})" if warned(d.verdict, d.severity) else d.verdict),
        format_duration(d.duration_ms),
        clean(d.summary, _SUMMARY_MAX),
    ]


def render_operations_table(diags: Sequence[Diagnosis]) -> str:
    """Aligned columns, one operation per line, ending with a newline."""
    if not diags:
        return "no operations found\n"
    rows = [list(COLUMNS), *(_cells(d) for d in diags)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS) - 1)]
    lines = []
    for row in rows:
        head = "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True))
        lines.append(f"{head}  {row[-1]}".rstrip())
    return "\n".join(lines) + "\n"
