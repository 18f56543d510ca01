"""When the service that refused an operation's status reads answered them again.

A command following an operation (``ktrdr data load`` polls ``GET /api/v1/operations/{id}``)
sees the backend's restart as reads refused (nothing listens), then answered again by the
new process. The first answered read after the last refused one says when the backend came
back: what a process that ran the operation in itself (KTRDR's data loads) lost it to. Reads
the backend itself sent (its proxy's reads from a worker) are the worker's story, not this.
Pure: spans in, a time out.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from opdiag.diagnosis.probes import connection_refused
from opdiag.model import CLIENT, SERVER, Span, Trace, http_status
from opdiag.operations import operation_answered, operation_read

Walks = Sequence[tuple[Trace, Sequence[tuple[Span, int]]]]


def answered_again_us(walks: Walks, operation_id: str | None) -> int | None:
    """The start of the first answered read of ``operation_id`` after the last of its reads
    refused without an HTTP status by the service that answers them; None if none."""
    found = answered_again(walks, operation_id)
    return None if found is None else found.read.start_us


class AnsweredAgain(msgspec.Struct, frozen=True):
    """The first read answered after the refused ones: when the last refused read ended,
    the answering server span, and whether that last read could not connect at all (nothing
    listened: the process was gone) rather than time out on a live one."""

    refused_until_us: int
    read: Span
    could_not_connect: bool


def answered_again(walks: Walks, operation_id: str | None) -> AnsweredAgain | None:
    """``AnsweredAgain`` for ``operation_id``, or None: the restart an operation the backend
    ran in its own process did not survive (its new process answers the read, having failed
    it at start)."""
    if operation_id is None:
        return None
    # refused reads are rare: looked for first, so the answered ones (every poll of a
    # followed operation, a URL match each) are looked at only when there are some
    refused = [
        span
        for _, walk in walks
        for span, _ in walk
        if span.kind == CLIENT
        and span.error
        and http_status(span) is None
        and operation_read(span) == operation_id
    ]
    if not refused:
        return None
    answered = [
        span
        for _, walk in walks
        for span, _ in walk
        if span.kind == SERVER and operation_answered(span) == operation_id
    ]
    answering = {s.service for s in answered}
    refused = [s for s in refused if s.service not in answering]
    if not refused:
        return None
    last = max(refused, key=lambda s: s.start_us + s.duration_us)
    until = last.start_us + last.duration_us
    first = min((s for s in answered if s.start_us >= until), key=lambda s: s.start_us,
                default=None)
    if first is None:
        return None
    return AnsweredAgain(until, first, connection_refused(last))
