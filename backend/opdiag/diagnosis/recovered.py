"""Failed attempts that did not decide the operation's outcome, as the engine treats them.

Two kinds: a call a retry made good (``analysis.retries``), and a status poll of an operation
that then completed or whose polled service answered again (KTRDR's CLI gives up following
when the backend stops answering, a restarted backend is back 30 s later, and the worker
finishes the work all the same). A poll only reads; the caller that gave up because of it
(the CLI command, in error in the same service) gave up on watching, not on the work.

Their spans stay in the flow (marked ``recovered``) and the rules still look at them, but
what fires on them cannot decide the verdict: the findings of one attempt become a single
advisory finding (the highest-ranked one, the others in its ``also``), which says the attempt
failed and what made it good. Their error spans are not the operation's
(``operation_facts(recovered=…)``) and their calls do not say which worker ran it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

import msgspec
from msgspec.structs import replace

from opdiag.analysis.retries import Retry, retries
from opdiag.diagnosis.neighbours import clock_text
from opdiag.diagnosis.probes import address_of, connection_refused, same_place
from opdiag.diagnosis.result import SEVERITIES, Finding
from opdiag.diagnosis.rules import RuleSet
from opdiag.model import CLIENT, SERVER, Span, Trace, below, url_of

Walks = Sequence[tuple[Trace, Sequence[tuple[Span, int]]]]


class Recovered(msgspec.Struct):
    """The spans of the operation's failed attempts that did not decide its outcome."""

    # (trace id, span id) -> the attempt it belongs to (the attempt, everything below it,
    # and the callers that gave up because of it)
    attempt: dict[tuple[str, str], Retry]

    def __bool__(self) -> bool:
        return bool(self.attempt)

    def of(self, span: Span) -> Retry | None:
        return self.attempt.get((span.trace_id, span.span_id))

    @property
    def ids(self) -> dict[str, set[str]]:
        """Trace id -> the span ids of its recovered spans (``operation_facts(recovered=…)``)."""
        out: dict[str, set[str]] = {}
        for trace_id, span_id in self.attempt:
            out.setdefault(trace_id, set()).add(span_id)
        return out


def recovered_attempts(
    walks: Walks,
    *,
    completed: Span | None = None,
    is_poll: Callable[[Span], bool] | None = None,
    around: Sequence[Trace] = (),
    lives_on: str | None = None,
) -> Recovered:
    """Every failed attempt of the operation's walks that a later identical call made good;
    with ``is_poll``, also every failed poll that ended before ``completed`` (the transition
    to completed) or after which the polled service answered again (in the walks or in
    ``around``, the traces near the operation), and the callers in error that gave up
    because of them. ``lives_on``: the service of the operation's last transition; only
    work that lives on another service than the polled one survives the polled one's
    restart (KTRDR's backend runs a data load itself: a new backend process has lost it)."""
    attempt: dict[tuple[str, str], Retry] = {}
    answered = _Answered(walks, around, lives_on)
    for trace, walk in walks:
        found = retries(trace, walk)
        if is_poll is not None and lives_on is not None:
            # a poll refused by the process the work lives on, answered again on a retry:
            # that answer came from a new process, which lost the work
            found = [r for r in found if not (is_poll(r.failed) and answered.lost_with(r.failed))]
        if is_poll is not None:
            made_good = {r.failed.span_id for r in found}
            for span in abandoned_polls(walk, completed.start_us if completed else None, is_poll):
                if span.span_id in made_good:
                    continue
                if completed is not None:
                    found.append(Retry(span, completed, "completed"))
                elif (back := answered.after(span)) is not None:
                    found.append(Retry(span, back, "answered"))
        in_trace: set[str] = set()
        for retry in found:
            for sid in below(trace.children, [retry.failed.span_id]) - in_trace:
                in_trace.add(sid)
                attempt[(trace.trace_id, sid)] = retry
        pending: dict[str, int] = {}
        for retry in found:  # then the callers that failed only because of them
            for sid in _gave_up(trace, retry.failed, in_trace, pending):
                attempt.setdefault((trace.trace_id, sid), retry)
    return Recovered(attempt)


def abandoned_polls(
    walk: Sequence[tuple[Span, int]], before_us: int | None, is_poll: Callable[[Span], bool]
) -> list[Span]:
    """Failed status polls (client calls the noise check calls polling) that ended before
    ``before_us`` (None: whenever)."""
    return [
        span
        for span, _ in walk
        if span.error
        and span.kind == CLIENT
        and (before_us is None or span.start_us + span.duration_us <= before_us)
        and is_poll(span)
    ]


