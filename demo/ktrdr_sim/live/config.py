"""Configuration of one live role, from the environment (docker-compose) or the command line.

Durations in the scenarios are KTRDR seconds; ``speedup`` compresses them so a full cycle of
every scenario takes minutes, not hours.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

ROLES = ("backend", "backtest-worker", "training-worker", "ib-host", "driver", "all")
DEFAULT_PORTS = {"backend": 8000, "backtest-worker": 5003, "training-worker": 5005,
                 "ib-host": 5001}
WORKER_TYPES = {"backtest-worker": "backtesting", "training-worker": "training"}
NO_EXPORT = "none"


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """Everything a role needs; ``public_url`` is how the others reach this process."""

    role: str
    port: int
    bind: str = "0.0.0.0"
    public_url: str = ""
    otlp_endpoint: str = "http://localhost:4318"
    backend_url: str = "http://localhost:8000"
    ib_url: str = "http://localhost:5001"
    worker_id: str = ""
    speedup: float = 10.0
    health_interval_s: float = 10.0  # KTRDR's worker health loop, in KTRDR seconds
    removal_s: float = 300.0  # a worker without a healthy check this long is removed
    orphan_interval_s: float = 15.0  # the orphan detector's period
    orphan_timeout_s: float = 60.0  # RUNNING and unclaimed this long: failed
    restart_after_s: float = 420.0  # a killed worker's keeper starts a new one after this
    mix: str = ""
    cycles: int = 0  # 0 = forever
    gap_s: float = 20.0
    seed: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def exports(self) -> bool:
        return self.otlp_endpoint.strip().lower() != NO_EXPORT

    def real_s(self, ktrdr_s: float) -> float:
        """Wall-clock seconds for a KTRDR duration."""
        return ktrdr_s / self.speedup

    @property
    def health_interval_real_s(self) -> float:
        """The health loop period on the wall clock, never below half a second."""
        return max(0.5, self.real_s(self.health_interval_s))

    @property
    def orphan_interval_real_s(self) -> float:
        """The orphan detector's period on the wall clock, never below a fifth of a second."""
        return max(0.2, self.real_s(self.orphan_interval_s))


def _float(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key, "")
    return float(raw) if raw.strip() else default


def from_env(role: str, env: Mapping[str, str] | None = None, **overrides: object) -> LiveConfig:
    """Read the ``KTRDR_SIM_*`` variables (and KTRDR's own names where it has them)."""
    e = os.environ if env is None else env
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    port = int(e.get("KTRDR_SIM_PORT") or DEFAULT_PORTS.get(role, 0))
    otlp = (e.get("KTRDR_OTEL_OTLP_ENDPOINT") or e.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            or "http://localhost:4318")
    values: dict[str, object] = {
        "role": role,
        "port": port,
        "bind": e.get("KTRDR_SIM_BIND", "0.0.0.0"),
        "public_url": e.get("KTRDR_WORKER_PUBLIC_BASE_URL") or e.get("KTRDR_SIM_PUBLIC_URL")
        or f"http://127.0.0.1:{port}",
        "otlp_endpoint": otlp,
        "backend_url": e.get("KTRDR_SIM_BACKEND_URL", "http://localhost:8000"),
        "ib_url": e.get("KTRDR_SIM_IB_URL", "http://localhost:5001"),
        "worker_id": e.get("KTRDR_WORKER_ID", ""),
        "speedup": _float(e, "KTRDR_SIM_SPEEDUP", 10.0),
        "health_interval_s": _float(e, "KTRDR_SIM_HEALTH_INTERVAL_S", 10.0),
        "restart_after_s": _float(e, "KTRDR_SIM_RESTART_AFTER_S", 420.0),
        "mix": e.get("KTRDR_SIM_MIX", ""),
        "cycles": int(e.get("KTRDR_SIM_CYCLES") or 0),
        "gap_s": _float(e, "KTRDR_SIM_GAP_S", 20.0),
        "seed": int(e["KTRDR_SIM_SEED"]) if e.get("KTRDR_SIM_SEED") else None,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    cfg = LiveConfig(**values)  # type: ignore[arg-type]
    if cfg.speedup <= 0:
        raise ValueError("speedup must be > 0")
    return cfg
