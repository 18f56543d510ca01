"""Evidence an operation leaves outside its own traces, and the workers it depended on.

Real causes often sit in other traces: the backend probes each registered worker
(``GET http://<worker>/health``, one trace per probe), the IB host service's background
connection loop writes one-span ``ib.connect`` traces, and health checks of a dead worker fail
with ``ConnectError`` while the operation still says RUNNING. A rule pack says which spans to
bring in (``neighbours``) and which services are workers of which operation type
(``workers``); this module turns those spans into facts. Pure: traces in, values out.

Worker lost (SPEC ``worker_lost``): the worker that ran the operation, or the only capable
worker chosen for it, stopped answering. Its address comes from the dispatch call (a client
span whose child server span runs on a worker service) or, for a request that never reached
a worker, from the health checks of workers of the operation's type; the service behind an
address comes from probes it answered. An address is *silent since* its first failing probe
that no successful probe follows up to the moment judged. A worker is *replaced* when its
address answers again as another process while the operation still needed it: another
service instance answers (a restarted worker has a new random id), or the address refused
connections and then answered (restarted under the same id). KTRDR resumes nothing on a
restarted worker: it re-registers idle and the orphan detector fails the operation a minute
later; a probe that merely timed out and then answered is a busy worker, not a new one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

from opdiag.globs import Globs
from opdiag.model import CLIENT, SERVER, Span, SpanQuery, Trace
from opdiag.timeutil import clock_hms

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0"})


@dataclass(frozen=True, slots=True)
class HealthCheck(SpanQuery):
    """A probe of a worker: a client span whose URL path matches ``url``."""

    url: re.Pattern[str] = re.compile(r"/health$")


_DEFAULT_MARGINS = {
    "before_s": 600.0,
    "after_s": 60.0,
    "settle_s": 15.0,
    "max_traces": 500,
    "timeouts_to_lose": 1,
}


_MAX_MEMO = 256
_WORKER_GLOBS: dict[
    tuple[int, str | None], tuple[tuple[tuple[str, tuple[str, ...]], ...], tuple[str, ...]]
] = {}


@dataclass(frozen=True, slots=True)
class NeighbourSpec:
    """A pack's ``neighbours`` and ``workers`` sections. ``margins`` holds only what a pack
    set (``before_s``, ``after_s``, ``settle_s``, ``max_traces``), so a later pack that sets
    nothing keeps the earlier pack's values."""

    margins: tuple[tuple[str, float], ...] = ()
    health_checks: tuple[HealthCheck, ...] = ()
    spans: tuple[SpanQuery, ...] = ()
    workers: tuple[tuple[str, tuple[str, ...]], ...] = ()  # operation type -> service globs
    # spans the prober's service writes periodically whatever workers exist (KTRDR's orphan
    # detector lists operations every 15 s): they show it ran, and was recorded, when no
    # probe was made at all
    heartbeats: tuple[SpanQuery, ...] = ()

    def _margin(self, name: str) -> float:
        return dict(self.margins).get(name, _DEFAULT_MARGINS[name])

    @property
    def before_s(self) -> float:
        """How far before the operation's start to look."""
        return self._margin("before_s")

    @property
    def after_s(self) -> float:
        """How far after its end (never past now)."""
        return self._margin("after_s")

    @property
    def settle_s(self) -> float:
        """A request that got no worker is judged on the probes up to this long after it."""
        return self._margin("settle_s")

    @property
    def max_traces(self) -> int:
        return int(self._margin("max_traces"))

    @property
    def timeouts_to_lose(self) -> int:
        """Probes in a row that connected but got no answer in time (or a 5xx) before the
        worker counts as silent; one that could not connect at all counts at once."""
        return max(1, int(self._margin("timeouts_to_lose")))

    @property
    def queries(self) -> tuple[SpanQuery, ...]:
        """Every (service, span name) to search for, probes first."""
        seen: dict[tuple[str, str], SpanQuery] = {}
        for q in (*self.health_checks, *self.spans, *self.heartbeats):
            seen.setdefault((q.service, q.span), SpanQuery(q.service, q.span))
        return tuple(seen.values())

    @property
    def active(self) -> bool:
        return bool(self.health_checks or self.spans)

    def worker_globs(self, operation_type: str | None = None) -> tuple[str, ...]:
        """Service globs of workers of ``operation_type`` (all workers when None); asked
        twice per diagnosis, so kept per ``workers`` section (held: its id stays its)."""
        key = (id(self.workers), operation_type)
        known = _WORKER_GLOBS.get(key)
        if known is not None and known[0] is self.workers:
            return known[1]
        found = tuple(
            g for t, globs in self.workers if operation_type in (None, t) for g in globs
        )
        if len(_WORKER_GLOBS) >= _MAX_MEMO:
            _WORKER_GLOBS.clear()
        _WORKER_GLOBS[key] = (self.workers, found)
        return found

    def window(self, start_us: int, end_us: int, now_us: int) -> tuple[int, int]:
        """The neighbour window of an operation: a margin before it, one after, never past
        now (nothing recorded after the clock the diagnosis judges by can be evidence)."""
        lo = start_us - int(self.before_s * 1e6)
        hi = min(end_us + int(self.after_s * 1e6), now_us + 1)
        return lo, max(lo, hi)


