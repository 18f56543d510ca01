"""Layout of the comparison picture, computed server-side: per phase, this run's bar beside the
baseline median's, on one shared scale. The template only draws what this returns and escapes
every label (phase names come from traces and are untrusted)."""

from __future__ import annotations

from dataclasses import dataclass, field

from opdiag.diagnosis.result import Comparison
from opdiag.timeutil import format_duration

WIDTH = 1100
LABEL_WIDTH = 330
VALUE_WIDTH = 210  # room for "43m00s vs 1m11s (+3,534 %)" right of the bars
ROW_HEIGHT = 30
BAR_HEIGHT = 11
TOP = 8


@dataclass(frozen=True, slots=True)
class PhaseBars:
    """One phase: its label, the two bars, and the change in words."""

    label: str
    kind: str
    status: str
    y: float
    this_width: float
    base_width: float
    text_y: float
    values: str
    title: str


@dataclass(slots=True)
class ComparisonChart:
    width: int
    height: int
    label_width: int
    bar_height: int
    value_x: int
    rows: list[PhaseBars] = field(default_factory=list)


def _pct(value: float | None) -> str:
    return "" if value is None else f" ({value:+,.0f} %)"


def layout(comparison: Comparison) -> ComparisonChart:
    """Bars for every phase of ``comparison`` (none when there is no baseline run)."""
    phases = comparison.phases if comparison.runs else []
    scale = max((max(p.this_ms, p.baseline_ms) for p in phases), default=0.0) or 1.0
    area = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 16
    chart = ComparisonChart(
        width=WIDTH,
        height=TOP + ROW_HEIGHT * len(phases) + 4,
        label_width=LABEL_WIDTH,
        bar_height=BAR_HEIGHT,
        value_x=WIDTH - VALUE_WIDTH,
    )
    for row, p in enumerate(phases):
        y = TOP + row * ROW_HEIGHT
        label = p.name if p.kind == "span" else f"({p.name})"
        values = (
            f"{format_duration(p.this_ms)} vs {format_duration(p.baseline_ms)}"
            f"{_pct(p.change_pct)}"
        )
        chart.rows.append(
            PhaseBars(
                label=label,
                kind=p.kind,
                status=p.status,
                y=y,
                this_width=round(max(p.this_ms / scale * area, 1.0 if p.this_ms else 0.0), 2),
                base_width=round(
                    max(p.baseline_ms / scale * area, 1.0 if p.baseline_ms else 0.0), 2
                ),
                text_y=y + BAR_HEIGHT + 3,
                values=values,
                title=f"{p.name} ({p.kind}, {p.status}): this run {format_duration(p.this_ms)}, "
                f"baseline median {format_duration(p.baseline_ms)}",
            )
        )
    return chart
