"""What every trace reader shares: the failure it raises deep in a hot loop, the collector
that groups spans by trace id, and the checks and conversions of ids, times and values
(both the typed and the general path use them, so both word problems alike)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from opdiag.model import (
    CLIENT,
    CONSUMER,
    INTERNAL,
    PRODUCER,
    SERVER,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_UNSET,
    Span,
    Trace,
    build_trace,
    normalise_span_id,
    normalise_trace_id,
)

UNKNOWN_SERVICE = "unknown"
# Times past this (µs since the epoch: 3000-01-01) are refused as bad input.
MAX_TIME_US = 32_503_680_000_000_000

LEGACY_KINDS = {
    "server": SERVER,
    "client": CLIENT,
    "producer": PRODUCER,
    "consumer": CONSUMER,
    "internal": INTERNAL,
}
OTLP_KINDS: dict[Any, str] = {
    0: INTERNAL,
    1: INTERNAL,
    2: SERVER,
    3: CLIENT,
    4: PRODUCER,
    5: CONSUMER,
    "SPAN_KIND_UNSPECIFIED": INTERNAL,
    "SPAN_KIND_INTERNAL": INTERNAL,
    "SPAN_KIND_SERVER": SERVER,
    "SPAN_KIND_CLIENT": CLIENT,
    "SPAN_KIND_PRODUCER": PRODUCER,
    "SPAN_KIND_CONSUMER": CONSUMER,
}
OTLP_STATUS: dict[Any, str] = {
    0: STATUS_UNSET,
    1: STATUS_OK,
    2: STATUS_ERROR,
    "STATUS_CODE_UNSET": STATUS_UNSET,
    "STATUS_CODE_OK": STATUS_OK,
    "STATUS_CODE_ERROR": STATUS_ERROR,
    "UNSET": STATUS_UNSET,
    "OK": STATUS_OK,
    "ERROR": STATUS_ERROR,
}
NO_ID: Any = object()  # "not in the cache" (None is a cached answer)

# Decoded tags/attributes are remembered per raw text while one document is read (the first
# span keeps the decoded dict, each later one gets a copy): most spans repeat another's tags
# byte for byte (an ASGI send/receive pair, a poller, a health check), and a dict copy costs
# a tenth of decoding. Bounded: the memo starts over when full, so a file of all-different
# tags costs one lookup per span and no second copy of anything (about 5 % more time than
# without the memo; stopping it on a low hit rate was tried, and misfired on a file whose
# first spans were its few different ones).
MEMO_LIMIT = 4096


class Fail(Exception):
    """Raised deep in the hot loops with the place and problem; turned into a
    ``TraceFormatError`` naming the file at the entry points."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}" if where else problem)


class General(Exception):
    """The typed path does not take this document: use the general path."""


class Collector:
    """Spans grouped by trace id, plus trace-level warnings; built into ``Trace`` at the end."""

    __slots__ = ("source", "spans", "warnings")

    def __init__(self, source: str) -> None:
        self.source = source
        self.spans: dict[str, list[Span]] = {}
        self.warnings: dict[str, list[str]] = {}

    def add(self, span: Span) -> None:
        bucket = self.spans.get(span.trace_id)
        if bucket is None:
            self.spans[span.trace_id] = [span]
        else:
            bucket.append(span)

    def warn(self, trace_id: str, message: str) -> None:
        self.warnings.setdefault(trace_id, []).append(message)

    def finish(self) -> list[Trace]:
        traces = [
            build_trace(tid, spans, sources=[self.source], warnings=self.warnings.get(tid, ()))
            for tid, spans in self.spans.items()
        ]
        self.spans = {}
        return traces


def at(where: str, sub: str) -> str:
    return f"{where}.{sub}" if where else sub


def trace_id_at(raw: Any, where: str) -> str:
    if type(raw) is not str or not raw.strip():
        raise Fail(where, f"trace id missing or not a string: {short(raw)}")
    return normalise_trace_id(raw)


def span_id_at(raw: Any, where: str, what: str = "span id") -> str:
    if type(raw) is not str or not raw.strip():
        raise Fail(where, f"{what} missing or not a string: {short(raw)}")
    return normalise_span_id(raw)


def short(value: Any) -> str:
    try:
        text = repr(value)
    except RecursionError:  # a list in a list … a thousand deep: orjson reads that
        return f"a {type(value).__name__} nested too deeply to show"
    return text if len(text) <= 60 else text[:57] + "..."