def merge_specs(specs: Iterable[NeighbourSpec | None]) -> NeighbourSpec:
    """Later packs add queries and worker types; the margins they set win."""
    margins: dict[str, float] = {}
    checks: dict[tuple[str, str, str], HealthCheck] = {}
    spans: dict[tuple[str, str], SpanQuery] = {}
    beats: dict[tuple[str, str], SpanQuery] = {}
    workers: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        if spec is None:
            continue
        margins.update(spec.margins)
        for c in spec.health_checks:
            checks[(c.service, c.span, c.url.pattern)] = c
        for q in spec.spans:
            spans[(q.service, q.span)] = q
        for q in spec.heartbeats:
            beats[(q.service, q.span)] = q
        for t, globs in spec.workers:
            workers[t] = tuple(dict.fromkeys((*workers.get(t, ()), *globs)))
    return NeighbourSpec(
        margins=tuple(margins.items()),
        health_checks=tuple(checks.values()),
        spans=tuple(spans.values()),
        workers=tuple(workers.items()),
        heartbeats=tuple(beats.values()),
    )


# --- addresses ------------------------------------------------------------------------------


def address_of(url: object) -> str | None:
    """``http://127.0.0.1:5003/health`` → ``127.0.0.1:5003`` (lower case; None if no host)."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if not host:
        return None
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    return f"{host}:{port}"


def same_place(address: str) -> str:
    """An address compared across spellings: every loopback name is one host."""
    host, _, port = address.rpartition(":")
    return f"127.0.0.1:{port}" if host in _LOOPBACK else address


def _url(span: Span) -> object:
    attrs = span.attributes
    return attrs.get("http.url") or attrs.get("url.full")


# --- probes ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Probe:
    """One health check of one address: when, whether it was answered, and by whom."""

    time_us: int
    ok: bool
    address: str
    trace_id: str
    span_id: str
    span_name: str
    service: str  # the prober's service
    answered_by: str | None = None  # the service whose server span answered
    error: str | None = None
    late: bool = False  # failed, but connected: timed out or answered 5xx (busy or hung)


def _probe_error(span: Span) -> str | None:
    for event in span.events:
        exc_type = event.attributes.get("exception.type")
        if exc_type:
            return str(exc_type)
    return span.status_message or None


def probes_of(traces: Iterable[Trace], checks: Sequence[HealthCheck]) -> list[Probe]:
    """Every health check in ``traces``, oldest first. A probe is ok when it has no error and
    got a status below 500; a server span below it names the service that answered."""
    out: list[Probe] = []
    for trace in traces:
        for span in trace.spans:
            if span.kind != CLIENT:
                continue
            mine = [c for c in checks if c.span == span.name and _glob(c.service, span.service)]
            if not mine:
                continue
            url = _url(span)
            address = address_of(url)
            if address is None:
                continue
            path = urlsplit(str(url)).path
            if not any(c.url.search(path) for c in mine):  # several checks may share a span name
                continue
            status = span.attributes.get("http.status_code")
            ok = not span.error and (not isinstance(status, int) or status < 500)
            error = None if ok else _probe_error(span)
            answered = next(
                (c.service for c in trace.children.get(span.span_id, ()) if c.kind == SERVER),
                None,
            )
            out.append(
                Probe(
                    time_us=span.start_us,
                    ok=ok,
                    address=same_place(address),
                    trace_id=span.trace_id,
                    span_id=span.span_id,
                    span_name=span.name,
                    service=span.service,
                    answered_by=answered,
                    error=error,
                    late=not ok and _late(error, status),
                )
            )
    out.sort(key=lambda p: (p.time_us, p.address, p.span_id))
    return out


# Failed after connecting: the process is there but busy or hung (``httpx.ReadTimeout``,
# ``WriteTimeout``, ``PoolTimeout``; not ``ConnectTimeout``), or it answered with a 5xx.
_LATE = re.compile(r"(?i)(read|write|pool)?timeout")


def _late(error: str | None, status: object) -> bool:
    if isinstance(status, int) and status >= 500:
        return True
    text = error or ""
    return bool(_LATE.search(text)) and "connect" not in text.lower()


def _glob(pattern: str, text: str) -> bool:
    return fnmatchcase(text, pattern)


# --- workers --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Silence:
    """An address that stopped answering: its first failing probe of the run that no
    successful probe follows, and how many probes of that run failed."""

    address: str
    since: Probe
    failed: int
    last_ok_us: int | None


# A probe that could not connect at all (nothing listens: the process is gone), unlike one
# that connected and got no answer in time (busy or hung): ``httpx.ConnectError``,
# ``ConnectTimeout``, ``ConnectionRefusedError``, ``ConnectionResetError``.
_REFUSED = re.compile(r"(?i)connect|refused|reset")


def refused(probe: Probe) -> bool:
    """Did the probe fail to connect (rather than time out or get a 5xx)?"""
    return not probe.ok and bool(probe.error) and bool(_REFUSED.search(probe.error or ""))


def beats_of(traces: Iterable[Trace], queries: Sequence[SpanQuery]) -> list[int]:
    """When the prober's periodic spans (``heartbeats``) started, oldest first."""
    if not queries:
        return []
    return sorted(
        span.start_us
        for trace in traces
        for span in trace.spans
        if any(q.matches(span.service, span.name) for q in queries)
    )


