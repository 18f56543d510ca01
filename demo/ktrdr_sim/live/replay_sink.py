"""The live demo without a Jaeger: an OTLP/HTTP receiver feeding opdiag's replay Jaeger.

``ReplaySink`` is the demo's ``Sink`` (it still keeps what it receives) whose every export
request is also added to a running ``ReplayJaeger``, so opdiag can be pointed at a Jaeger
query API that grows as the simulated KTRDR works: the alert and store tests, and the
watcher benchmark, use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opdiag.devtools.replay_jaeger import ReplayJaeger

from ktrdr_sim.live.sink import Sink


class ReplaySink(Sink):
    """A ``Sink`` that also feeds ``replay``."""

    def __init__(self, replay: ReplayJaeger, host: str = "127.0.0.1", port: int = 0,
                 out: Path | None = None) -> None:
        super().__init__(host, port, out)
        self.replay = replay

    def add(self, doc: dict[str, Any]) -> None:
        super().add(doc)
        self.replay.add_document(doc, "otlp export")
