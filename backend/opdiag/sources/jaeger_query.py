"""Pure helpers for the Jaeger client: query parameters of each API dialect, tag-value
escaping, trace-id recognition and version parsing. No I/O here, so all of it is unit-tested
without a server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase

from opdiag.timeutil import LAST_RFC3339_US

# Storages whose tag search runs a regexp query on the value (research/jaeger.md §1.2).
REGEX_STORAGES = frozenset({"elasticsearch", "opensearch"})
# Lucene regexp syntax: the reserved characters plus the optional operators that
# Elasticsearch enables by default (flags ALL). Escaping all of them makes a literal match.
_LUCENE_RESERVED = frozenset('.?+*|{}[]()"\\#@&<>~^$')

_GIT_VERSION_RE = re.compile(
    r"JAEGER_VERSION\s*=\s*\{[^}]*?\"gitVersion\"\s*:\s*\"v?(\d+)\.(\d+)(?:\.(\d+))?"
)
# First release whose api_v3 gateway reads camelCase names and honours query.attributes.
CAMEL_CASE_SINCE = (2, 19)
# OpenTelemetry's HTTP client instrumentations name client spans by the bare method.
HTTP_METHOD_NAMES = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)


@dataclass(frozen=True, slots=True)
class V3Dialect:
    """How to spell api_v3 search parameters for one server.

    ``camel``: v2.19+ canonical names (``query.serviceName`` …); else the ≤v2.18 snake_case
    names. ``attributes``: the server filters by ``query.attributes``; when False the client
    must filter the results itself (≤v2.18 silently ignores the parameter).
    """

    camel: bool = True
    attributes: bool = True


def uses_regex(storage: str) -> bool:
    """Whether the configured storage matches tag values as regular expressions."""
    return storage.strip().lower() in REGEX_STORAGES


def escape_tag_value(value: str, storage: str) -> str:
    """Make ``value`` match literally on ``storage``: backslash every Lucene metacharacter on
    Elasticsearch/OpenSearch, unchanged on exact-match storages (memory, Badger, Cassandra)."""
    if not uses_regex(storage):
        return value
    return "".join("\\" + ch if ch in _LUCENE_RESERVED else ch for ch in value)


def rfc3339(us: int) -> str:
    """Epoch microseconds as RFC 3339 with a ``Z`` (what Go's ``time.RFC3339Nano`` parses);
    a bound past year 9999 (``now`` at its end, plus a margin) is the year's last moment."""
    us = min(max(us, 0), LAST_RFC3339_US)
    dt = datetime.fromtimestamp(us // 1_000_000, tz=UTC).replace(microsecond=us % 1_000_000)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def v3_search_params(
    dialect: V3Dialect,
    *,
    service: str,
    start_us: int,
    end_us: int,
    depth: int,
    attributes: dict[str, str] | None = None,
    operation: str | None = None,
) -> dict[str, str]:
    """Query parameters of ``GET /api/v3/traces`` in the server's dialect.

    ``query.attributes`` is sent in both dialects: a ≤v2.18 server ignores it (the caller
    filters), a server that understands it narrows the search. Raw traces always: the query
    service's adjusters sort and rewrite the in-memory storage's own trace objects in place,
    so concurrent searches of one trace corrupt it for good (seen on v2.12: a resource's
    ``service.name`` became ``python``); opdiag needs none of them (clock-skew adjustment is
    off by default, and the model merges duplicate spans itself).
    """
    if dialect.camel:
        params = {
            "query.serviceName": service,
            "query.startTimeMin": rfc3339(start_us),
            "query.startTimeMax": rfc3339(end_us),
            "query.searchDepth": str(depth),
        }
    else:
        params = {
            "query.service_name": service,
            "query.start_time_min": rfc3339(start_us),
            "query.start_time_max": rfc3339(end_us),
            "query.num_traces": str(depth),
        }
    if operation:
        params["query.operationName" if dialect.camel else "query.operation_name"] = operation
    params["query.rawTraces" if dialect.camel else "query.raw_traces"] = "true"
    if attributes:
        params["query.attributes"] = json.dumps(attributes, separators=(",", ":"))
    return params


def is_window_name(name: str, noise_patterns: Sequence[str]) -> bool:
    """Can a span of this name mark a trace as part of an operation? Not noise
    (``noise_patterns``: health checks, polling, transport events) and not a bare HTTP
    method: those make most traces of a busy service, and a trace that belongs to an
    operation always holds a span with a name of its own (the command, the route, a phase)."""
    return bool(name) and name.upper() not in HTTP_METHOD_NAMES and not any(
        fnmatchcase(name, pattern) for pattern in noise_patterns
    )


def window_span_names(names: Iterable[str], noise_patterns: Sequence[str]) -> list[str]:
    """The span names a window search of a busy service asks for, one search each."""
    return sorted({name for name in names if is_window_name(name, noise_patterns)})


def legacy_search_params(
    *,
    service: str,
    start_us: int,
    end_us: int,
    limit: int,
    tags: dict[str, str] | None = None,
    operation: str | None = None,
) -> list[tuple[str, str]]:
    """Query parameters of legacy ``GET /api/traces`` (``service`` is required; times in µs;
    one ``tag=key:value`` per condition, split by Jaeger at the first colon)."""
    params = [
        ("service", service),
        ("start", str(start_us)),
        ("end", str(end_us)),
        ("limit", str(limit)),
        ("raw", "true"),  # no adjusters: see v3_search_params
    ]
    if operation:
        params.append(("operation", operation))
    for key, value in (tags or {}).items():
        params.append(("tag", f"{key}:{value}"))
    return params


def v3_trace_params(dialect: V3Dialect) -> dict[str, str]:
    """Query parameters of ``GET /api/v3/traces/{id}``: raw, as searches."""
    return {"rawTraces" if dialect.camel else "raw_traces": "true"}


LEGACY_TRACE_PARAMS = {"raw": "true"}


def parse_version(index_html: str) -> tuple[int, int, int] | None:
    """``gitVersion`` of the ``JAEGER_VERSION = {…}`` the query service injects into the UI's
    index page; None when absent or not a release number (``dev`` builds)."""
    match = _GIT_VERSION_RE.search(index_html)
    if not match:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def dialect_for_version(version: tuple[int, int, int]) -> V3Dialect:
    """v2.19+ speaks camelCase and filters by attributes; older api_v3 gateways do neither."""
    new = version[:2] >= CAMEL_CASE_SINCE
    return V3Dialect(camel=new, attributes=new)


def dialect_from_error(message: str) -> V3Dialect:
    """Read the dialect from the 400 an api_v3 search without time bounds answers: the
    ≤v2.18 wording names ``query.start_time_min``."""
    old = "start_time_min" in message
    return V3Dialect(camel=not old, attributes=not old)
