"""One typed settings object for the CLI, the server and the dashboard generator.

Precedence, lowest first: defaults here, an optional YAML file (``OPDIAG_CONFIG`` or
``--config``), environment variables (``OPDIAG_*`` plus ``JAEGER_URL``), then explicit
overrides (CLI flags, test mappings). Settings are passed in, never imported as a global.
Sections are dataclasses validated by ``opdiag.config_types`` (no pydantic on the CLI's path);
PyYAML is imported only when a settings file is given.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from opdiag_dashboards.config import DashboardSettings

from opdiag.config_types import Section, SettingsError
from opdiag.errors import InputError
from opdiag.timeutil import parse_lookback_s

REPO_ROOT = Path(__file__).resolve().parents[2]


def default_demo_traces() -> Path:
    """The demo corpus: ``OPDIAG_DEMO_TRACES``, else the checkout's ``demo/traces``, else
    the copy an install carries (``<prefix>/share/opdiag/demo-traces``, pyproject's
    data-files)."""
    env = os.environ.get("OPDIAG_DEMO_TRACES")
    if env:
        return Path(env)
    checkout = REPO_ROOT / "demo" / "traces"
    installed = Path(sys.prefix) / "share" / "opdiag" / "demo-traces"
    return installed if not checkout.is_dir() and installed.is_dir() else checkout


@dataclass(kw_only=True)
class DiagnosisSettings(Section):
    """Thresholds of the verdicts; each says when to change it."""

    # No span ended for this long and no terminal transition: stuck. Raise it for operations
    # with long silent phases (a single long training epoch emits no span until it ends).
    stuck_after_s: float = field(default=300.0, metadata={"gt": 0})
    # Slow when the duration exceeds factor x the median of the same type's successful runs.
    slow_factor: float = field(default=2.0, metadata={"gt": 0})
    # Fewer successful runs than this in the source: use the budget instead of a baseline.
    min_baseline_runs: int = field(default=2, metadata={"ge": 1})
    # Fewer are enough when they are of the run's own strategy (the first comparison.alike
    # key) and other runs would not judge it: one earlier training of the same strategy says
    # what its epochs take. Set it to min_baseline_runs to ask as many of them.
    min_strategy_runs: int = field(default=1, metadata={"ge": 1})
    # Budgets (seconds) per operation type when there is no baseline; default for others.
    slow_budget_s: dict[str, float] = field(
        default_factory=lambda: {
            "backtesting": 600.0,
            "training": 3600.0,
            "data_load": 900.0,
        }
    )
    default_budget_s: float = field(default=1800.0, metadata={"gt": 0})
    # Spans whose name matches one of these are transport noise for the bottleneck.
    noise_span_patterns: list[str] = field(
        default_factory=lambda: [
            "* http send",
            "* http receive",
            "GET /health",
            "GET /api/v1/health",
            "GET /metrics*",
            "GET /api/v1/operations/*",
            "operations.list",
        ]
    )
    # A bottleneck is named only when it holds at least this share of the operation (below
    # it the time is spread out, or spent where no span says: a CLI waiting between retries).
    min_bottleneck_share: float = field(default=0.1, metadata={"ge": 0, "le": 1})
    # Execution flow is cut after this many spans (huge traces); the rest is counted.
    max_flow_spans: int = field(default=2000, metadata={"ge": 0})


@dataclass(kw_only=True)
class ComparisonSettings(Section):
    """What "the last good runs" are and how a run is cut into phases (``comparison``)."""

    # The baseline: this many most recent healthy, not slow runs of the same type. More runs
    # make the median steadier but reach further back into older code and data.
    baseline_runs: int = field(default=5, metadata={"ge": 1})
    # The services that do an operation's work: phases and the gaps between them are read on
    # these (by span name, the suffix of a worker's service name does not matter). An operation
    # with no span on any of them is read on all its services.
    worker_services: list[str] = field(
        default_factory=lambda: ["*-worker-*", "*-worker", "ktrdr-ib-host-service"]
    )
    # Time in which no span is open on the worker side, shorter than this, is scheduling noise,
    # not a phase: raise it when many short gaps clutter a comparison.
    min_gap_ms: float = field(default=50.0, metadata={"ge": 0})
    # What makes two runs of a type alike, strongest first: the baseline prefers runs that share
    # all of them, then the first, then any run of the type. Each is read from the first source
    # an operation's spans carry: an attribute key, or "key>field" for a field of a JSON-encoded
    # attribute (KTRDR's cli.args holds the CLI's arguments, at top level or under "kwargs").
    alike: dict[str, list[str]] = field(
        default_factory=lambda: {
            "strategy": [
                "strategy",
                "strategy.name",
                "training.strategy",
                "backtest.strategy",
                "cli.args>strategy",
                "cli.args>kwargs.strategy",
            ],
            "symbol": [
                "data.symbol",
                "cli.args>symbol",
                "cli.args>symbols",
                "cli.args>kwargs.symbol",
                "cli.args>kwargs.symbols",
            ],
        }
    )
    # Types whose run time the strategy itself sets beyond its data's size (a training's
    # epochs): a run of one of them that names no strategy (sent with curl; only KTRDR's CLI
    # writes it) is not judged slow by runs of a named strategy. Other types are judged by
    # their data's size whatever the strategy.
    strategy_paced: list[str] = field(default_factory=lambda: ["training"])
    # How much data a run processed (the first of these attributes an operation's spans
    # carry, a positive number): a run's expected time is its baseline's time per unit of
    # data times its own, so a two-year backtest is not "slow" next to six-month ones.
    size: list[str] = field(default_factory=lambda: ["data.rows"])
    # Rows a comparison keeps (the largest changes first); the rest are counted.
    max_rows: int = field(default=20, metadata={"ge": 1})


def _http_url(value: str | None) -> str | None:
    """A Jaeger query URL is http(s) with a host: anything else is bad usage, caught here
    instead of surfacing later as "Jaeger unavailable"."""
    if value in (None, ""):
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http(s) URL such as http://localhost:16686")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError("the URL's port is not a number from 0 to 65535") from None
    return value


@dataclass(kw_only=True)
class JaegerSettings(Section):
    """How to talk to Jaeger and which services hold operations."""

    url: str | None = field(default=None, metadata={"check": _http_url})
    service_patterns: list[str] = field(
        default_factory=lambda: [
            "ktrdr-cli",
            "ktrdr-api",
            "ktrdr-backtest-worker-*",
            "ktrdr-training-worker-*",
            "ktrdr-ib-host-service",
            "ktrdr-mcp-server",
        ]
    )
    timeout_s: float = 10.0
    connect_timeout_s: float = 3.0
    # Every Jaeger call (waiting for a slot, connecting, every byte of the answer, retries)
    # ends within this, or the lookup answers 504: a Jaeger that sends its answer a byte at a
    # time never trips the read timeout, and would hold a request (and a server thread) for
    # ever. Raise it only for huge, slow windows.
    deadline_s: float = field(default=30.0, metadata={"gt": 0})
    # All the Jaeger calls of one request (a CLI command, an API call, an assistant's tool
    # call) end within this, or the request answers 504: a listing makes dozens of calls, and
    # over a Jaeger taking 3 s a call it took 93 s, long after Grafana's panel gave up. A
    # watcher pass has this much for its listing and as much again for its follow-ups.
    budget_s: float = field(default=60.0, metadata={"gt": 0})
    # Largest answer read from Jaeger, in bytes, counted while it streams and refused before
    # it is decoded (502 naming the cap): decoded answers take several times their size in
    # memory. Lower it on small machines; raise it for very large windows.
    max_answer_bytes: int = field(default=256 * 1024 * 1024, metadata={"gt": 0})
    retries: int = 2
    backoff_s: float = 0.2
    concurrency: int = 8
    search_limit: int = 200
    # How far back a lookup without a range searches (an operation id carrying its date is
    # searched around that date instead), and the default range of lists; 6 h.
    lookback_s: float = field(default=6 * 3600.0, metadata={"gt": 0})
    # memory|badger|cassandra match tag values exactly; elasticsearch|opensearch as regex.
    storage: str = "memory"
    api: str = "auto"  # auto | v3 | legacy
    # The service list changes only when a process (re)starts: reuse it this long. Lower it if
    # new worker services must be searched sooner; 0 asks Jaeger every time.
    services_ttl_s: float = 30.0
    # Search answers (window searches of the operations list and baselines, shared by identical
    # concurrent requests) are reused this long: the staleness a list may show. 0 disables.
    search_ttl_s: float = 10.0
    # Window bounds are rounded outwards to this step (answers are cut back to the requested
    # window), so requests a moment apart share one search.
    search_round_s: float = 10.0
    # Depth per service of the shared live-window search (the last lookback_s), which answers
    # the operations list, baselines and lookups of recent operations. When one service's
    # answer reaches it, operations are looked up by tag instead. Raise it for busy systems.
    live_depth: int = 500
    # Memory bound of the search cache, in traces held over all cached answers.
    search_cache_traces: int = 20_000


@dataclass(kw_only=True)
class LinkSettings(Section):
    """Browser-visible base URLs used to build links (not the docker-internal ones)."""

    grafana_url: str = "http://localhost:3000"
    jaeger_ui_url: str = "http://localhost:16686"
    # Empty: the address ``opdiag serve`` listens on (Settings fills it in), so the links of a
    # server started with --port lead back to it.
    opdiag_url: str = ""
    jaeger_datasource_uid: str = "jaeger"
    diagnosis_dashboard_uid: str = "opdiag-operation-diagnosis"


@dataclass(kw_only=True)
class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = field(default=8080, metadata={"ge": 0, "le": 65535})
    auth_token: str | None = None
    # With a token: serve the HTML pages without it (behind an SSO proxy, on a trusted
    # network). Otherwise a browser is asked for it (HTTP Basic, the token as the password).
    open_pages: bool = False
    # With a token: serve /metrics without it. Otherwise Prometheus sends it (the scrape
    # config's authorization.credentials_file, see dashboards.opdiag_token_file).
    open_metrics: bool = False
    max_request_bytes: int = 1_000_000
    cache_size: int = 2048
    threads: int = 16
    max_rows: int = 1000
    # simpod /query targets per request: a panel has a handful (Grafana names them A..Z);
    # thousands would hold a worker thread for seconds.
    max_targets: int = field(default=50, metadata={"ge": 1})


MEMORY_STORE = ":memory:"


def default_store_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the verdict store lives when no path is set: ``$XDG_STATE_HOME/opdiag`` (or
    ``~/.local/state/opdiag``)/``verdicts.sqlite3``, the XDG place for state that outlives a
    run but is no user document."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "opdiag" / "verdicts.sqlite3"


@dataclass(kw_only=True)
class StoreSettings(Section):
    """Where ``opdiag serve`` keeps every verdict: the operations list, the verdict counts and
    the variables read it, so they are fast and outlive Jaeger's retention."""

    # postgresql://user:password@host:5432/db: one store shared by several opdiag replicas
    # (one of them watches at a time). Empty: the SQLite file below.
    url: str | None = None
    # The SQLite file; empty = default_store_path(); ":memory:" keeps nothing (the bundled
    # demo corpus uses it unless a path is set).
    path: str | None = None
    # Seconds a PostgreSQL connection attempt may take before the store counts as down.
    connect_timeout_s: float = field(default=5.0, metadata={"gt": 0})


