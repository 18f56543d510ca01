"""A seeded id generator so the recorded corpus is byte-for-byte reproducible."""

from __future__ import annotations

import random

from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import INVALID_SPAN_ID, INVALID_TRACE_ID


class SeededIdGenerator(IdGenerator):
    """Trace and span ids drawn from one seeded ``random.Random`` (shared by all processes)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def generate_span_id(self) -> int:
        value = self._rng.getrandbits(64)
        while value == INVALID_SPAN_ID:
            value = self._rng.getrandbits(64)
        return value

    def generate_trace_id(self) -> int:
        value = self._rng.getrandbits(128)
        while value == INVALID_TRACE_ID:
            value = self._rng.getrandbits(128)
        return value
