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

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec

from opdiag.diagnosis.neighbour_spec import NeighbourSpec
from opdiag.diagnosis.probes import (
    Probe,
    Replacement,
    Silence,
    Unregistered,
    WorkerView,
    address_of,
    beats_of,
    connect_timed_out,
    connection_refused,
    nothing_probed,
    probes_of,
    refused,
    same_place,
)
from opdiag.globs import Globs
from opdiag.model import CLIENT, SERVER, Span, Trace, http_method, http_status, url_of, url_path
from opdiag.operations import operation_route
from opdiag.timeutil import clock_hms


class Worker(msgspec.Struct, frozen=True):
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
    read_from: dict[str, Worker] = {}  # addresses the backend read the operation from

    for span in spans:
        service = span.service
        if is_worker(service) and service not in worker_services:
            worker_services[service] = span
        if span.kind != CLIENT:
            continue
        url = url_of(span)
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
            service = view.service_at(key, span.start_us)
            if service is not None and is_worker(service):
                found[key] = Worker(service, key, False, span)
        elif not found and _reads_operation(span):
            service = view.service_at(key, span.start_us) if key in view.services else None
            if service is not None and is_worker(service):
                read_from.setdefault(key, Worker(service, key, True, None))
    if not found and not worker_services:
        # nothing of a worker in its traces (killed before its first export): the backend
        # reads an operation only from the worker that accepted it (KTRDR registers the
        # proxy once the dispatch is answered), so the worker it read from took it
        found.update(read_from)
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


def _called_path(span: Span) -> str | None:
    """The path of the URL a client span called; None without a readable URL."""
    url = url_of(span)
    if not isinstance(url, str):
        return None
    try:
        return urlsplit(url).path
    except ValueError:
        return None


def _reads_operation(span: Span) -> bool:
    """A client span of the backend reading an operation from a worker (its proxy's
    ``GET /api/v1/operations/{id}``, and the routes below it)."""
    path = _called_path(span)
    return path is not None and operation_route(path) is not None


def _is_call(span: Span) -> bool:
    """A client span that is a real call, not a health probe or a status poll."""
    path = _called_path(span)
    return path is not None and not path.endswith("/health") and operation_route(path) is None


# --- the verdict's evidence -------------------------------------------------------------------


def clock_text(us: int) -> str:
    """``16:01:04 UTC``: when something happened, as a summary says it."""
    clock = clock_hms(us)
    if clock is None:
        return datetime.fromtimestamp(us / 1e6, tz=UTC).strftime("%H:%M:%S UTC")
    return f"{clock} UTC"