class _Answered:
    """When a polled service showed it was up again. The service behind a poll's address is
    the one whose server spans answered calls to that address (an earlier poll that got
    through); any span of it that starts after the failed poll ended is a sign of life (a
    restarted backend's health rounds, a worker re-registering with it)."""

    def __init__(self, walks: Walks, around: Sequence[Trace], lives_on: str | None) -> None:
        self._walks = walks
        self._around = around
        self._lives_on = lives_on
        self._services: dict[str, str] | None = None
        self._of: dict[str, tuple[list[int], list[Span]]] = {}  # service -> its spans by start

    def _service_at(self, address: str) -> str | None:
        if self._services is None:
            self._services = {}
            for trace, walk in self._walks:
                for span, _ in walk:
                    if span.kind != CLIENT or span.error:
                        continue
                    place = address_of(url_of(span))
                    if place is None:
                        continue
                    for child in trace.children.get(span.span_id, ()):
                        if child.kind == SERVER:
                            self._services.setdefault(same_place(place), child.service)
        return self._services.get(address)

    def lost_with(self, poll: Span) -> bool:
        """Was ``poll`` refused (nothing listened) by the service the work lives on?"""
        place = address_of(url_of(poll))
        service = self._service_at(same_place(place)) if place is not None else None
        return service is not None and service == self._lives_on and connection_refused(poll)

    def after(self, poll: Span) -> Span | None:
        """The first span of the polled service that started after ``poll`` ended."""
        place = address_of(url_of(poll))
        service = self._service_at(same_place(place)) if place is not None else None
        if service is None or self._lives_on in (None, service):
            return None
        found = self._of.get(service)
        if found is None:  # once per service: a follower may have failed thousands of polls
            own = (s for _, walk in self._walks for s, _ in walk)
            near = (s for t in self._around for s in t.spans)
            mine = sorted(
                (s for s in chain(own, near) if s.service == service), key=lambda s: s.start_us
            )
            found = self._of[service] = ([s.start_us for s in mine], mine)
        starts, mine = found
        i = bisect_right(starts, poll.start_us + poll.duration_us)
        return mine[i] if i < len(mine) else None


def _gave_up(
    trace: Trace, failed: Span, recovered: set[str], pending: dict[str, int]
) -> list[str]:
    """The ancestors of ``failed`` in its own service that are in error and whose every
    child in error is recovered: the caller that stopped because that call failed. Each
    one found joins ``recovered`` (its own caller is judged with it there). ``pending``:
    per parent seen, its children in error not recovered yet, counted once and kept up to
    date across the attempts of one trace (ten thousand failed polls under one command)."""
    out: list[str] = []
    parent_id = failed.parent_id
    while parent_id is not None and parent_id not in recovered:
        parent = trace.by_id.get(parent_id)
        if parent is None or not parent.error or parent.service != failed.service:
            break
        left = pending.get(parent_id)
        if left is None:
            kids = trace.children.get(parent_id, ())
            left = pending[parent_id] = sum(
                1 for k in kids if k.error and k.span_id not in recovered
            )
        if left:
            break
        out.append(parent_id)
        recovered.add(parent_id)
        above = parent.parent_id
        if above is not None and above in pending:
            pending[above] -= 1  # an errored child of it, recovered now
        parent_id = above
    return out


def advisory(findings: Sequence[Finding], retry: Retry, rules: RuleSet) -> Finding:
    """One failed attempt's findings as the single advisory finding that stays: the
    highest-ranked one (priority, then severity), no verdict, the others in ``also``."""

    def rank(f: Finding) -> tuple[int, int]:
        rule = rules.get(f.rule_id)
        severity = -SEVERITIES.index(f.severity) if f.severity in SEVERITIES else -9
        return (rule.priority if rule is not None else 0, severity)

    ordered = sorted(findings, key=rank, reverse=True)
    top = ordered[0]
    also: list[dict[str, Any]] = [
        {
            "rule_id": f.rule_id,
            "verdict": f.verdict,
            "summary": f.summary,
            "service": f.service,
            "span_name": f.span_name,
            "trace_id": f.trace_id,
            "span_id": f.span_id,
        }
        for f in ordered[1:]
    ]
    ok = retry.retry
    evidence: dict[str, Any] = {
        **top.evidence,
        "recovered_from": top.verdict,
        "retry.span_id": ok.span_id,
        "retry.time": clock_text(ok.start_us),
    }
    if also:
        evidence["also"] = also
    return replace(
        top,
        verdict=None,
        severity="warning",
        summary=f"recovered: {top.summary} — {_made_good(retry)}",
        evidence=evidence,
    )


def _made_good(retry: Retry) -> str:
    ok, at = retry.retry, clock_text(retry.retry.start_us)
    if retry.how == "completed":
        return f"a status read only; the operation completed at {at} ({ok.name} on {ok.service})"
    if retry.how == "answered":
        url = url_of(ok) if ok.kind == CLIENT else None
        what = f"{ok.name} {url}" if isinstance(url, str) else ok.name
        return f"a status read only; {ok.service} was up again at {at} ({what})"
    return f"the same call ({ok.name} on {ok.service}) was made again at {at} and succeeded"


NOTHING_RECOVERED = Recovered({})
