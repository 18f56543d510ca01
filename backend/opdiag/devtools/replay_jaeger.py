"""A loopback Jaeger that replays traces in the shapes real Jaeger answers with.

Tests, the load benchmark and demos talk to this server where a real Jaeger cannot do what they
need: injected faults, and releases other than the pinned one. Its answers are checked against
the real Jaeger v2.12 (``tests/test_real_jaeger_replay.py``, the binary ``make jaeger`` builds).
It is fed trace files (OTLP-JSON, OTLP lines, api_v3 bodies, legacy envelopes, legacy trace
objects, the anonymizer's span arrays) and answers, per ``flavor``:

* ``/`` (and every unknown path): the UI's index page, 200 ``text/html``, with
  ``JAEGER_VERSION = {…};`` injected the way the query service does;
* ``/api/v3/services`` (``{}`` when empty), ``/api/v3/operations?service=``,
  ``/api/v3/traces`` (all matching traces merged into one ``resourceSpans`` list; empty → 404
  ``No traces found`` as ``text/plain``; missing time bounds → 400 in the flavor's wording; a
  depth outside 1..max traces → 500 as the in-memory storage answers),
  ``/api/v3/traces/{id}`` — not in flavor ``v1``; flavor ``v2.18`` (≤ v2.18, the pinned v2.12
  included) reads only snake_case names, ignores ``query.attributes`` and has no default depth,
  and its JSON arrives as Go-sniffed ``text/plain`` (its gateway sets no Content-Type);
* legacy ``/api/services`` (``data: null`` when empty), ``/api/services/{s}/operations``,
  ``/api/operations?service=``, ``/api/traces`` (400 ``parameter 'service' is required``),
  ``/api/traces/{id}`` (404 envelope ``trace not found``), bodies as Go's ``encoding/json``
  writes them (compact, ``<>&`` escaped); errors through Go's ``http.Error``.

Search (``opdiag.devtools.replay_store``) follows Jaeger's in-memory storage: a trace matches
when one span *of the requested service* has the operation name, starts in the window (both
bounds inclusive) and carries every tag (span attributes, scope, resource/process tags,
event/log fields); matches come most recently received first, cut at the depth. Values match
exactly, or as an anchored regular expression when ``storage`` is
``elasticsearch``/``opensearch``. ``faults`` inject failures: ``refuse`` (closed port), ``slow``
(sleep), ``http500``, ``html`` (the UI page for everything), ``truncated`` (cut JSON),
``trickle`` (the body one byte every ``seconds``), ``huge`` (a body of ``size`` bytes, its
length not announced). ``calls``, ``connections`` and ``max_in_flight`` let tests check what a
client did.

Run ``python -m opdiag.devtools.replay_jaeger --traces DIR --port 16686`` for a demo Jaeger.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from fnmatch import fnmatchcase
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from opdiag.devtools.replay_store import StoredTrace, TraceStore, pad_id

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"  # Go's http.Error, and Go's sniffing of a JSON body
HTML = "text/html; charset=utf-8"
FAULT_KINDS = ("refuse", "slow", "http500", "html", "truncated", "trickle", "huge")
# The in-memory storage's bound (all-in-one default): a depth must lie in 1..MAX_TRACES.
MAX_TRACES = 100_000
DEPTH_ERROR = "search depth must be greater than 0 and less than max traces"
REGEX_STORAGES = frozenset({"elasticsearch", "opensearch"})


@dataclass(frozen=True, slots=True)
class Flavor:
    """What one Jaeger release serves."""

    name: str
    version: str
    v3: bool  # has the /api/v3 HTTP gateway
    camel: bool  # reads v2.19+ camelCase names (and the snake_case aliases)
    attributes: bool  # honours query.attributes
    v3_content_type: str  # Content-Type of api_v3 JSON answers
    default_depth: int  # search depth when the request names none (0: none, storage refuses)


FLAVORS: dict[str, Flavor] = {
    "v2.20": Flavor("v2.20", "v2.20.0", True, True, True, JSON, 100),
    "v2.18": Flavor("v2.18", "v2.18.0", True, False, False, TEXT, 0),
    "v1": Flavor("v1", "v1.76.0", False, False, False, JSON, 100),
}


@dataclass(slots=True)
class Fault:
    """One injected failure. ``times`` = how many matching requests it hits (None: all);
    ``path`` = fnmatch pattern on the request path; ``seconds`` = sleep of ``slow``, or the
    pause between the bytes of ``trickle``; ``size`` = body bytes of ``huge``."""

    kind: str
    times: int | None = None
    path: str = "*"
    seconds: float = 5.0
    size: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; expected one of {FAULT_KINDS}")


def _fault(spec: Fault | str) -> Fault:
    return spec if isinstance(spec, Fault) else Fault(spec)


# --------------------------------------------------------------------------- encoding


def go_json(obj: Any) -> bytes:
    """JSON as Go's encoding/json writes it: compact, ``<``, ``>``, ``&`` escaped."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    for raw, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, esc)
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text.encode("utf-8")


