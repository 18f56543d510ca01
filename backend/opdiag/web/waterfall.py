"""Layout of the execution-flow waterfall, computed server-side: bar geometry, classes and a
time axis. The template only draws what this returns, and escapes every label (span names
and services come from traces and are untrusted)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from math import inf

from opdiag.diagnosis.result import FlowStep
from opdiag.durations import human_ms
from opdiag.render.outlived import outlived_ms

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
    href: str | None = None  # the span in Jaeger UI


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Zoom:
    """The drawn window when it is only part of the operation: offsets from its start."""

    start_ms: float
    end_ms: float
    total_ms: float
    clipped: tuple[str, ...]  # labels of spans that run on past the window


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
    zoom: Zoom | None = None
    # drawn spans that ran on after their caller gave up, in words; the time scale stops
    # at their caller's end (``render.outlived``)
    outlived: tuple[str, ...] = ()


# Zoom in when the operation's own spans fill less than this share of the drawn time.
ZOOM_BELOW = 0.25
ZOOM_PAD = 0.05


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
    return human_ms(value, precise=True)


def _classes(step: FlowStep) -> str:
    names = ["bar"]
    if step.critical:
        names.append("critical")
    if step.error:
        names.append("error")
    if step.recovered:
        names.append("recovered")
    if step.bottleneck:
        names.append("bottleneck")
    if step.root_cause:
        names.append("root-cause")
    return " ".join(names)


def _waiting(steps: list[FlowStep], quiet: list[FlowStep]) -> set[str]:
    """Spans whose children were folded away as noise: a client polling for an answer (the
    CLI's ``cli.data_load`` around its status GETs) — waiting, not the operation's work. A
    span's own transport events (``POST /x http send`` under ``POST /x``) are no polling: a
    27 ms request was zoomed as "waiting, with the polling folded"."""
    kept = {s.span_id for s in quiet}
    names = {s.span_id: s.span_name for s in steps}
    return {
        s.parent_id
        for s in steps
        if s.span_id not in kept
        and s.parent_id is not None
        and not s.span_name.startswith(f"{names.get(s.parent_id)} ")
    }


def _counted(texts: Iterable[str]) -> tuple[str, ...]:
    """Each text once, in order, with how many times it came (the host service's four
    held requests read alike)."""
    seen = Counter(texts)
    return tuple(t if n == 1 else f"{t} (×{n})" for t, n in seen.items())


def _past_callers(
    steps: list[FlowStep],
) -> tuple[dict[str, float], dict[str, float]]:
    """Per span id: how long a span ran past its caller (``render.outlived``), and where
    the time scale stops for it and the spans under it (its caller's end)."""
    by_key = {(s.trace_id, s.span_id): s for s in steps}
    over: dict[str, float] = {}
    stop: dict[str, float] = {}
    for s in steps:  # parents come before their children in start order
        late = outlived_ms(s, by_key)
        if late is not None:
            over[s.span_id] = late
            stop[s.span_id] = s.start_ms + s.duration_ms - late
        elif s.parent_id in stop:
            stop[s.span_id] = stop[s.parent_id]
    return over, stop


def _focus(shown: list[FlowStep], waiting: set[str], origin: float, end: float) -> Zoom | None:
    """The window where the operation's own spans are, when a waiting span dwarfs them."""
    own = [s for s in shown if s.span_id not in waiting or s.root_cause or s.bottleneck]
    if not own or len(own) == len(shown):
        return None
    start = min(s.start_ms for s in own)
    stop = max(s.start_ms + s.duration_ms for s in own)
    if stop - start >= ZOOM_BELOW * (end - origin):
        return None
    pad = max((stop - start) * ZOOM_PAD, 1.0)
    start, stop = max(origin, start - pad), min(end, stop + pad)
    clipped = tuple(
        s.span_name for s in shown if s.start_ms < start or s.start_ms + s.duration_ms > stop
    )
    return Zoom(start_ms=start - origin, end_ms=stop - origin, total_ms=end - origin,
                clipped=clipped)


def layout(
    steps: list[FlowStep],
    truncated: int = 0,
    cap: int = MAX_ROWS,
    noise_patterns: Sequence[str] = (),
    span_link: Callable[[str, str], str] | None = None,
) -> Waterfall:
    """Place every selected step on a shared time scale starting at the operation's start;
    zoomed to the operation's own spans when a polling client's span would squash them."""
    quiet = hide_noise(steps, noise_patterns)
    shown = _select(quiet, cap)
    over, stop = _past_callers(steps)
    origin = min((s.start_ms for s in shown), default=0.0)
    end = max(
        (min(s.start_ms + s.duration_ms, stop.get(s.span_id, inf)) for s in shown), default=0.0
    )
    end = max(end, origin)
    zoom = _focus(shown, _waiting(steps, quiet), origin, end)
    low, high = (origin + zoom.start_ms, origin + zoom.end_ms) if zoom else (origin, end)
    total = max(high - low, 1.0)
    area = WIDTH - LABEL_WIDTH - RIGHT_PAD
    height = TOP + ROW_HEIGHT * len(shown) + 8
    picture = Waterfall(
        width=WIDTH,
        height=height,
        label_width=LABEL_WIDTH,
        bar_height=BAR_HEIGHT,
        omitted=truncated + len(quiet) - len(shown),
        noise_hidden=len(steps) - len(quiet),
        origin_ms=low,
        total_ms=total,
        zoom=zoom,
        outlived=_counted(
            f"{s.span_name} on {s.service} ran {_format_ms(over[s.span_id])} past its caller"
            for s in shown
            if s.span_id in over
        ),
    )
    for row, step in enumerate(shown):
        start = min(max(step.start_ms, low), high)
        stop = min(max(step.start_ms + step.duration_ms, low), high)
        x = LABEL_WIDTH + (start - low) / total * area
        width = max((stop - start) / total * area, 5.0 if step.root_cause else 2.0)
        y = TOP + row * ROW_HEIGHT
        title = (
            f"{step.service}: {step.target or step.span_name} — {_format_ms(step.duration_ms)}"
            f" (self {_format_ms(step.self_time_ms)}) at +{_format_ms(step.start_ms - origin)}"
        )
        if step.span_id in over:
            title += f", ran {_format_ms(over[step.span_id])} past its caller"
        classes = _classes(step)
        if step.start_ms < low or step.start_ms + step.duration_ms > high:
            classes += " clipped"
        picture.bars.append(
            Bar(
                span_id=step.span_id,
                trace_id=step.trace_id,
                label=step.target or step.span_name,
                service=step.service,
                title=title,
                x=round(min(x, WIDTH - RIGHT_PAD - 2.0), 2),
                y=y,
                width=round(min(width, WIDTH - RIGHT_PAD - x), 2),
                classes=classes,
                indent=min(step.depth, 12) * 10 + 4,
                text_y=y + BAR_HEIGHT - 2,
                href=span_link(step.trace_id, step.span_id) if span_link else None,
            )
        )
    for i in range(TICKS + 1):
        offset = total * i / TICKS
        label = _format_ms(low - origin + offset)
        picture.ticks.append(
            Tick(
                x=round(LABEL_WIDTH + offset / total * area, 2),
                label=f"+{label}" if zoom and i == 0 and low > origin else label,
            )
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