@dataclass(frozen=True, slots=True)
class Unregistered:
    """No worker of the needed type was registered: the health checks before the request
    reached only ``others`` (``checks`` probes since ``since_us``)."""

    others: tuple[str, ...]
    checks: int
    since_us: int


def nothing_probed(
    probes: Sequence[Probe], beats: Sequence[int], at_us: int
) -> Unregistered | None:
    """Whether no worker at all was registered at ``at_us``: the prober's periodic spans
    show it running (and recorded) for more than two health-check rounds before, yet it
    probed nothing in that time."""
    before = [t for t in beats if t <= at_us]
    if len(before) < 2 or before[-1] - before[0] < _NO_PROBE_US:
        return None
    if any(p.time_us <= at_us for p in probes):
        return None
    return Unregistered((), 0, before[0])


# KTRDR's default health-check interval is 10 s: 20 s of a running backend without a single
# probe is two rounds that found no worker to check.
_NO_PROBE_US = 20_000_000

# Two answers of one address this far apart span a whole health-check round (KTRDR probes
# every registered worker every 10 s by default; a round never takes less than a few).
_ROUND_US = 5_000_000


@dataclass(frozen=True, slots=True)
class Replacement:
    """The worker's address answered again as another process: ``since`` is the first
    sign (the first refused probe, or the first answer by another service), ``by`` the
    service that answers now, ``failed`` the probes that failed before it answered."""

    address: str
    since: Probe
    by: str | None
    failed: int