class WorkerAssessment(msgspec.Struct, frozen=True):
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
    view: WorkerView | None = None  # what the probes said, for naming other addresses
    # when the worker that runs the operation last answered a health check (in flight only)
    answered_us: int | None = None
    # other workers of the type that answered after the lost one went silent: (service,
    # address, last answer), the newest answer first
    standby: tuple[tuple[str, str, int], ...] = ()
    # of those, the ones the health checks after the window (``later``) found silent by
    # now: (service, address, first failed check); ``standby`` then holds only the others
    standby_gone: tuple[tuple[str, str, int], ...] = ()
    # the standby was judged on the window's probes alone (no later ones were given)
    standby_unchecked: bool = False
    # a request that found no worker free while some of its type answered: those of its
    # type that were silent then (one busy, one dead: the 503 says "busy" for both)
    capable_silent: tuple[Silence, ...] = ()
    # with ``capable_lost``: the moment the request was judged at (its end)
    judged_us: int | None = None
    # with ``capable_lost``: another request's call the dead worker refused before its
    # first failed check (the dispatch that found it dead first): the same outage
    refused_first: Span | None = None
    # with ``capable_lost``: the other requests of its type the backend answered 503 while
    # that worker was dead, earlier or later (trace id, when): the same outage's
    turned_away: tuple[tuple[str, int], ...] = ()

    def service_called(self, span: Span) -> tuple[bool, str | None]:
        """Whether a client span called another worker's address than the assessed
        worker's, and then the process the probes knew there (None: unknown). A dispatch
        that failed on a dead worker while the operation ran on another must not name the
        one it ran on; the CLI's call to the backend (an address the health checks of the
        workers never reach) is no call to another worker."""
        if span.kind != CLIENT:
            return False, None
        address = address_of(url_of(span))
        if address is None:
            return False, None
        place = same_place(address)
        if self.worker is not None and self.worker.address == place:
            return False, None
        if self.view is None or not self.view.probes:
            return True, None  # no health checks to tell a worker's address by
        if place not in self.view.probed:
            return False, None  # the workers are probed, this address never: the backend
        return True, self.view.service_at(place, span.start_us)

    @property
    def silence(self) -> Silence | None:
        return self.lost or self.capable_lost

    @property
    def first_sign(self) -> Probe | None:
        """The probe that first showed the worker gone (the lost worker's subject)."""
        if self.silence is not None:
            return self.silence.since
        return self.replaced.since if self.replaced is not None else None

    @property
    def deciding_probe(self) -> Probe | None:
        """The probe that shows the worker gone (``subject: worker_probe``): for a request
        that found every capable worker dead, the newest failed check before it (what the
        registry knew then); else the first sign."""
        if self.capable_lost is not None:
            return self.capable_lost.last or self.capable_lost.since
        return self.first_sign

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
        if self.standby:
            out["worker.standby"] = ", ".join(
                f"{service} at {address} (answered at {clock_text(at)})"
                for service, address, at in self.standby
            )
        if self.standby_gone:
            out["worker.standby_gone"] = "; ".join(
                f"{service} at {address} since {clock_text(at)}"
                for service, address, at in self.standby_gone
            )
        again = self.replaced
        if again is not None and self.silence is None:
            out["worker.since"] = clock_text(again.since.time_us)
            out["worker.failed_checks"] = again.failed
            out["worker.failed_checks_text"] = _checks_text(again.failed)
            out["worker.replaced_by"] = again.by
            out["worker.how"] = (
                f"answered again as {again.by or 'a new process'} after "
                f"{again.failed} failed health check(s) from {clock_text(again.since.time_us)}"
            )
        if self.capable_silent:
            out["worker.silent_capable"] = "; ".join(
                self._silent_text(s) for s in self.capable_silent
            )
        none = self.unregistered or self.no_workers
        if none is not None:
            out["worker.others"] = ", ".join(none.others) or "no worker"
            out["worker.checks"] = none.checks
            out["worker.checked_since"] = clock_text(none.since_us)
        silence = self.silence
        if silence is not None and silence.last_ok_us is not None:
            out["worker.last_answer"] = clock_text(silence.last_ok_us)
        if self.capable_lost is not None and self.judged_us is not None:
            out["worker.judged_at"] = clock_text(self.judged_us)
        if self.turned_away:
            out["worker.turned_away"] = ", ".join(
                f"{trace_id} at {clock_text(at)}" for trace_id, at in self.turned_away
            )
        first = self.refused_first
        if first is not None:
            out["worker.refused_first"] = (
                f"{http_method(first) or 'a call'} {url_path(first)} of request "
                f"{first.trace_id} at {clock_text(first.start_us)}"
            )
        if silence is not None:
            out["worker.since"] = clock_text(silence.since.time_us)
            out["worker.failed_checks"] = silence.failed
            out["worker.failed_checks_text"] = _checks_text(silence.failed)
            out["worker.failure"], out["worker.state"] = _failure_of(silence.last or silence.since)
            out["worker.how"] = (
                f"{silence.failed} health check(s) failed since {clock_text(silence.since.time_us)}"
                f" ({silence.since.error or 'no answer'})"
            )
        return out

    def _silent_text(self, silence: Silence) -> str:
        """``ktrdr-training-worker-… at 127.0.0.1:5006 is not answering (since 15:46:21
        UTC, refused: the process is gone)``."""
        view = self.view
        service = view.service_at(silence.address, silence.since.time_us) if view else None
        failure = _failure_of(silence.last or silence.since)[0] or "no answer"
        return (
            f"{service or 'the worker'} at {silence.address} is not answering (since "
            f"{clock_text(silence.since.time_us)}, {failure})"
        )


