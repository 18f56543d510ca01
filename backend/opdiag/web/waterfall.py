"""Layout of the execution-flow waterfall, computed server-side: bar geometry, classes and a
time axis. The template only draws what this returns, and escapes every label (span names
and services come from traces and are untrusted)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from opdiag.diagnosis.result import FlowStep

# httpx names its client spans after the method only; such a wrapper around hidden transport
# spans is transport too.
_HTTP_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})

MAX_ROWS = 400  # more rows than this make the page useless and the SVG huge
WIDTH = 1100
LABEL_WIDTH = 330
RIGHT_PAD = 16
ROW_HEIGHT = 18
TOP = 28  # room for the axis labels
BAR_HEIGHT = 12
TICKS = 6


@dataclass(frozen=True, slots=True)
class Bar:
    """One drawn span."""

    span_id: str
    trace_id: str
    label: str
    service: str
    title: str
    x: float
    y: float
    width: float
    classes: str
    indent: float
    text_y: float


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Band:
    """A stretch of time drawn across every row: the uninstrumented gap bottleneck."""

    x: float
    width: float
    label: str
    title: str


@dataclass(slots=True)
class Waterfall:
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    omitted: int = 0  # spans of the flow not drawn (cap, or cut by the engine)
    noise_hidden: int = 0  # transport spans (polling, http send/receive) folded away
    origin_ms: float = 0.0  # the time scale: offset drawn at the left edge ...
    total_ms: float = 1.0  # ... and the time the drawing area spans
    gap: Band | None = None


def _significant(step: FlowStep) -> bool:
    return step.critical or step.error or step.root_cause or step.bottleneck


def hide_noise(steps: list[FlowStep], patterns: Sequence[str]) -> list[FlowStep]:
    """Fold transport noise away: a CLI that polls for 45 minutes adds hundreds of identical
    ``GET`` rows that bury the phases. A span matching a noise pattern goes with its subtree,
    and so does an HTTP client wrapper whose children all went; anything on the critical path,
    in error, the root cause or the bottleneck always stays."""
    if not patterns:
        return list(steps)
    hidden: set[str] = set()
    for step in steps:  # parents come before their children in start order
        if step.parent_id in hidden or any(fnmatchcase(step.span_name, p) for p in patterns):
            hidden.add(step.span_id)
    children: dict[str, list[FlowStep]] = {}
    for step in steps:
        if step.parent_id is not None:
            children.setdefault(step.parent_id, []).append(step)
    for step in steps:
        kids = children.get(step.span_id)
        if step.span_name in _HTTP_METHODS and kids and all(k.span_id in hidden for k in kids):
            hidden.add(step.span_id)
    return [s for s in steps if s.span_id not in hidden or _significant(s)]


def _select(steps: list[FlowStep], cap: int) -> list[FlowStep]:
    """The first ``cap`` steps in time order, plus the root cause and bottleneck if cut."""
    if len(steps) <= cap:
        return list(steps)
    chosen = steps[:cap]
    kept = {id(s) for s in chosen}
    extra = [s for s in steps[cap:] if (s.root_cause or s.bottleneck) and id(s) not in kept]
    return sorted(chosen + extra, key=lambda s: (s.start_ms, s.index))


def _format_ms(value: float) -> str:
    if value >= 60_000:
        return f"{value / 60_000:.1f} min"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _classes(step: FlowStep) -> str:
    names = ["bar"]
    if step.critical:
        names.append("critical")
    if step.error:
        names.append("error")
    if step.bottleneck:
        names.append("bottleneck")
    if step.root_cause:
        names.append("root-cause")
    return " ".join(names)


def layout(
    steps: list[FlowStep],
    truncated: int = 0,
    cap: int = MAX_ROWS,
    noise_patterns: Sequence[str] = (),
) -> Waterfall:
    """Place every selected step on a shared time scale starting at the operation's start."""
    quiet = hide_noise(steps, noise_patterns)
    shown = _select(quiet, cap)
    origin = min((s.start_ms for s in shown), default=0.0)
    end = max((s.start_ms + s.duration_ms for s in shown), default=0.0)
    total = max(end - origin, 1.0)
    area = WIDTH - LABEL_WIDTH - RIGHT_PAD
    height = TOP + ROW_HEIGHT * len(shown) + 8
    picture = Waterfall(
        width=WIDTH,
        height=height,
        label_width=LABEL_WIDTH,
        bar_height=BAR_HEIGHT,
        omitted=truncated + len(quiet) - len(shown),
        noise_hidden=len(steps) - len(quiet),
        origin_ms=origin,
        total_ms=total,
    )
    for row, step in enumerate(shown):
        x = LABEL_WIDTH + (step.start_ms - origin) / total * area
        width = max(step.duration_ms / total * area, 5.0 if step.root_cause else 2.0)
        y = TOP + row * ROW_HEIGHT
        title = (
            f"{step.service}: {step.span_name} — {_format_ms(step.duration_ms)}"
            f" (self {_format_ms(step.self_time_ms)}) at +{_format_ms(step.start_ms)}"
        )
        picture.bars.append(
            Bar(
                span_id=step.span_id,
                trace_id=step.trace_id,
                label=step.span_name,
                service=step.service,
                title=title,
                x=round(x, 2),
                y=y,
                width=round(min(width, WIDTH - RIGHT_PAD - x), 2),
                classes=_classes(step),
                indent=min(step.depth, 12) * 10 + 4,
                text_y=y + BAR_HEIGHT - 2,
            )
        )
    for i in range(TICKS + 1):
        offset = total * i / TICKS
        picture.ticks.append(
            Tick(x=round(LABEL_WIDTH + offset / total * area, 2), label=_format_ms(offset))
        )
    return picture


def mark_gap(picture: Waterfall, start_ms: float, duration_ms: float, label: str) -> None:
    """Draw the gap bottleneck (offsets from the operation's start, like the steps) as a band
    behind the bars, clipped to the drawn time scale."""
    area = picture.width - picture.label_width - RIGHT_PAD
    lo = max(start_ms, picture.origin_ms)
    hi = min(start_ms + duration_ms, picture.origin_ms + picture.total_ms)
    if hi <= lo:
        return
    x = picture.label_width + (lo - picture.origin_ms) / picture.total_ms * area
    width = max((hi - lo) / picture.total_ms * area, 2.0)
    picture.gap = Band(
        x=round(x, 2),
        width=round(width, 2),
        label=f"no span: {_format_ms(duration_ms)}",
        title=label,
    )