@dataclass(slots=True)
class WorkerView:
    """What the probes say about the workers, with the address → service map they give."""

    probes: list[Probe]
    services: dict[str, str] = field(default_factory=dict)  # address -> answering service
    timeouts_to_lose: int = 1  # late failures in a row that make a silence (NeighbourSpec)

    @classmethod
    def of(cls, probes: list[Probe], timeouts_to_lose: int = 1) -> WorkerView:
        services: dict[str, str] = {}
        for p in probes:
            if p.answered_by:
                services[p.address] = p.answered_by  # the newest answer wins
        return cls(probes, services, timeouts_to_lose)

    def addresses_of(self, globs: Sequence[str]) -> list[str]:
        """Probed addresses last answered by a service matching ``globs``."""
        return sorted(a for a, s in self.services.items() if any(_glob(g, s) for g in globs))

    def silent(self, address: str, from_us: int, to_us: int) -> Silence | None:
        """Whether ``address`` was silent at ``to_us``: the probes up to then end in a run of
        failures (no success after them), and that run was still failing at ``from_us`` or
        later. A worker dead since before the range (a request that found it gone) counts;
        one that answered again before ``to_us`` does not. A run of probes that all connected
        but timed out (or got a 5xx) is a silence only from ``timeouts_to_lose`` of them: a
        busy worker may miss one; a process that is gone refuses the first."""
        key = same_place(address)
        first_fail: Probe | None = None
        last_fail_us = 0
        failed = 0
        hard = False
        last_ok: int | None = None
        for p in self.probes:
            if p.address != key or p.time_us > to_us:
                continue
            if p.ok:
                first_fail, failed, hard, last_ok = None, 0, False, p.time_us
            else:
                if first_fail is None:
                    first_fail = p
                failed += 1
                hard = hard or not p.late
                last_fail_us = p.time_us
        if first_fail is None or last_fail_us < from_us:
            return None
        if not hard and failed < self.timeouts_to_lose:
            return None
        return Silence(key, first_fail, failed, last_ok)

    def replaced(
        self, address: str, service: str | None, from_us: int, to_us: int
    ) -> Replacement | None:
        """Whether the process that served ``address`` as ``service`` was replaced between
        ``from_us`` and ``to_us``: a probe answered by another service, or a refused probe
        that a later answer follows (see the module docstring)."""
        key = same_place(address)
        first_refused: Probe | None = None
        failed = 0
        for p in self.probes:
            if p.address != key or p.time_us < from_us or p.time_us > to_us:
                continue
            if not p.ok:
                failed += 1
                if first_refused is None and refused(p):
                    first_refused = p
                continue
            other = p.answered_by is not None and service is not None and p.answered_by != service
            if other:
                return Replacement(key, first_refused or p, p.answered_by, failed)
            if first_refused is not None:  # the same name: "a new process", not a name
                return Replacement(key, first_refused, None, failed)
        return None

    def dead_at(self, address: str, at_us: int, settle_us: int) -> Silence | None:
        """Whether ``address`` was dead at ``at_us``: its last probe by then failed, and no
        probe answered in the ``settle_us`` after (one that answered right before was alive,
        whatever the registry said: busy or stale-busy, not dead)."""
        silence = self.silent(address, 0, at_us)
        if silence is None:
            return None
        key = same_place(address)
        later = [
            p for p in self.probes if p.address == key and at_us < p.time_us <= at_us + settle_us
        ]
        if any(p.ok for p in later):
            return None
        return Silence(key, silence.since, silence.failed + len(later), silence.last_ok_us)

    def unseen(
        self, globs: Sequence[str], all_globs: Sequence[str], at_us: int
    ) -> Unregistered | None:
        """Whether no worker matching ``globs`` was registered at ``at_us``: the backend's
        health loop probes every registered worker each round, and the probes up to then
        went only to workers of other types (one of them answered twice, so a whole round
        passed), never to an address of this type nor to one that never answered (which
        may be a dead worker of this type)."""
        others: dict[str, list[int]] = {}
        checks = 0
        for p in self.probes:
            if p.time_us > at_us:
                break
            service = self.services.get(p.address)
            if service is None:
                return None  # an address nobody answered for: maybe a dead one of this type
            if any(_glob(g, service) for g in globs):
                return None
            if not any(_glob(g, service) for g in all_globs):
                continue  # not a worker (e.g. a host service's health)
            checks += 1
            if p.ok:
                others.setdefault(p.address, []).append(p.time_us)
        rounds = [t for t in others.values() if t[-1] - t[0] >= _ROUND_US]
        if not rounds:
            return None
        first = min(t[0] for t in others.values())
        names = sorted({self.services[a] for a in others})
        return Unregistered(tuple(names), checks, first)


@dataclass(frozen=True, slots=True)
class Worker:
    """The worker an operation depended on: service (when known), address, and how the
    operation reached it."""

    service: str | None
    address: str
    ran: bool  # its spans are in the operation's traces
    dispatch: Span | None = None  # the client span that called it, if any