def _standby(
    view: WorkerView, globs: Sequence[str], lost: Silence, now_us: int
) -> tuple[tuple[str, str, int], ...]:
    """The other workers of the type that answered a health check after the lost one went
    silent (run1: a second backtest worker on :5004 answered while the killed one's
    operation waited for the orphan detector): a run started again goes to one of them."""
    capable = Globs.of(globs)  # as WorkerView.addresses_of matches them
    latest: dict[str, tuple[str, int]] = {}
    for probe in view.probes:
        by = probe.answered_by
        if (
            probe.ok
            and by
            and probe.address != lost.address
            and lost.since.time_us <= probe.time_us <= now_us
            and capable(by)
        ):
            known = latest.get(probe.address)
            if known is None or probe.time_us > known[1]:
                latest[probe.address] = (by, probe.time_us)
    found = sorted(((s, a, t) for a, (s, t) in latest.items()), key=lambda x: -x[2])
    return tuple(found)


def _still_standing(
    view: WorkerView,
    later: Sequence[Probe],
    standby: tuple[tuple[str, str, int], ...],
    now_us: int,
) -> tuple[tuple[tuple[str, str, int], ...], tuple[tuple[str, str, int], ...]]:
    """The standby workers split by the health checks after the neighbour window, up to
    now: those still answering (with their newest answer) and those silent since (with
    their first failed check). Judged hours later, run1's lost training named the other
    training worker as one to run on, though that one had died too at 16:01:01."""
    seen = {(p.trace_id, p.span_id) for p in view.probes}
    new = [p for p in later if (p.trace_id, p.span_id) not in seen and p.time_us <= now_us]
    if not new:
        return standby, ()
    combined = WorkerView.of(
        sorted([*view.probes, *new], key=lambda p: p.time_us), view.timeouts_to_lose
    )
    up: list[tuple[str, str, int]] = []
    down: list[tuple[str, str, int]] = []
    for service, address, at in standby:
        silence = combined.silent(address, at, now_us)
        if silence is not None:
            down.append((service, address, silence.since.time_us))
        else:
            newest = combined.last_answer(address, service, at, now_us)
            up.append((service, address, newest if newest is not None else at))
    return tuple(up), tuple(down)


def _taken_over(view: WorkerView, worker: Worker, from_us: int, to_us: int) -> bool:
    """Whether another process answered at the worker's address between ``from_us`` and
    ``to_us``, after the worker itself had: one of another name, or any answer after a
    refused check (nothing listened: a new process, even under a fixed KTRDR_WORKER_ID). A
    worker started again on the port of the one that died, which then died too: the later
    silence is not the first one's."""
    key = same_place(worker.address or "")
    mine = gone = False
    for p in view.probes:
        if p.address != key or not from_us <= p.time_us <= to_us:
            continue
        if p.ok:
            other = p.answered_by is not None and p.answered_by != worker.service
            if mine and (gone or other):
                return True
            mine = mine or not other
        else:
            gone = gone or (mine and refused(p))
    return False


