"""A tiny OTLP/HTTP trace receiver that writes what it gets as OTLP-JSON lines.

``python -m ktrdr_sim.live.sink --port 4318 --out traces.otlp.jsonl`` records the live demo
without a Jaeger; opdiag reads the file (``opdiag operations --traces FILE``). The tests use it
to check that spans really cross processes. Only protobuf bodies (what the SDK's
OTLP/HTTP exporter sends) are accepted.
"""

from __future__ import annotations

import argparse
import base64
import json
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def to_json(body: bytes) -> dict[str, Any]:
    """An ExportTraceServiceRequest as OTLP/JSON (ids in lower-case hex, as the spec says)."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    doc = MessageToDict(request, use_integers_for_enums=True)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for sp in ss.get("spans", []):
                for key in _ID_KEYS:
                    if sp.get(key):
                        sp[key] = base64.b64decode(sp[key]).hex()
    return doc


class Sink:
    """Collects export requests in memory and, optionally, appends them to a JSON-lines file."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, out: Path | None = None) -> None:
        self.out = out
        self.docs: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        sink = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if self.path.rstrip("/") != "/v1/traces":
                    self.send_error(404)
                    return
                try:
                    doc = to_json(body)
                except Exception:  # a malformed body is the sender's problem: 400
                    self.send_error(400)
                    return
                sink.add(doc)
                payload = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer((host, port), _Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, doc: dict[str, Any]) -> None:
        with self._lock:
            self.docs.append(doc)
            if self.out is not None:
                with self.out.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(doc, sort_keys=True) + "\n")

    def spans(self) -> list[tuple[str, dict[str, Any]]]:
        """(service.name, span) of everything received so far."""
        with self._lock:
            docs = list(self.docs)
        found = []
        for doc in docs:
            for rs in doc.get("resourceSpans", []):
                attrs = {a["key"]: a["value"].get("stringValue")
                         for a in rs.get("resource", {}).get("attributes", [])}
                for ss in rs.get("scopeSpans", []):
                    found.extend((attrs.get("service.name", ""), sp)
                                 for sp in ss.get("spans", []))
        return found

    def start(self) -> Sink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ktrdr_sim.live.sink", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4318)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    sink = Sink(args.host, args.port, args.out)
    print(f"OTLP/HTTP sink on {args.host}:{sink.port}, writing {args.out}", flush=True)
    try:
        sink.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sink.server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