def workers_of(
    spans: Iterable[Span],
    children: dict[str, dict[str, list[Span]]],
    worker_globs: Sequence[str],
    view: WorkerView,
) -> list[Worker]:
    """Workers the operation ran on or was dispatched to, oldest first.

    A client span whose direct child is a server span on a worker service is the dispatch
    (its URL gives the address); a client span to an address the probes know as a worker is
    a dispatch that may never have arrived (the worker was already gone); worker spans with
    no dispatch seen still name the worker, with the address it serves on when recorded."""
    found: dict[str, Worker] = {}
    worker_services: dict[str, Span] = {}
    is_worker = Globs.of(worker_globs).known  # per service: a listing has a handful
    places: dict[object, str | None] = {}  # per URL: a poller repeats one

    for span in spans:
        service = span.service
        if is_worker(service) and service not in worker_services:
            worker_services[service] = span
        if span.kind != CLIENT:
            continue
        url = _url(span)
        try:
            key = places[url]
        except KeyError:
            address = address_of(url)
            key = places[url] = same_place(address) if address is not None else None
        except TypeError:  # an unhashable URL value is no address
            key = None
        if key is None:
            continue
        below = children.get(span.trace_id, {}).get(span.span_id, ())
        server = next((c for c in below if c.kind == SERVER and is_worker(c.service)), None)
        if server is not None:
            found.setdefault(key, Worker(server.service, key, True, span))
        elif key in view.services and key not in found and _is_call(span):
            service = view.services[key]
            if is_worker(service):
                found[key] = Worker(service, key, False, span)
    known = {w.service for w in found.values()}
    for service, span in worker_services.items():
        if service in known:
            continue
        host = span.attributes.get("http.host") or span.attributes.get("server.address")
        port = span.attributes.get("net.host.port") or span.attributes.get("server.port")
        address = None
        if isinstance(host, str) and ":" in host:
            address = same_place(host.lower())
        elif isinstance(host, str) and port is not None:
            address = same_place(f"{host.lower()}:{port}")
        if address is None:
            address = next((a for a, s in view.services.items() if s == service), "")
        found.setdefault(address or service, Worker(service, address, True, None))
    return list(found.values())


def _is_call(span: Span) -> bool:
    """A client span that is a real call, not a health probe or a status poll."""
    url = _url(span)
    if not isinstance(url, str):
        return False
    try:
        path = urlsplit(url).path
    except ValueError:
        return False
    return not path.endswith("/health") and "/operations/" not in path


# --- the verdict's evidence -------------------------------------------------------------------


def clock_text(us: int) -> str:
    """``16:01:04 UTC``: when something happened, as a summary says it."""
    clock = clock_hms(us)
    if clock is None:
        return datetime.fromtimestamp(us / 1e6, tz=UTC).strftime("%H:%M:%S UTC")
    return f"{clock} UTC"


@dataclass(frozen=True, slots=True)
class WorkerAssessment:
    """The worker an operation depended on and whether it stopped answering.

    ``lost``: the worker that ran the operation (or was dispatched to) went silent while the
    operation needed it. ``capable_lost``: the request reached no worker, and every worker
    of its type was silent when it was made (dead, not busy)."""

    worker: Worker | None = None
    ran: bool = False
    lost: Silence | None = None
    capable_lost: Silence | None = None
    capable: tuple[str, ...] = ()
    probes: int = 0
    last_seen_us: int | None = None  # the end of the worker's last span in the operation
    replaced: Replacement | None = None  # it answered again as another process
    unregistered: Unregistered | None = None  # no worker of the type was registered at all
    no_workers: Unregistered | None = None  # no worker of any type was registered

    @property
    def silence(self) -> Silence | None:
        return self.lost or self.capable_lost

    @property
    def first_sign(self) -> Probe | None:
        """The probe that first showed the worker gone (the lost worker's subject)."""
        if self.silence is not None:
            return self.silence.since
        return self.replaced.since if self.replaced is not None else None

    def values(self, operation_type: str | None) -> dict[str, Any]:
        """Template values (``worker.*``) for summaries and solutions."""
        out: dict[str, Any] = {}
        if self.worker is not None:
            out["worker.service"] = self.worker.service
            out["worker.address"] = self.worker.address or None
            if self.ran and self.worker.service:  # " on <service> at <address>" or nothing
                at = f" at {self.worker.address}" if self.worker.address else ""
                out["worker.on"] = f" on {self.worker.service}{at}"
        if operation_type:
            out["worker.type"] = operation_type
        if self.last_seen_us is not None:
            out["worker.last_seen"] = clock_text(self.last_seen_us)
        again = self.replaced
        if again is not None and self.silence is None:
            out["worker.since"] = clock_text(again.since.time_us)
            out["worker.failed_checks"] = again.failed
            out["worker.replaced_by"] = again.by
            out["worker.how"] = (
                f"answered again as {again.by or 'a new process'} after "
                f"{again.failed} failed health check(s) from {clock_text(again.since.time_us)}"
            )
        none = self.unregistered or self.no_workers
        if none is not None:
            out["worker.others"] = ", ".join(none.others) or "no worker"
            out["worker.checks"] = none.checks
            out["worker.checked_since"] = clock_text(none.since_us)
        silence = self.silence
        if silence is not None:
            out["worker.since"] = clock_text(silence.since.time_us)
            out["worker.failed_checks"] = silence.failed
            out["worker.how"] = (
                f"{silence.failed} health check(s) failed since {clock_text(silence.since.time_us)}"
                f" ({silence.since.error or 'no answer'})"
            )
        return out