# Attribute values are plain JSON and may nest (OTLP arrays and maps, legacy tags holding
# JSON): one nested deeper than this is left out, so that no later str(), repr() or JSON
# encoding of it (which recurse) meets Python's recursion limit.
MAX_NESTING = 64
TOO_DEEP = f"(left out: nested more than {MAX_NESTING} levels deep)"


def bounded(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (changed in place) with every list or map nested too deeply replaced by
    ``TOO_DEEP``; linear in the values' size, and nothing to do for scalars."""
    for key, value in values.items():
        if (value.__class__ is list or value.__class__ is dict) and _too_deep(value):
            values[key] = TOO_DEEP
    return values


def _too_deep(value: list[Any] | dict[str, Any]) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            return True
        for item in node.values() if node.__class__ is dict else node:
            if item.__class__ is list or item.__class__ is dict:
                stack.append((item, depth + 1))
    return False


def int_time(value: Any, where: str, name: str) -> int:
    """Integer µs (legacy) or ns (OTLP, often a decimal string); anything else is refused."""
    if type(value) is int:
        return value
    if type(value) is str:
        try:
            return int(value.strip())
        except ValueError:
            pass
    elif type(value) is float and value.is_integer():
        return int(value)
    if value is None:
        raise Fail(where, f"{name} is missing")
    raise Fail(where, f"{name} is not an integer: {short(value)}")


def time_problem(span_id: Any, start_us: int, duration_us: int, start: str, end: str) -> str:
    """Why a span's times are out of range, naming the span and the field: 10^37 ms or a
    start past the year 3000 is a broken exporter, not an operation to diagnose."""
    if start_us < 0:
        return f"span {short(span_id)}: {start} {start_us} µs is before 1970"
    if start_us > MAX_TIME_US:
        return f"span {short(span_id)}: {start} {start_us} µs is after the year 3000"
    return (
        f"span {short(span_id)}: {end} out of range, the span would end after the year 3000 "
        f"(duration {duration_us} µs)"
    )


def lenient(typ: Any, value: str) -> Any:
    """Legacy tag values that arrive as strings although the type says otherwise."""
    if typ == "bool":
        low = value.strip().lower()
        if low == "true":
            return True
        if low == "false":
            return False
        return value
    if typ == "int64":
        try:
            return int(value)
        except ValueError:
            return value
    if typ == "float64":
        try:
            return float(value)
        except ValueError:
            return value
    return value


def kv_dict(tags: Any, where: str, what: str, index: int | None = None) -> dict[str, Any]:
    """Legacy ``[{key, type, value}]`` → dict; later duplicates win.

    One dict comprehension for the common well-formed case (this is the hottest line of a
    100k-span file); anything unusual falls back to the checking loop, which names the
    problem."""
    if not tags:
        return {}
    try:
        out = {
            kv["key"]: v
            if (v := kv["value"]).__class__ is not str or kv["type"] == "string"
            else lenient(kv["type"], v)
            for kv in tags
        }
    except (KeyError, TypeError):
        return kv_dict_checked(tags, idx(where, index), what)
    for key in out:
        if key.__class__ is not str:
            return kv_dict_checked(tags, idx(where, index), what)
    return bounded(out)


def idx(where: str, index: int | None) -> str:
    return where if index is None else f"{where}[{index}]"


def kv_dict_checked(tags: Any, where: str, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if type(tags) is not list:
        raise Fail(where, f"{what} is not a list")
    for kv in tags:
        if type(kv) is not dict:
            raise Fail(where, f"{what} holds a non-object entry {short(kv)}")
        key = kv.get("key")
        if type(key) is not str:
            raise Fail(where, f"{what} entry without a string key: {short(kv)}")
        value = kv.get("value")
        if type(value) is str:
            typ = kv.get("type")
            if typ is not None and typ != "string":
                value = lenient(typ, value)
        out[key] = value
    return bounded(out)


def any_value(value: Any) -> Any:
    """OTLP ``AnyValue`` → plain Python value (intValue arrives as a string)."""
    if type(value) is not dict:
        return value
    s = value.get("stringValue")
    if s is not None:
        return s
    if "intValue" in value:
        iv = value["intValue"]
        try:
            return int(iv)
        except (TypeError, ValueError, OverflowError):  # OverflowError: Infinity
            return iv
    if "boolValue" in value:
        b = value["boolValue"]
        return b.strip().lower() == "true" if type(b) is str else bool(b)
    if "doubleValue" in value:
        d = value["doubleValue"]
        try:
            return float(d)
        except (TypeError, ValueError):
            return d
    if "bytesValue" in value:
        return value["bytesValue"]
    if "arrayValue" in value:
        arr = value["arrayValue"] or {}
        vals = arr.get("values") if type(arr) is dict else None
        return [any_value(v) for v in vals] if type(vals) is list else []
    if "kvlistValue" in value:
        kvl = value["kvlistValue"] or {}
        vals = kvl.get("values") if type(kvl) is dict else None
        if type(vals) is not list:
            return {}
        return {str(kv.get("key")): any_value(kv.get("value")) for kv in vals if type(kv) is dict}
    return None


def otlp_attrs(attrs: Any, where: str, what: str = "attributes") -> dict[str, Any]:
    """OTLP ``[{key, value: AnyValue}]`` → dict; a comprehension for the common case, the
    checking loop (which names the problem) for anything unusual."""
    if not attrs:
        return {}
    if type(attrs) is dict:  # some hand-written files use a plain map
        return bounded(dict(attrs))
    try:
        out = {
            kv["key"]: v["stringValue"] if "stringValue" in (v := kv["value"]) else any_value(v)
            for kv in attrs
        }
    except (KeyError, TypeError):
        return otlp_attrs_checked(attrs, where, what)
    for key in out:
        if key.__class__ is not str:
            return otlp_attrs_checked(attrs, where, what)
    return bounded(out)


def otlp_attrs_checked(attrs: Any, where: str, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if type(attrs) is not list:
        raise Fail(where, f"{what} is not a list")
    for kv in attrs:
        if type(kv) is not dict or type(kv.get("key")) is not str:
            raise Fail(where, f"{what} entry without a string key: {short(kv)}")
        out[kv["key"]] = any_value(kv.get("value"))
    return bounded(out)


def ns_time(value: Any, where: str, name: str) -> int:
    """OTLP nanoseconds: a decimal string (proto JSON), an int, or absent (0)."""
    if value.__class__ is str:
        try:
            return int(value)
        except ValueError:
            pass
    elif value.__class__ is int:
        return value
    elif value is None:
        return 0
    return int_time(value, where, name)


def otlp_id(raw: Any, width: int) -> str | None:
    """An OTLP trace (width 32) or span (16) id as lower-case hex: hex as Jaeger and the
    OTel collector write it, or base64 as protobuf's default JSON mapping does. ``None``
    for an absent or all-zero id, ``ValueError`` for anything else."""
    if raw is None or raw == "":
        return None
    if type(raw) is not str:
        raise ValueError(f"not a string: {short(raw)}")
    s = raw.strip()
    if len(s) <= width and s.isalnum():
        try:
            if int(s, 16) == 0:
                return None
            return s.lower().rjust(width, "0")
        except ValueError:
            pass
    try:
        raw_bytes = base64.b64decode(s + "=" * (-len(s) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        try:
            raw_bytes = base64.b64decode(s + "=" * (-len(s) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"neither hex nor base64: {short(raw)}") from None
    if len(raw_bytes) != width // 2:
        raise ValueError(f"{len(raw_bytes)} bytes, expected {width // 2}: {short(raw)}")
    if not any(raw_bytes):
        return None
    return raw_bytes.hex()


def otlp_id_at(raw: Any, width: int, where: str, what: str) -> str | None:
    if raw.__class__ is str and len(raw) == width and raw.isalnum():  # fast path: plain hex
        try:
            return raw.lower() if int(raw, 16) else None
        except ValueError:
            pass
    try:
        return otlp_id(raw, width)
    except ValueError as exc:
        raise Fail(where, f"{what} {exc}") from None


def legacy_kind_status(attrs: dict[str, Any]) -> tuple[str, str, str]:
    """Span kind, status and status message from legacy tags (``span.kind``,
    ``otel.status_code``, ``otel.status_description``)."""
    kind_tag = attrs.get("span.kind")
    if type(kind_tag) is str:
        kind = LEGACY_KINDS.get(kind_tag) or LEGACY_KINDS.get(kind_tag.lower(), INTERNAL)
    else:
        kind = INTERNAL
    code = attrs.get("otel.status_code")
    if code is None:
        return kind, STATUS_UNSET, ""
    status = STATUS_UNSET
    if code == "OK":  # the usual spelling, without str().upper()
        status = STATUS_OK
    else:
        code_s = str(code).upper()
        if code_s == "ERROR":
            status = STATUS_ERROR
        elif code_s == "OK":
            status = STATUS_OK
    desc = attrs.get("otel.status_description")
    return kind, status, "" if desc is None else str(desc)