@dataclass(kw_only=True)
class WatcherSettings(Section):
    """The background watcher of ``opdiag serve``: what it looks at and how often."""

    # Off: nothing is recorded and the list reads the traces (as before the store existed).
    enabled: bool = True
    # Seconds between passes. Each pass reads the source's recent window (shared with the
    # list, cached for jaeger.search_ttl_s): shorter makes verdicts and alerts sooner.
    interval_s: float = field(default=15.0, metadata={"gt": 0})
    # Unfinished operations older than the source's window are still re-judged, one by one,
    # until they are this old (then their last verdict stays and they leave the in-progress
    # gauge) ...
    follow_s: float = field(default=24 * 3600.0, metadata={"gt": 0})
    # ... at most this many per pass (each costs a lookup of its traces).
    follow_limit: int = field(default=20, metadata={"ge": 0})


@dataclass(kw_only=True)
class Settings(Section):
    """Everything configurable, in one object."""

    trace_paths: list[Path] = field(default_factory=list)
    rule_packs: list[Path] = field(default_factory=list)
    use_demo: bool = False
    # One trace file (or its gzip content) larger than this is refused, not read: a 1 GiB
    # file is ~1.4 million spans and several GB of memory once parsed.
    max_trace_file_bytes: int = field(default=1 << 30, metadata={"gt": 0})
    diagnosis: DiagnosisSettings = field(default_factory=DiagnosisSettings)
    comparison: ComparisonSettings = field(default_factory=ComparisonSettings)
    jaeger: JaegerSettings = field(default_factory=JaegerSettings)
    links: LinkSettings = field(default_factory=LinkSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    watcher: WatcherSettings = field(default_factory=WatcherSettings)
    dashboards: DashboardSettings = field(default_factory=DashboardSettings)

    def __post_init__(self) -> None:
        if not self.links.opdiag_url:
            self.links = dataclasses.replace(self.links, opdiag_url=served_url(self.server))


def served_url(server: ServerSettings) -> str:
    """The server's address as a browser on the same machine reaches it."""
    host = server.host
    if host in {"", "127.0.0.1", "0.0.0.0", "::", "::1", "localhost"}:
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{server.port}"


# Environment variable -> dotted settings path.
ENV_VARS: dict[str, str] = {
    "JAEGER_URL": "jaeger.url",
    "OPDIAG_JAEGER_URL": "jaeger.url",
    "OPDIAG_JAEGER_STORAGE": "jaeger.storage",
    "OPDIAG_JAEGER_API": "jaeger.api",
    "OPDIAG_JAEGER_LOOKBACK": "jaeger.lookback_s",
    "OPDIAG_JAEGER_DEADLINE_S": "jaeger.deadline_s",
    "OPDIAG_JAEGER_BUDGET_S": "jaeger.budget_s",
    "OPDIAG_JAEGER_MAX_ANSWER_BYTES": "jaeger.max_answer_bytes",
    "OPDIAG_SERVICE_PATTERNS": "jaeger.service_patterns",
    "OPDIAG_TRACES": "trace_paths",
    "OPDIAG_RULES": "rule_packs",
    "OPDIAG_STUCK_AFTER_S": "diagnosis.stuck_after_s",
    "OPDIAG_SLOW_FACTOR": "diagnosis.slow_factor",
    "OPDIAG_MIN_BOTTLENECK_SHARE": "diagnosis.min_bottleneck_share",
    "OPDIAG_BASELINE_RUNS": "comparison.baseline_runs",
    "OPDIAG_GRAFANA_URL": "links.grafana_url",
    "OPDIAG_JAEGER_UI_URL": "links.jaeger_ui_url",
    "OPDIAG_PUBLIC_URL": "links.opdiag_url",
    "OPDIAG_HOST": "server.host",
    "OPDIAG_PORT": "server.port",
    "OPDIAG_AUTH_TOKEN": "server.auth_token",
    "OPDIAG_OPEN_PAGES": "server.open_pages",
    "OPDIAG_OPEN_METRICS": "server.open_metrics",
    "OPDIAG_SCRAPE_TOKEN_FILE": "dashboards.opdiag_token_file",
    "OPDIAG_CACHE_SIZE": "server.cache_size",
    "OPDIAG_MAX_TARGETS": "server.max_targets",
    "OPDIAG_MAX_TRACE_FILE_BYTES": "max_trace_file_bytes",
    "OPDIAG_STORE_URL": "store.url",
    "OPDIAG_STORE_PATH": "store.path",
    "OPDIAG_WATCHER": "watcher.enabled",
    "OPDIAG_WATCHER_INTERVAL_S": "watcher.interval_s",
}
_LIST_PATHS = {"jaeger.service_patterns", "trace_paths", "rule_packs"}
_LOOKBACK_PATHS = {"jaeger.lookback_s"}  # 6h, 3d, or seconds


def _set_path(data: dict[str, Any], dotted: str, value: Any, source: str | None) -> None:
    parts = dotted.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            where = ".".join(parts[: i + 1])
            raise InputError(
                f"invalid setting {where}: should be a mapping, not {type(node).__name__}",
                source=source,
                field=where,
            )
    node[parts[-1]] = value


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings object; a bad file or value raises ``InputError`` naming it."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    loaded_keys: set[str] = set()
    path = config_file or env.get("OPDIAG_CONFIG")
    if path:
        import yaml

        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise InputError(
                f"cannot read settings file: {exc.strerror}", source=str(path)
            ) from None
        except UnicodeDecodeError as exc:
            raise InputError(
                f"settings file is not UTF-8 text (byte {exc.start})", source=str(path)
            ) from None
        except yaml.YAMLError as exc:
            raise InputError(f"settings file is not valid YAML: {exc}", source=str(path)) from None
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError) as exc:
            # an explicit tag the text does not fit: !!int abc, !!timestamp x, !!bool maybe
            raise InputError(
                f"settings file holds a value YAML cannot read ({type(exc).__name__}: "
                f"{str(exc)[:80]})",
                source=str(path),
            ) from None
        except RecursionError:
            raise InputError("settings file is nested too deeply", source=str(path)) from None
        if not isinstance(loaded, dict):
            raise InputError("settings file must hold a mapping", source=str(path))
        data = _deep_merge(data, loaded)
        loaded_keys = set(loaded)
    for var, dotted in ENV_VARS.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        value: Any = raw
        if dotted in _LIST_PATHS:
            sep = os.pathsep if dotted in {"trace_paths", "rule_packs"} else ","
            value = [p.strip() for p in raw.split(sep) if p.strip()]
        elif dotted in _LOOKBACK_PATHS:
            value = parse_lookback_s(raw, name=var)
        _set_path(data, dotted, value, str(path) if path else None)
    if overrides:
        data = _deep_merge(data, overrides)
    try:
        return Settings.model_validate(data)
    except SettingsError as exc:
        given = exc.given
        shown = f" (got {given!r})" if isinstance(given, str | int | float) else ""
        in_file = bool(path) and exc.loc.split(".")[0] in loaded_keys
        raise InputError(
            f"invalid setting {exc.loc}: {exc.message}{shown}",
            source=str(path) if in_file else None,
            field=exc.loc,
        ) from None