def _failure_of(probe: Probe) -> tuple[str | None, str]:
    """How the newest failed check failed, short and as a step says it: a refused connection
    means nothing listens (the process is gone); a read timeout means it is there but stuck,
    which calls for another fix (a stopped or deadlocked process is not restarted by
    itself); a connect timeout, that its host does not answer at all. The newest, because a
    worker that thrashed (timed out) before it was killed then refuses."""
    if connect_timed_out(probe):
        return "unreachable: its host does not answer", (
            "connecting to it times out: its host is down or cut off (network, firewall), "
            "or too overloaded to accept a connection"
        )
    if refused(probe):
        return "refused: the process is gone", (
            "nothing listens there: the process is gone (killed, crashed, out of memory)"
        )
    if probe.late:
        return "timed out: the process hangs", (
            "it accepts the connection but does not answer in time: the process is there but "
            "hangs or is stopped (SIGSTOP, a deadlock, an overloaded host); kill it before "
            "starting it again"
        )
    return None, "the process died or hangs (killed, out of memory, host gone)"


def probe_failure(probe: Probe) -> str | None:
    """How one failed check failed, short (``refused: the process is gone``); None when
    the probe did not fail in a way that says."""
    return None if probe.ok else _failure_of(probe)[0]


def _checks_text(failed: int) -> str:
    return f"{failed} failed check{'' if failed == 1 else 's'}"


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
    later: Sequence[Trace] | None = None,
) -> WorkerAssessment:
    """Who ran the operation, and did it go silent before ``judge_until_us`` (the terminal
    transition, or now)? ``settled``: the operation completed or was cancelled, so whatever
    its worker did afterwards is not its story. ``calls`` and ``worker_ends``: the client
    spans and first worker spans of ``own`` and the last end of each worker service, when the
    caller has them (``diagnosis.survey``; ``workers_of`` looks at nothing else).
    ``later``: the health checks after the neighbour window up to now, when the caller
    fetched them: whether the other workers a lost one's operation could go to still
    answer (None: not asked for)."""
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
        answered = None
        if ran and not settled and worker.address:
            lost = view.silent(worker.address, start_us, judge_until_us)
            if lost is not None and _taken_over(view, worker, start_us, lost.since.time_us):
                lost = None  # the silence is of the process that took its address since
            if lost is None:
                again = view.replaced(worker.address, worker.service, start_us, judge_until_us)
                if again is not None and seen is not None and seen > again.since.time_us:
                    again = None  # it still reported on the operation afterwards: not replaced
            if lost is None and again is None:
                answered = view.last_answer(
                    worker.address, worker.service, start_us, judge_until_us
                )
        standby: tuple[tuple[str, str, int], ...] = ()
        gone: tuple[tuple[str, str, int], ...] = ()
        if lost is not None and operation_type:
            standby = _standby(view, spec.worker_globs(operation_type), lost, now_us)
            if standby and later:
                standby, gone = _still_standing(
                    view, probes_of(later, spec.health_checks), standby, now_us
                )
        turned: tuple[tuple[str, int], ...] = ()
        if not ran and worker.address and operation_type:
            # a dispatch the worker never answered, its process gone: the 503s the same
            # outage gave other requests are one story with it (run1: the 500 of ba9b00b8,
            # then the 503s of 1880c513 and 34a15514 from the same dead worker)
            settle = max(0, min(int(spec.settle_s * 1e6), now_us - judge_until_us))
            dead = view.dead_at(worker.address, judge_until_us, settle)
            if dead is not None:
                own_ids = {trace.trace_id for trace, _ in own}
                turned = _turned_away(neighbours, dead, own_ids, operation_type, view)
        return WorkerAssessment(
            worker,
            bool(ran),
            lost,
            None,
            (),
            len(probes),
            seen,
            again,
            view=view,
            answered_us=answered,
            standby=standby,
            standby_gone=gone,
            standby_unchecked=bool(standby) and later is None,
            turned_away=turned,
        )
    globs = spec.worker_globs(operation_type) if operation_type else ()
    capable = tuple(view.addresses_of(globs)) if globs else ()
    if settled:
        return WorkerAssessment(None, False, None, None, capable, len(probes), view=view)
    if not capable:
        none = view.unseen(globs, all_globs, judge_until_us) if globs else None
        nobody = None
        if globs and none is None:
            nobody = nothing_probed(probes, beats_of(neighbours, spec.heartbeats), judge_until_us)
        return WorkerAssessment(
            None,
            False,
            None,
            None,
            (),
            len(probes),
            unregistered=none,
            no_workers=nobody,
            view=view,
        )
    settle = max(0, min(int(spec.settle_s * 1e6), now_us - judge_until_us))
    # a worker first checked after the request registered later (started then): it was
    # not there to be busy, so it does not make the dead ones merely busy
    registered = {p.address for p in view.probes if p.time_us <= judge_until_us}
    capable = tuple(a for a in capable if same_place(a) in registered) or capable
    silences = [view.dead_at(a, judge_until_us, settle) for a in capable]
    if any(s is None for s in silences):
        dead = tuple(s for s in silences if s is not None)
        return WorkerAssessment(
            None, False, None, None, capable, len(probes), view=view, capable_silent=dead
        )
    first = min((s for s in silences if s is not None), key=lambda s: s.since.time_us)
    gone = Worker(view.service_at(first.address, first.since.time_us), first.address, False, None)
    own_ids = {trace.trace_id for trace, _ in own}
    return WorkerAssessment(
        gone,
        False,
        None,
        first,
        capable,
        len(probes),
        view=view,
        judged_us=judge_until_us,
        refused_first=_refused_before(neighbours, first, own_ids),
        turned_away=_turned_away(neighbours, first, own_ids, operation_type, view),
    )


