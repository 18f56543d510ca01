"""Epoch-aligned time buckets of the verdict counts, shared by the two ways of counting
(the service over diagnoses from the traces, the verdict store in SQL): same validation, same
alignment, same zero rows, so a panel cannot tell which one answered."""

from __future__ import annotations

from collections.abc import Mapping

from opdiag.api.schemas import VerdictCountRow
from opdiag.diagnosis.result import VERDICTS
from opdiag.errors import InputError
from opdiag.render.rows import verdict_count_row
from opdiag.timeutil import US_PER_MS

MAX_BUCKETS = 10_000


def check_buckets(start_us: int, end_us: int, bucket_us: int) -> None:
    """``InputError`` for a bucket that is not positive or yields too many buckets."""
    if bucket_us <= 0:
        raise InputError("interval must be positive", field="interval")
    first = start_us - start_us % bucket_us
    if (end_us - first) // bucket_us > MAX_BUCKETS:
        raise InputError(f"interval too small: more than {MAX_BUCKETS} buckets", field="interval")


def bucket_of(time_us: int, bucket_us: int) -> int:
    """The start of the epoch-aligned bucket holding ``time_us``."""
    return time_us - time_us % bucket_us


def count_rows(
    counts: Mapping[tuple[int, str], int], start_us: int, end_us: int, bucket_us: int
) -> list[VerdictCountRow]:
    """Rows for every bucket of the range and every verdict seen in it (zeros included, so
    time series stay aligned); verdicts in ``VERDICTS`` order, others after, sorted."""
    seen = {verdict for _, verdict in counts}
    order = [v for v in VERDICTS if v in seen] + sorted(seen - set(VERDICTS))
    rows = []
    bucket = bucket_of(start_us, bucket_us)
    while bucket < end_us:
        rows.extend(
            verdict_count_row(bucket // US_PER_MS, v, counts.get((bucket, v), 0)) for v in order
        )
        bucket += bucket_us
    return rows
