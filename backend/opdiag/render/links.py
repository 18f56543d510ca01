"""Links from a diagnosis to where a person looks next: Jaeger UI, Grafana, opdiag's page.

Every id that goes into a URL comes from a trace, so it is untrusted: each is URL-encoded
as a path segment or a query value, never pasted in raw. Base URLs are the browser-visible
ones from ``LinkSettings`` (not the docker-internal addresses).
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote

from opdiag.diagnosis.result import Diagnosis, Links
from opdiag.model import addressable
from opdiag.settings import LinkSettings

# Explore's time range around the operation, so the trace is inside it.
_RANGE_MARGIN_MS = 60_000


# Characters ``quote`` never encodes: ids made only of them (every hex trace id, KTRDR's
# operation ids) go into a URL as they are, without the encoder's cost (a listing of 200k
# operations builds a million of these).
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def _q(value: str) -> str:
    """Encode one path segment or query value (``/``, ``?``, ``&``, ``#`` included)."""
    if _UNRESERVED.fullmatch(value):
        return value
    return quote(value, safe="")


def _base(url: str) -> str:
    return url.rstrip("/")


def ui_span_id(span_id: str) -> str:
    """The id Jaeger UI knows: duplicates renamed ``id_1`` by the model go back to ``id``."""
    return span_id.split("_", 1)[0]


def trace_url(settings: LinkSettings, trace_id: str) -> str:
    """Jaeger UI page of one trace."""
    return f"{_base(settings.jaeger_ui_url)}/trace/{_q(trace_id)}"


def span_url(settings: LinkSettings, trace_id: str, span_id: str) -> str:
    """Jaeger UI page of one trace, collapsed to and scrolled at one span (``uiFind``)."""
    return f"{trace_url(settings, trace_id)}?uiFind={_q(ui_span_id(span_id))}"


def explore_url(
    settings: LinkSettings, trace_id: str, start_ms: int | None = None, end_ms: int | None = None
) -> str:
    """Grafana Explore on the Jaeger datasource, trace-id lookup (empty ``queryType``)."""
    if start_ms is not None and end_ms is not None:
        time_from, time_to = str(start_ms - _RANGE_MARGIN_MS), str(end_ms + _RANGE_MARGIN_MS)
    else:
        time_from, time_to = "now-1h", "now"
    values = (trace_id, time_from, time_to)
    parts = _explore_parts(settings.jaeger_datasource_uid)
    if parts is None:  # a datasource uid that holds the marker: encode it all
        return _explore_url(settings, *values)
    encoded = parts[0] + "".join(
        _q_json(value) + part for value, part in zip(values, parts[1:], strict=True)
    )
    return f"{_base(settings.grafana_url)}/explore?schemaVersion=1&orgId=1&panes={encoded}"


def _q_json(value: str) -> str:
    """``_q(json.dumps(value))``; an unreserved value needs no escaping, only its quotes."""
    if _UNRESERVED.fullmatch(value):
        return f"%22{value}%22"
    return _q(json.dumps(value))


def _explore_url(settings: LinkSettings, trace_id: str, time_from: str, time_to: str) -> str:
    uid = settings.jaeger_datasource_uid
    encoded = _q(_panes(uid, trace_id, time_from, time_to))
    return f"{_base(settings.grafana_url)}/explore?schemaVersion=1&orgId=1&panes={encoded}"


def _panes(uid: str, trace_id: str, time_from: str, time_to: str) -> str:
    panes = {
        "opdiag": {
            "datasource": uid,
            "queries": [
                {"refId": "A", "datasource": {"type": "jaeger", "uid": uid}, "query": trace_id}
            ],
            "range": {"from": time_from, "to": time_to},
        }
    }
    return json.dumps(panes, separators=(",", ":"), sort_keys=True)


_MARK = "\x00opdiag\x00"
_PARTS: dict[str, tuple[str, ...] | None] = {}


def _explore_parts(uid: str) -> tuple[str, ...] | None:
    """The encoded panes of ``uid`` cut where the trace id and the range go (percent-encoding
    works character by character): a listing encodes only the three values per row."""
    parts = _PARTS.get(uid)
    if parts is None and uid not in _PARTS:
        marker = json.dumps(_MARK)
        pieces = _panes(uid, _MARK, _MARK, _MARK).split(marker)
        parts = tuple(_q(p) for p in pieces) if len(pieces) == 4 else None
        if len(_PARTS) < 64:
            _PARTS[uid] = parts
    return parts


def range_around_ms(start_ms: int, end_ms: int | None) -> tuple[int, int | None]:
    """A minute before ``start_ms`` to a minute after ``end_ms`` (None: open-ended)."""
    return start_ms - _RANGE_MARGIN_MS, None if end_ms is None else end_ms + _RANGE_MARGIN_MS


def operation_range_ms(diagnosis: Diagnosis) -> tuple[int, int | None] | None:
    """Epoch-ms range that holds the operation, carried by every link to its page and its
    dashboard (a live source is searched over it): a minute before it started to a minute
    after it ended; open-ended (up to "now") while it runs."""
    if diagnosis.started_at_ms is None:
        return None
    return range_around_ms(
        diagnosis.started_at_ms, diagnosis.ended_at_ms if diagnosis.finished else None
    )


def diagnosis_page_url(
    settings: LinkSettings,
    key: str,
    time_range: tuple[int, int | None] | None = None,
    now_ms: int | None = None,
) -> str:
    """opdiag's own HTML diagnosis page, with ``from``/``to`` (epoch ms; no ``to``: now) and
    the ``now`` it was judged at when that is not the page's own clock."""
    url = f"{_base(settings.opdiag_url)}/operations/{_q(key)}"
    query = []
    if time_range is not None:
        start, end = time_range
        query.append(f"from={start}")
        if end is not None:
            query.append(f"to={end}")
    if now_ms is not None:
        query.append(f"now={now_ms}")
    return url + ("?" + "&".join(query) if query else "")


def dashboard_url(
    settings: LinkSettings, key: str, time_range: tuple[int, int | None] | None = None
) -> str:
    """The Operation Diagnosis drill-down dashboard for this operation, on its time range."""
    uid = _q(settings.diagnosis_dashboard_uid)
    url = f"{_base(settings.grafana_url)}/d/{uid}?var-operation_id={_q(key)}"
    if time_range is None:
        return url
    start, end = time_range
    return url + f"&from={start}&to={'now' if end is None else end}"


def link_key(diagnosis: Diagnosis) -> str:
    """The id links name the operation by: its key, or its first trace when no URL can
    name the key (an operation id with a tab, a newline, a bidi override, 600 characters:
    the API refuses those, so a link by the id would lead to a 400)."""
    key = diagnosis.key
    if key and not addressable(key) and diagnosis.trace_ids:
        return diagnosis.trace_ids[0]
    return key


def _key_span(diagnosis: Diagnosis) -> tuple[str, str] | None:
    """(trace id, span id) of the span that proves the verdict: root cause, else (a
    cancelled operation has none) the span of the finding that decided it, else bottleneck."""
    if diagnosis.root_cause is not None and diagnosis.root_cause.span_id:
        return diagnosis.root_cause.trace_id, diagnosis.root_cause.span_id
    if diagnosis.verdict == "cancelled":
        for f in diagnosis.findings:
            if f.verdict == diagnosis.verdict and f.span_id and f.trace_id:
                return f.trace_id, f.span_id
    if diagnosis.bottleneck is not None and diagnosis.bottleneck.span_id:
        return diagnosis.bottleneck.trace_id, diagnosis.bottleneck.span_id
    return None


def build_links(
    diagnosis: Diagnosis, links_settings: LinkSettings, now_ms: int | None = None
) -> Links:
    """Every link of one diagnosis; a not-found diagnosis gets only its page and dashboard.
    Traces the evidence came from (health checks, ``ib.connect``) get a link too. ``now_ms``:
    the moment it was judged at, kept by the link to its page (not by the dashboard's:
    Grafana asks at its own clock)."""
    traces = {
        tid: trace_url(links_settings, tid)
        for tid in (*diagnosis.trace_ids, *diagnosis.evidence_trace_ids)
    }
    key_span = _key_span(diagnosis)
    jaeger = _jaeger_link(diagnosis, links_settings, key_span)
    explore_trace: str | None = None
    if key_span is not None and key_span[0]:
        explore_trace = key_span[0]
    elif diagnosis.trace_ids:
        explore_trace = diagnosis.trace_ids[0]
    explore = None
    if explore_trace is not None:
        explore = explore_url(
            links_settings, explore_trace, diagnosis.started_at_ms, diagnosis.ended_at_ms
        )
    key = link_key(diagnosis)
    span = operation_range_ms(diagnosis)
    return Links(
        jaeger=jaeger,
        grafana_explore=explore,
        diagnosis_page=diagnosis_page_url(links_settings, key, span, now_ms) if key else None,
        grafana_dashboard=dashboard_url(links_settings, key, span) if key else None,
        traces=traces,
    )


def _jaeger_link(
    diagnosis: Diagnosis, links_settings: LinkSettings, key_span: tuple[str, str] | None
) -> str | None:
    """Jaeger UI at the span that proves the verdict, else at the operation's first trace."""
    if key_span is not None and key_span[0]:
        return span_url(links_settings, key_span[0], key_span[1])
    if diagnosis.trace_ids:
        return trace_url(links_settings, diagnosis.trace_ids[0])
    return None


def row_links(
    diagnosis: Diagnosis, links_settings: LinkSettings, now_ms: int | None = None
) -> Links:
    """The two links a row of the operations list shows (``jaeger``, ``diagnosis_page``),
    exactly as ``build_links`` makes them; a long listing needs no others."""
    key = link_key(diagnosis)
    span = operation_range_ms(diagnosis)
    return Links(
        jaeger=_jaeger_link(diagnosis, links_settings, _key_span(diagnosis)),
        diagnosis_page=diagnosis_page_url(links_settings, key, span, now_ms) if key else None,
    )