def _turned_away(
    neighbours: Sequence[Trace],
    silence: Silence,
    own_ids: set[str],
    operation_type: str | None,
    view: WorkerView,
) -> tuple[tuple[str, int], ...]:
    """The other requests for a worker of ``operation_type`` (a span of theirs says
    ``worker.type``) the backend answered 503 while ``silence``'s address was dead (after
    its last answer, before it answered again), earlier or later: one outage, whose rows
    said it alike without naming each other."""
    after = silence.last_ok_us if silence.last_ok_us is not None else 0
    again = view.first_answer(silence.address, silence.since.time_us)
    until = again.time_us if again is not None else None
    found: list[tuple[str, int]] = []
    for trace in neighbours:
        if trace.trace_id in own_ids or trace.start_us <= after:
            continue
        if until is not None and trace.start_us >= until:
            continue
        spans = trace.spans
        if not any(_of_type(s, operation_type) for s in spans):
            continue
        answered = [s for s in spans if s.kind == SERVER and http_status(s) == 503]
        if answered:
            found.append((trace.trace_id, min(s.start_us for s in answered)))
    return tuple(sorted(found, key=lambda f: (f[1], f[0])))


def _of_type(span: Span, operation_type: str | None) -> bool:
    """Does the span say it needed a worker of ``operation_type`` (``worker.type``; the
    documented dialect shouts it)?"""
    value = span.attributes.get("worker.type")
    return isinstance(value, str) and value.strip().lower() == operation_type


def _refused_before(
    neighbours: Sequence[Trace], silence: Silence, own_ids: set[str]
) -> Span | None:
    """The first call of another request that ``silence``'s address refused after its last
    answer and before its first failed check: the dispatch that met the dead worker first
    (run1: a backtest's POST to :5003 refused at 15:50:54, the first failed health check at
    15:51:00): the requests that met the outage later name it."""
    after = silence.last_ok_us if silence.last_ok_us is not None else 0
    before = silence.since.time_us
    best: Span | None = None
    for trace in neighbours:
        if trace.trace_id in own_ids:
            continue
        for span in trace.spans:
            if span.kind != CLIENT or not after < span.start_us < before:
                continue
            address = address_of(url_of(span))
            if address is None or same_place(address) != silence.address:
                continue
            if connection_refused(span) and (best is None or span.start_us < best.start_us):
                best = span
    return best