def assess_workers(
    own: Sequence[tuple[Trace, Sequence[tuple[Span, int]]]],
    neighbours: Sequence[Trace],
    spec: NeighbourSpec,
    *,
    operation_type: str | None,
    start_us: int,
    judge_until_us: int,
    now_us: int,
    settled: bool,
    calls: Sequence[Span] | None = None,
    worker_ends: dict[str, int] | None = None,
) -> WorkerAssessment:
    """Who ran the operation, and did it go silent before ``judge_until_us`` (the terminal
    transition, or now)? ``settled``: the operation completed or was cancelled, so whatever
    its worker did afterwards is not its story. ``calls`` and ``worker_ends``: the client
    spans and first worker spans of ``own`` and the last end of each worker service, when the
    caller has them (``diagnosis.survey``; ``workers_of`` looks at nothing else)."""
    all_globs = spec.worker_globs()
    if not all_globs:
        return WorkerAssessment()
    probes = probes_of(neighbours, spec.health_checks)
    view = WorkerView.of(probes, spec.timeouts_to_lose)
    spans = calls if calls is not None else [span for _, walk in own for span, _ in walk]
    children = {trace.trace_id: trace.children for trace, _ in own}
    workers = workers_of(spans, children, all_globs, view)
    ran = [w for w in workers if w.ran]
    worker = ran[-1] if ran else (workers[0] if workers else None)
    if worker is not None:
        # only a worker that took the operation can be lost by it; a dispatch that never
        # arrived is its own evidence (the client span's error), judged by the pack's rules
        lost = None
        again = None
        if worker_ends is not None:
            seen = worker_ends.get(worker.service) if worker.service is not None else None
        else:
            seen = max((s.end_us for s in spans if s.service == worker.service), default=None)
        if ran and not settled and worker.address:
            lost = view.silent(worker.address, start_us, judge_until_us)
            if lost is None:
                again = view.replaced(worker.address, worker.service, start_us, judge_until_us)
                if again is not None and seen is not None and seen > again.since.time_us:
                    again = None  # it still reported on the operation afterwards: not replaced
        return WorkerAssessment(worker, bool(ran), lost, None, (), len(probes), seen, again)
    globs = spec.worker_globs(operation_type) if operation_type else ()
    capable = tuple(view.addresses_of(globs)) if globs else ()
    if settled:
        return WorkerAssessment(None, False, None, None, capable, len(probes))
    if not capable:
        none = view.unseen(globs, all_globs, judge_until_us) if globs else None
        nobody = None
        if globs and none is None:
            nobody = nothing_probed(probes, beats_of(neighbours, spec.heartbeats), judge_until_us)
        return WorkerAssessment(
            None, False, None, None, (), len(probes), unregistered=none, no_workers=nobody
        )
    settle = max(0, min(int(spec.settle_s * 1e6), now_us - judge_until_us))
    silences = [view.dead_at(a, judge_until_us, settle) for a in capable]
    if any(s is None for s in silences):
        return WorkerAssessment(None, False, None, None, capable, len(probes))
    first = min((s for s in silences if s is not None), key=lambda s: s.since.time_us)
    gone = Worker(view.services.get(first.address), first.address, False, None)
    return WorkerAssessment(gone, False, None, first, capable, len(probes))
