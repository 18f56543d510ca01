"""What the health checks in neighbouring traces say about each worker address: when it
answered, when it stopped, whether another process answers there now, whether any worker was
registered at all. The backend probes every registered worker (``GET http://<worker>/health``,
one trace per probe); see ``neighbours`` for how an operation's verdict uses this."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

import msgspec

from opdiag.diagnosis.neighbour_spec import HealthCheck
from opdiag.globs import Globs
from opdiag.model import CLIENT, SERVER, Span, SpanQuery, Trace, url_of

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0"})


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


# --- probes ---------------------------------------------------------------------------------


class Probe(msgspec.Struct, frozen=True):
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
            mine = [
                c for c in checks if c.span == span.name and fnmatchcase(span.service, c.service)
            ]
            if not mine:
                continue
            url = url_of(span)
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


# --- what the probes say ----------------------------------------------------------------------


class Silence(msgspec.Struct, frozen=True):
    """An address that stopped answering: its first failing probe of the run that no
    successful probe follows, and how many probes of that run failed."""

    address: str
    since: Probe
    failed: int
    last_ok_us: int | None
    trace_ids: tuple[str, ...] = ()  # of the failed probes (each its own trace), oldest first
    last: Probe | None = None  # the newest failed probe (how the silence fails now)


# A probe that could not connect at all (nothing listens: the process is gone), unlike one
# that connected and got no answer in time (busy or hung): ``httpx.ConnectError``,
# ``ConnectTimeout``, ``ConnectionRefusedError``, ``ConnectionResetError``.
_REFUSED = re.compile(r"(?i)connect|refused|reset")


def connection_refused(span: Span) -> bool:
    """Did the client span fail to connect (nothing listened), rather than time out or get
    an answer?"""
    error = _probe_error(span)
    return bool(error) and bool(_REFUSED.search(error or ""))


def connect_timed_out(probe: Probe) -> bool:
    """Did the probe time out connecting (the host did not answer: down, unreachable)?"""
    text = (probe.error or "").lower()
    return not probe.ok and ("connecttimeout" in text or "connect timed out" in text)


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


class Unregistered(msgspec.Struct, frozen=True):
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


class Replacement(msgspec.Struct, frozen=True):
    """The worker's address answered again as another process: ``since`` is the first
    sign (the first refused probe, or the first answer by another service), ``by`` the
    service that answers now, ``failed`` the probes that failed before it answered."""

    address: str
    since: Probe
    by: str | None
    failed: int


class WorkerView(msgspec.Struct):
    """What the probes say about the workers, with the address → service map they give."""

    probes: list[Probe]
    services: dict[str, str] = msgspec.field(default_factory=dict)  # address -> answering service
    timeouts_to_lose: int = 1  # late failures in a row that make a silence (NeighbourSpec)
    probed: frozenset[str] = frozenset()  # every address checked, answered or not

    @classmethod
    def of(cls, probes: list[Probe], timeouts_to_lose: int = 1) -> WorkerView:
        services: dict[str, str] = {}
        for p in probes:
            if p.answered_by:
                services[p.address] = p.answered_by  # the newest answer wins
        return cls(probes, services, timeouts_to_lose, frozenset(p.address for p in probes))

    def service_at(self, address: str, at_us: int) -> str | None:
        """The service that answered at ``address`` by ``at_us`` (the last answer up to then;
        the first one after when none came before). A dead worker's address often answers
        again later as a new process: the silence belongs to the one that stopped, not to its
        replacement (``services`` holds the newest answer)."""
        key = same_place(address)
        before: str | None = None
        after: str | None = None
        for p in self.probes:
            if p.address != key or not p.answered_by:
                continue
            if p.time_us <= at_us:
                before = p.answered_by
            elif after is None:
                after = p.answered_by
        return before or after

    def addresses_of(self, globs: Sequence[str]) -> list[str]:
        """Probed addresses last answered by a service matching ``globs``."""
        matches = Globs.of(globs)
        return sorted(a for a, s in self.services.items() if matches(s))

    def last_answer(
        self, address: str, service: str | None, from_us: int, to_us: int
    ) -> int | None:
        """When ``address`` last answered a probe between ``from_us`` and ``to_us`` as
        ``service`` (or with no server span to say who), if it did."""
        key = same_place(address)
        last: int | None = None
        for p in self.probes:
            if p.address != key or not p.ok or p.time_us < from_us or p.time_us > to_us:
                continue
            if p.answered_by is None or service is None or p.answered_by == service:
                last = p.time_us if last is None else max(last, p.time_us)
        return last

    def first_answer(self, address: str, after_us: int) -> Probe | None:
        """The first probe ``address`` answered after ``after_us``, by whichever process
        (a worker that died answers again only as a new one), if any did."""
        key = same_place(address)
        return min(
            (p for p in self.probes if p.ok and p.address == key and p.time_us > after_us),
            key=lambda p: p.time_us,
            default=None,
        )

    def silent(self, address: str, from_us: int, to_us: int) -> Silence | None:
        """Whether ``address`` was silent at ``to_us``: the probes up to then end in a run of
        failures (no success after them), and that run was still failing at ``from_us`` or
        later. A worker dead since before the range (a request that found it gone) counts;
        one that answered again before ``to_us`` does not. A run of probes that all connected
        but timed out (or got a 5xx) is a silence only from ``timeouts_to_lose`` of them: a
        busy worker may miss one; a process that is gone refuses the first."""
        key = same_place(address)
        first_fail: Probe | None = None
        last_fail: Probe | None = None
        failed: list[str] = []
        hard = False
        last_ok: int | None = None
        for p in self.probes:
            if p.address != key or p.time_us > to_us:
                continue
            if p.ok:
                first_fail, hard, last_ok = None, False, p.time_us
                failed = []
            else:
                if first_fail is None:
                    first_fail = p
                failed.append(p.trace_id)
                hard = hard or not p.late
                last_fail = p
        if first_fail is None or last_fail is None or last_fail.time_us < from_us:
            return None
        if not hard and len(failed) < self.timeouts_to_lose:
            return None
        return Silence(
            key, first_fail, len(failed), last_ok, tuple(dict.fromkeys(failed)), last_fail
        )

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
        whatever the registry said: busy or stale-busy, not dead). The silence is as it was
        at ``at_us``: its failed probes, and the newest of them, up to then (the probes after
        only confirm it; counted, the same outage read 6 failed checks for one request and 7
        for a retry 5 s later, both with 4 by their time)."""
        silence = self.silent(address, 0, at_us)
        if silence is None:
            return None
        key = same_place(address)
        later = (
            p for p in self.probes if p.address == key and at_us < p.time_us <= at_us + settle_us
        )
        if any(p.ok for p in later):
            return None
        return silence

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
        wanted, worker = Globs.of(globs), Globs.of(all_globs)
        for p in self.probes:
            if p.time_us > at_us:
                break
            service = self.services.get(p.address)
            if service is None:
                return None  # an address nobody answered for: maybe a dead one of this type
            if wanted(service):
                return None
            if not worker(service):
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
