"""The shapes of the trace documents opdiag reads, as msgspec structs.

Decoding straight into these (``msgspec.json``) does not care about whitespace or key order
and skips building a dict per span, tag and attribute. Tags and attributes, the bulk of a
document, are kept raw (``msgspec.Raw``, a slice of the input) and decoded span by span while
the model is built, so the decoded document and the model never sit in memory whole at once.
The structs say exactly what a well-formed document holds; anything else (a missing span id,
a tag key that is a number, an unknown top-level key) fails validation, and the reader then
takes its general path over plain JSON values, which accepts the lenient variants and words
the error. Fields whose content the readers interpret leniently themselves are ``Any``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, Struct, UnsetType

NO_RAW = msgspec.Raw(b"null")
# The structs are created 100k at a time and hold only JSON values, which cannot form a
# cycle: untracked by the garbage collector (gc=False), they decode about 20 % faster.


class Tag(Struct, gc=False):
    """Legacy ``{key, type, value}`` (tags, process tags, log fields)."""

    key: str
    value: Any = None
    type: Any = None


class Ref(Struct, gc=False):
    spanID: Any = None
    refType: Any = None
    traceID: str | UnsetType = UNSET


class Log(Struct, gc=False):
    timestamp: int | UnsetType = UNSET
    fields: list[Tag] | None = None


class Process(Struct, gc=False):
    serviceName: Any = None
    tags: msgspec.Raw = NO_RAW  # list[Tag] (TAGS), decoded once per distinct process


class LegacySpan(Struct, gc=False):
    spanID: str
    startTime: int
    duration: int
    traceID: str | UnsetType = UNSET
    operationName: str | None = None
    references: list[Ref] | None = None
    tags: msgspec.Raw = NO_RAW  # list[Tag], decoded span by span (TAGS)
    logs: msgspec.Raw = NO_RAW  # list[Log] (LOGS)
    processID: str | None = None
    process: Process | None = None
    warnings: Any = None
    parentSpanID: Any = None


class LegacyTrace(Struct, forbid_unknown_fields=True, gc=False):
    spans: list[LegacySpan]
    traceID: Any = None
    processes: dict[str, Process] | None = None
    warnings: Any = None


class Value(Struct, gc=False):
    """OTLP ``AnyValue``; arrays and maps stay plain JSON (rare, and nested)."""

    stringValue: Any = UNSET
    intValue: Any = UNSET
    boolValue: Any = UNSET
    doubleValue: Any = UNSET
    bytesValue: Any = UNSET
    arrayValue: Any = UNSET
    kvlistValue: Any = UNSET


class Attribute(Struct, gc=False):
    key: str
    value: Value | None = None


class Status(Struct, gc=False):
    """OTLP span status; its fields are read leniently (any JSON value)."""

    code: Any = None
    message: Any = None


class OtlpSpan(Struct, gc=False):
    """An OTLP span. Not tracked by the cyclic GC: it holds decoded JSON values only."""

    traceId: Any = None
    spanId: Any = None
    parentSpanId: Any = None
    name: Any = None
    kind: Any = None
    startTimeUnixNano: Any = None
    endTimeUnixNano: Any = None
    attributes: msgspec.Raw = NO_RAW  # list[Attribute], span by span (ATTRIBUTES)
    events: Any = None
    links: Any = None
    status: Status | None = None


class Resource(Struct, gc=False):
    # list[Attribute] (ATTRIBUTES), decoded once per distinct resource of a document: a file
    # exporter may write one resourceSpans per span, all of the same few services
    attributes: msgspec.Raw = NO_RAW


class ScopeSpans(Struct, gc=False):
    spans: list[OtlpSpan] | None = None
    scope: Any = None
    instrumentationLibrary: Any = None


class ResourceSpans(Struct, gc=False):
    resource: Resource | None = None
    scopeSpans: list[ScopeSpans] | None = None
    instrumentationLibrarySpans: list[ScopeSpans] | None = None


class OtlpResult(Struct, gc=False):
    resourceSpans: list[ResourceSpans] | None = None


class Document(Struct, forbid_unknown_fields=True, gc=False):
    """Every top-level shape the typed path takes: the legacy envelope, one legacy trace,
    bare OTLP and the api_v3 body. Which one it is follows from the keys present, in the
    order the general path checks them."""

    resourceSpans: list[ResourceSpans] | UnsetType | None = UNSET
    result: OtlpResult | UnsetType = UNSET
    data: list[LegacyTrace] | UnsetType = UNSET
    total: Any = None
    limit: Any = None
    offset: Any = None
    errors: Any = None
    spans: list[LegacySpan] | UnsetType = UNSET
    traceID: Any = None
    processes: dict[str, Process] | None = None
    warnings: Any = None


DECODER = msgspec.json.Decoder(Document)
# The bulk of a document, tags and attributes, stays raw until its span is converted: the
# decoded structs of 100k spans would otherwise all be alive beside the model being built.
TAGS = msgspec.json.Decoder(list[Tag] | None)
LOGS = msgspec.json.Decoder(list[Log] | None)
ATTRIBUTES = msgspec.json.Decoder(list[Attribute] | None)
Mismatch = (msgspec.ValidationError, msgspec.DecodeError)