def index_html(version: str) -> bytes:
    """The UI's index page after the query service injected its version."""
    injected = json.dumps(
        {"gitCommit": "0" * 40, "gitVersion": version, "buildDate": "2026-07-19T00:00:00Z"},
        separators=(",", ":"),
    )
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<base href="/" data-inject-target="BASE_URL"/>\n<title>Jaeger UI</title>\n<script>\n'
        "  function getJaegerUiConfig() {\n    const DEFAULT_CONFIG = null;\n"
        "    const JAEGER_CONFIG = DEFAULT_CONFIG;\n    return JAEGER_CONFIG;\n  }\n"
        "  // Jaeger version data is embedded by the query-service via search/replace.\n"
        "  function getJaegerVersion() {\n"
        '    const DEFAULT_VERSION = {"gitCommit":"", "gitVersion":"", "buildDate":""};\n'
        f"    const JAEGER_VERSION = {injected};\n    return JAEGER_VERSION;\n  }}\n"
        '</script>\n</head>\n<body>\n<div id="jaeger-ui-root"></div>\n</body>\n</html>\n'
    ).encode()


def _v3_error(status: int, message: str) -> tuple[int, str, bytes]:
    body = go_json({"error": {"httpCode": status, "message": message}}) + b"\n"
    return status, TEXT, body


def _legacy_error(status: int, message: str) -> tuple[int, str, bytes]:
    envelope = {
        "data": None,
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": [{"code": status, "msg": message}],
    }
    return status, TEXT, go_json(envelope) + b"\n"


class _StorageError(Exception):
    """What the storage refuses: the query service answers it as a 500."""


def _check_depth(depth: int) -> int:
    if depth <= 0 or depth > MAX_TRACES:
        raise _StorageError(DEPTH_ERROR)
    return depth


def _legacy_ok(data: Any, total: int = 0) -> tuple[int, str, bytes]:
    envelope = {"data": data, "total": total, "limit": 0, "offset": 0, "errors": None}
    return 200, JSON, go_json(envelope)


# --------------------------------------------------------------------------- request parsing

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"
)
_GO_LAYOUT = "2006-01-02T15:04:05.999999999Z07:00"


class _BadRequest(Exception):
    pass


def _rfc3339_us(value: str, name: str) -> int:
    match = _RFC3339.match(value)
    if not match:
        raise _BadRequest(
            f'malformed parameter {name}: parsing time "{value}" as "{_GO_LAYOUT}": '
            f'cannot parse "{value}" as "2006"'
        )
    y, mo, d, h, mi, s, frac, zone = match.groups()
    offset = timedelta(0)
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=UTC) - offset
    micros = int((frac or "0").ljust(9, "0")[:6])
    return int(dt.timestamp()) * 1_000_000 + micros


def _first(query: dict[str, list[str]], *names: str) -> tuple[str, str]:
    for name in names:
        values = query.get(name)
        if values and values[0] != "":
            return values[0], name
    return "", names[0]


def _int_param(query: dict[str, list[str]], name: str) -> int | None:
    value, _ = _first(query, name)
    if value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise _BadRequest(
            f"unable to parse param '{name}': strconv.ParseInt: parsing \"{value}\": invalid syntax"
        ) from None


# --------------------------------------------------------------------------- the server


def _trickle(handler: BaseHTTPRequestHandler, body: bytes, pause_s: float) -> None:
    """The body one byte at a time: a read timeout never fires while bytes keep coming."""
    for i in range(len(body)):
        handler.wfile.write(body[i : i + 1])
        handler.wfile.flush()
        time.sleep(pause_s)


