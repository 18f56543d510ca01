"""SDK spans → OTLP/JSON exactly as the OTLP/JSON specification writes them.

The spans go through the SDK's own protobuf encoder (``encode_spans``) and protobuf's JSON
mapping, which already gives camelCase names, integer enums (when asked) and int64 as decimal
strings. The one difference the OTLP/JSON spec mandates is ids: lower-case hex instead of the
protobuf default base64. Nothing here builds span dicts by hand.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan

_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def _hex(value: str) -> str:
    return base64.b64decode(value).hex()


def _hex_ids(obj: dict[str, Any]) -> None:
    for key in _ID_KEYS:
        if key in obj:
            obj[key] = _hex(obj[key])


def to_otlp_json(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """``{"resourceSpans": [...]}`` for these spans (an ExportTraceServiceRequest body)."""
    message = encode_spans(spans)
    doc = MessageToDict(message, use_integers_for_enums=True)
    for resource_spans in doc.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for sp in scope_spans.get("spans", []):
                _hex_ids(sp)
                for link in sp.get("links", []):
                    _hex_ids(link)
    return doc
