"""Jinja filters of the HTML pages. They return plain ``str`` (never ``Markup``), so autoescape
still applies to everything they produce from trace values."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from opdiag.diagnosis.templates import split_evidence
from opdiag.durations import human_ms
from opdiag.render.rows import evidence_value

_SAFE_SCHEMES = frozenset({"http", "https"})


def utc(epoch_ms: int | None) -> str:
    """Epoch ms → ``2026-11-25 08:43:12``; empty when unknown."""
    if epoch_ms is None:
        return ""
    try:
        return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):  # before year 1 or after 9999
        return f"{epoch_ms} ms after 1970"


def ms(value: float | None) -> str:
    """A duration for people: ``840 ms``, ``12.4 s``, ``42.0 min``, ``3 h 12 min``, ``10 d 5 h``."""
    return "—" if value is None else human_ms(value)


def text(value: Any) -> str:
    """An evidence value as text (lists and maps as JSON), capped so a page stays readable."""
    out = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return out if len(out) <= 2000 else out[:2000] + "…"


def evidence(value: Any, key: str) -> str:
    """A finding's evidence value: ``also`` (the other rules that fired on it) as their ids
    and verdicts, not the JSON of their summaries; the rest as ``text``."""
    return text(evidence_value(key, value) if key == "also" else value)


def safe_url(url: str | None) -> str:
    """Only http(s) or site-relative links reach an href; anything else becomes ``#``."""
    if not url:
        return "#"
    parts = urlsplit(url)
    if parts.scheme in _SAFE_SCHEMES and parts.netloc:
        return url
    if not parts.scheme and not parts.netloc and url.startswith("/") and not url.startswith("//"):
        return url
    return "#"


def attributes(evidence: dict[str, Any]) -> list[tuple[str, Any]]:
    """The span attributes of a root cause's evidence, sorted."""
    return split_evidence(evidence)[0]


def derived(evidence: dict[str, Any]) -> list[tuple[str, Any]]:
    """What opdiag worked out (``worker.since``, ``where``), sorted."""
    return split_evidence(evidence)[1]


FILTERS = {
    "utc": utc,
    "ms": ms,
    "text": text,
    "evidence": evidence,
    "safe_url": safe_url,
    "attributes": attributes,
    "derived": derived,
}