def _flood(handler: BaseHTTPRequestHandler, body: bytes, size: int) -> None:
    """``size`` bytes: the answer, then spaces (still one JSON document when read whole)."""
    head = body[:size]
    handler.wfile.write(head)
    chunk = b" " * 65536
    left = size - len(head)
    while left > 0:
        handler.wfile.write(chunk[: min(left, len(chunk))])
        left -= len(chunk)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: tests can see connection reuse
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without NODELAY, Nagle plus delayed ACKs
        # would add ~40 ms to every keep-alive answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.replay._opened()

    def do_GET(self) -> None:
        self.server.replay._handle(self)

    def send_response(self, code: int, message: str | None = None) -> None:
        # Go's server sends Date but no Server header.
        self.send_response_only(code, message)
        self.send_header("Date", formatdate(usegmt=True))

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    replay: ReplayJaeger

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out and hang up are part of the tests, not errors.
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class ReplayJaeger:
    """The replay server; ``start()`` it (or use ``with``), read ``url``, ``stop()`` it."""

    def __init__(
        self,
        traces_dir_or_docs: str | Path | Iterable[str | Path | dict[str, Any] | list[Any]],
        *,
        flavor: str = "v2.20",
        latency_s: float = 0.0,
        storage: str = "memory",
        faults: Iterable[Fault | str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if flavor not in FLAVORS:
            raise ValueError(f"unknown flavor {flavor!r}; expected one of {sorted(FLAVORS)}")
        self.flavor = FLAVORS[flavor]
        self.latency_s = latency_s
        self.storage = storage.lower()
        self.faults: list[Fault] = [_fault(f) for f in faults]
        self.store = TraceStore()
        sources = (
            [traces_dir_or_docs]
            if isinstance(traces_dir_or_docs, str | Path)
            else list(traces_dir_or_docs)
        )
        for item in sources:
            if isinstance(item, str | Path):
                self.store.add_path(Path(item))
            else:
                self.store.add_document(item)
        self.host, self.port = host, port
        self.calls: list[tuple[str, str, dict[str, list[str]]]] = []
        self.connections = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._store_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def problems(self) -> list[str]:
        return self.store.problems

    def start(self) -> ReplayJaeger:
        if any(f.kind == "refuse" for f in self.faults):
            # A port nobody listens on: bind, learn the number, close.
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((self.host, self.port))
                self.port = probe.getsockname()[1]
            return self
        self._server = _Server((self.host, self.port), _Handler)
        self._server.replay = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"replay-jaeger-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> ReplayJaeger:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_document(self, doc: Any, where: str = "document") -> None:
        """Add traces while serving (a live feed, e.g. an OTLP receiver's export requests):
        later searches see them, as Jaeger's would once spans are written."""
        with self._store_lock:
            self.store.add_document(doc, where)

    def set_faults(self, faults: Iterable[Fault | str]) -> None:
        with self._lock:
            self.faults = [_fault(f) for f in faults]

    def paths(self) -> list[str]:
        """The paths requested so far, in order."""
        with self._lock:
            return [path for _, path, _ in self.calls]

    # ---- request handling

    def _opened(self) -> None:
        with self._lock:
            self.connections += 1

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.kind == "refuse" or not fnmatchcase(path, fault.path):
                    continue
                if fault.times is not None:
                    if fault.times <= 0:
                        continue
                    fault.times -= 1
                return fault
        return None

    def _handle(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        query = parse_qs(split.query, keep_blank_values=True)
        with self._lock:
            self.calls.append((handler.command, split.path, query))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            fault = self._take_fault(split.path)
            if self.latency_s > 0:
                time.sleep(self.latency_s)
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.seconds)
            with self._store_lock:  # traces may be added while it answers (add_document)
                status, ctype, body = self._answer(split.path, query, fault)
            if fault is not None and fault.kind == "truncated" and len(body) > 1:
                body = body[: len(body) // 2]
            huge = fault is not None and fault.kind == "huge"
            handler.send_response(status)
            handler.send_header("Content-Type", ctype)
            if ctype == TEXT and status >= 400:
                handler.send_header("X-Content-Type-Options", "nosniff")
            if huge:  # no length announced: the client learns the size only by reading
                handler.send_header("Connection", "close")
                handler.close_connection = True
            else:
                handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            if fault is not None and fault.kind == "trickle":
                _trickle(handler, body, fault.seconds)
            elif fault is not None and fault.kind == "huge":
                _flood(handler, body, fault.size)
            else:
                handler.wfile.write(body)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(
        self, path: str, query: dict[str, list[str]], fault: Fault | None
    ) -> tuple[int, str, bytes]:
        try:
            return self._route(path, query, fault)
        except _StorageError as exc:
            v3 = self.flavor.v3 and path.startswith("/api/v3/")
            return _v3_error(500, str(exc)) if v3 else _legacy_error(500, str(exc))

    def _route(
        self, path: str, query: dict[str, list[str]], fault: Fault | None
    ) -> tuple[int, str, bytes]:
        if fault is not None and fault.kind == "html":
            return 200, HTML, index_html(self.flavor.version)
        v3 = self.flavor.v3 and path.startswith("/api/v3/")
        if fault is not None and fault.kind == "http500":
            message = "internal error: storage unavailable"
            return _v3_error(500, message) if v3 else _legacy_error(500, message)
        try:
            if v3 and path == "/api/v3/services":
                return self._v3_services()
            if v3 and path == "/api/v3/operations":
                return self._v3_operations(query)
            if v3 and path == "/api/v3/traces":
                return self._v3_search(query)
            if v3 and path.startswith("/api/v3/traces/") and len(path) > len("/api/v3/traces/"):
                return self._v3_trace(path.rsplit("/", 1)[1])
            if path == "/api/services":
                services = self.store.services()
                return _legacy_ok(services or None, len(services))
            if path.startswith("/api/services/") and path.endswith("/operations"):
                return self._legacy_service_operations(path)
            if path == "/api/operations":
                return self._legacy_operations(query)
            if path == "/api/traces":
                return self._legacy_search(query)
            if path.startswith("/api/traces/") and len(path) > len("/api/traces/"):
                return self._legacy_trace(path.rsplit("/", 1)[1])
        except _BadRequest as exc:
            return _v3_error(400, str(exc)) if v3 else _legacy_error(400, str(exc))
        except re.error as exc:
            message = f"search_phase_execution_exception: invalid regular expression: {exc}"
            return _v3_error(500, message) if v3 else _legacy_error(500, message)
        return 200, HTML, index_html(self.flavor.version)  # the UI's catch-all

    # ---- api_v3

    def _v3_json(self, doc: dict[str, Any]) -> tuple[int, str, bytes]:
        return 200, self.flavor.v3_content_type, go_json(doc)

    def _v3_traces(self, traces: list[StoredTrace]) -> tuple[int, str, bytes]:
        if not traces:
            return _v3_error(404, "No traces found")
        merged = [rs for t in traces for rs in self.store.resource_spans(t)]
        return self._v3_json({"result": {"resourceSpans": merged}})

    def _v3_services(self) -> tuple[int, str, bytes]:
        services = self.store.services()
        return self._v3_json({"services": services} if services else {})

    def _v3_operations(self, query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        service, _ = _first(query, "service")
        found = self.store.operations(service) if service else []
        return self._v3_json({"operations": [{"name": n, "spanKind": k} for n, k in found]})

    def _v3_names(self, canonical: str, deprecated: str) -> tuple[str, ...]:
        return (canonical, deprecated) if self.flavor.camel else (deprecated,)

    def _v3_search(self, query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        names = self._v3_names
        min_value, min_name = _first(query, *names("query.startTimeMin", "query.start_time_min"))
        max_value, max_name = _first(query, *names("query.startTimeMax", "query.start_time_max"))
        if not min_value or not max_value:
            first_min = names("query.startTimeMin", "query.start_time_min")[0]
            first_max = names("query.startTimeMax", "query.start_time_max")[0]
            raise _BadRequest(f"{first_min} and {first_max} are required")
        start_us = _rfc3339_us(min_value, min_name)
        end_us = _rfc3339_us(max_value, max_name)
        service, _ = _first(query, *names("query.serviceName", "query.service_name"))
        operation, _ = _first(query, *names("query.operationName", "query.operation_name"))
        depth_names = (
            ("query.searchDepth", "query.search_depth", "query.num_traces")
            if self.flavor.camel
            else ("query.num_traces",)
        )
        depth_value, depth_name = _first(query, *depth_names)
        depth = self.flavor.default_depth
        if depth_value:
            try:
                depth = int(depth_value)
            except ValueError:
                parser = "strconv.ParseInt" if self.flavor.camel else "strconv.Atoi"
                raise _BadRequest(
                    f'malformed parameter {depth_name}: {parser}: parsing "{depth_value}": '
                    "invalid syntax"
                ) from None
        _check_depth(depth)
        tags: dict[str, str] = {}
        raw_attrs, _ = _first(query, "query.attributes")
        if raw_attrs and self.flavor.attributes:
            try:
                parsed = json.loads(raw_attrs)
            except json.JSONDecodeError as exc:
                raise _BadRequest(f"malformed parameter query.attributes: {exc.msg}") from None
            if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
                raise _BadRequest(
                    "malformed parameter query.attributes: json: cannot unmarshal into "
                    "Go value of type map[string]string"
                )
            tags = {str(k): v for k, v in parsed.items() if k}
        traces = self.store.find(
            service=service,
            operation=operation,
            start_us=start_us,
            end_us=end_us,
            tags=tags,
            depth=depth,
            regex=self.storage in REGEX_STORAGES,
        )
        return self._v3_traces(traces)

    def _v3_trace(self, raw_id: str) -> tuple[int, str, bytes]:
        if not re.fullmatch(r"[0-9a-fA-F]{1,32}", raw_id):
            raise _BadRequest(
                f'malformed parameter trace_id: strconv.ParseUint: parsing "{raw_id}": '
                "invalid syntax"
            )
        trace = self.store.traces.get(pad_id(raw_id, 32))
        return self._v3_traces([trace] if trace else [])

    # ---- legacy

    def _legacy_search(self, query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        trace_ids = [v for v in query.get("traceID", []) if v]
        if trace_ids:
            found = [self.store.traces.get(pad_id(t, 32)) for t in trace_ids]
            data = [self.store.legacy_trace(t) for t in found if t is not None]
            return _legacy_ok(data)
        service, _ = _first(query, "service")
        if not service:
            raise _BadRequest("parameter 'service' is required")
        now_us = int(time.time() * 1_000_000)
        end_us = _int_param(query, "end")
        start_us = _int_param(query, "start")
        end_us = now_us if end_us is None else end_us
        start_us = end_us - 48 * 3600 * 1_000_000 if start_us is None else start_us
        limit = _int_param(query, "limit")
        tags: dict[str, str] = {}
        for raw in query.get("tag", []):
            key, sep, value = raw.partition(":")
            if not sep:
                raise _BadRequest(
                    f"malformed 'tag' parameter, expecting key:value, received: {raw}"
                )
            tags[key] = value
        for raw in query.get("tags", []):
            try:
                parsed = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise _BadRequest(
                    f"malformed 'tags' parameter, cannot unmarshal JSON: {exc.msg}"
                ) from None
            if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
                raise _BadRequest(
                    "malformed 'tags' parameter, cannot unmarshal JSON: json: cannot unmarshal "
                    "into Go value of type map[string]string"
                )
            tags.update(parsed)
        operation, _ = _first(query, "operation")
        traces = self.store.find(
            service=service,
            operation=operation,
            start_us=start_us,
            end_us=end_us,
            tags=tags,
            depth=_check_depth(100 if limit is None else limit),
            regex=self.storage in REGEX_STORAGES,
        )
        return _legacy_ok([self.store.legacy_trace(t) for t in traces])

    def _legacy_service_operations(self, path: str) -> tuple[int, str, bytes]:
        service = unquote(path[len("/api/services/") : -len("/operations")])
        names = sorted({name for name, _ in self.store.operations(service)})
        return _legacy_ok(names or None, len(names))

    def _legacy_operations(self, query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        service, _ = _first(query, "service")
        if not service:
            raise _BadRequest("parameter 'service' is required")
        found = [{"name": n, "spanKind": k} for n, k in self.store.operations(service)]
        return _legacy_ok(found, len(found))

    def _legacy_trace(self, raw_id: str) -> tuple[int, str, bytes]:
        if not re.fullmatch(r"[0-9a-fA-F]{1,32}", raw_id):
            raise _BadRequest(f'strconv.ParseUint: parsing "{raw_id}": invalid syntax')
        trace = self.store.traces.get(pad_id(raw_id, 32))
        if trace is None:
            return _legacy_error(404, "trace not found")
        return _legacy_ok([self.store.legacy_trace(trace)])


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """Serve trace files as a Jaeger until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m opdiag.devtools.replay_jaeger",
        description="Replay trace files as a Jaeger query service (UI port API shapes).",
    )
    parser.add_argument(
        "--traces",
        action="append",
        required=True,
        type=Path,
        help="trace file or directory (repeatable)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=16686)
    parser.add_argument("--flavor", choices=sorted(FLAVORS), default="v2.20")
    parser.add_argument(
        "--storage",
        default="memory",
        help="memory|badger|cassandra (exact tags) or elasticsearch|opensearch",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--fault", action="append", default=[], choices=FAULT_KINDS)
    args = parser.parse_args(argv)
    for path in args.traces:
        if not path.exists():
            print(f"replay_jaeger: {path}: no such file or directory", file=sys.stderr)
            return 2
    replay = ReplayJaeger(
        args.traces,
        flavor=args.flavor,
        latency_s=args.latency_ms / 1000.0,
        storage=args.storage,
        faults=args.fault,
        host=args.host,
        port=args.port,
    )
    for problem in replay.problems:
        print(f"replay_jaeger: skipped {problem}", file=sys.stderr)
    replay.start()
    print(
        f"replaying {len(replay.store.traces)} traces as Jaeger {replay.flavor.version} "
        f"at {replay.url}",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        replay.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
