"""The KTRDR dashboard bugs (research/ktrdr.md §6, §9) stay fixed: the generated PromQL is
evaluated by Prometheus' own engine (`promtool test rules`) over small input series, with
every variable at "All" exactly as Grafana would send it.

- success rate: 0 % (not 100 %) when every operation failed, no data when none finished,
  computed over the dashboard range (not lifetime counters);
- error rate: 0 (not empty) while traffic flows without errors;
- workers: every instance of the worker job (not only ports 5003/5005);
- services: the backend is included whether its job is `ktrdr-backend` or `backend`;
- the `_total`-named registry gauge is read as a gauge.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from opdiag.settings import Settings
from opdiag_dashboards.queries import promql as pq

RANGE = "1h"


def all_selected(expr: str, settings: Settings) -> str:
    """Substitute every variable with its "All" value (the variables' allValue)."""
    d = settings.dashboards
    values = {
        "$__rate_interval": "1m",
        "$__range": RANGE,
        "$environment": ".*",
        "$job": d.service_job_regex,
        "$instance": ".*",
        "$worker_job": d.worker_job_regex,
        "$worker_instance": ".*",
        "$worker_type": ".*",
        "$operation_type": ".*",
    }
    for var in sorted(values, key=len, reverse=True):
        expr = expr.replace(var, values[var])
    assert "$" not in expr, expr
    return expr


def run_promtool(tmp_path: Path, tests: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip(
            "promtool is not installed: run `bash scripts/ensure-system-deps.sh` "
            "(Debian package prometheus); `make test` installs it"
        )
    path = tmp_path / "dashboards.test.yaml"
    path.write_text(yaml.safe_dump({"rule_files": [], "evaluation_interval": "1m", "tests": tests}))
    return subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, check=False
    )


def case(series: list[tuple[str, str]], expr: str, samples: list[tuple[str, float]]) -> dict:
    return {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series],
        "promql_expr_test": [
            {
                "expr": expr,
                "eval_time": "60m",
                "exp_samples": [{"labels": labels, "value": value} for labels, value in samples],
            }
        ],
    }


def series(metric: str, **labels: str) -> str:
    return metric + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def ops(status: str) -> str:
    return series(
        "ktrdr_operations_total",
        job="ktrdr-workers",
        instance="w:5003",
        operation_type="training",
        status=status,
    )


def http(code: str) -> str:
    return series(
        "http_server_duration_milliseconds_count",
        job="ktrdr-backend",
        instance="backend:8000",
        http_status_code=code,
    )


def registry(metric: str, worker_type: str) -> str:
    return series(metric, job="ktrdr-backend", instance="backend:8000", worker_type=worker_type)


def cases(s: Settings) -> dict[str, dict]:
    q = {
        name: all_selected(fn(s), s)
        for name, fn in vars(pq).items()
        if callable(fn) and fn.__module__ == pq.__name__ and fn.__code__.co_argcount == 1
    }
    return {
        "success rate is 0 when all failed": case(
            [(ops("failed"), "0+1x60")], q["success_rate_percent"], [("{}", 0)]
        ),
        "success rate is no data when nothing finished in the range": case(
            [(ops("completed"), "7+0x60"), (ops("failed"), "3+0x60")],
            q["success_rate_percent"],
            [],
        ),
        "success rate counts only the range": case(
            # 1000 lifetime completions before the range, then 1 completed and 3 failed.
            [
                (ops("completed"), "1000+0x30 1000+0x25 1001+0x5"),
                (ops("failed"), "0+0x30 1+1x2 3+0x28"),
            ],
            q["success_rate_percent"],
            [("{}", 25)],
        ),
        "failed operations are 0, not empty": case(
            [(ops("completed"), "0+1x60")], q["failed_in_range"], [("{}", 0)]
        ),
        "error rate is 0 with healthy traffic": case(
            [(http("200"), "0+60x60")], q["error_ratio_percent"], [("{}", 0)]
        ),
        "error rate counts 5xx": case(
            [(http("200"), "0+90x60"), (http("503"), "0+10x60")],
            q["error_ratio_percent"],
            [("{}", 10)],
        ),
        "every worker instance is shown": case(
            [
                (f'up{{job="ktrdr-workers", instance="{i}"}}', "1+0x60")
                for i in (
                    "backtest-worker-1:5003",
                    "backtest-worker-2:5004",
                    "training-worker-1:5005",
                    "training-worker-2:5006",
                )
            ]
            + [
                ('up{job="ktrdr-workers-b", instance="workers-b:5008"}', "0+0x60"),
                ('up{job="ktrdr-gpu-worker", instance="gpu:5005"}', "1+0x60"),
                ('up{job="ktrdr-backend", instance="backend:8000"}', "1+0x60"),
            ],
            q["worker_status"],
            [
                (f'{{__name__="up", job="{j}", instance="{i}"}}', v)
                for j, i, v in (
                    ("ktrdr-workers", "backtest-worker-1:5003", 1),
                    ("ktrdr-workers", "backtest-worker-2:5004", 1),
                    ("ktrdr-workers", "training-worker-1:5005", 1),
                    ("ktrdr-workers", "training-worker-2:5006", 1),
                    ("ktrdr-workers-b", "workers-b:5008", 0),
                    ("ktrdr-gpu-worker", "gpu:5005", 1),
                )
            ],
        ),
        "the backend is a service under both job names": case(
            [
                (
                    'process_resident_memory_bytes{job="ktrdr-backend", instance="backend:8000"}',
                    "100+0x60",
                ),
                ('process_resident_memory_bytes{job="backend", instance="old:8000"}', "50+0x60"),
                (
                    'process_resident_memory_bytes{job="ktrdr-workers", instance="w:5003"}',
                    "10+0x60",
                ),
                ('process_resident_memory_bytes{job="prometheus", instance="p:9090"}', "1+0x60"),
            ],
            q["memory_by_service"],
            [
                ('{job="ktrdr-backend", instance="backend:8000"}', 100),
                ('{job="backend", instance="old:8000"}', 50),
                ('{job="ktrdr-workers", instance="w:5003"}', 10),
            ],
        ),
        "registered workers read the gauge": case(
            [
                (
                    registry("ktrdr_workers_registered_total", "training"),
                    "2+0x60",
                ),
                (
                    registry("ktrdr_workers_registered_total", "backtesting"),
                    "3+0x60",
                ),
                (
                    registry("ktrdr_workers_available", "backtesting"),
                    "1+0x60",
                ),
                (
                    registry("ktrdr_workers_available", "training"),
                    "0+0x60",
                ),
            ],
            q["workers_unavailable"],
            [("{}", 4)],
        ),
    }


@pytest.mark.prometheus
@pytest.mark.parametrize("name", list(cases(Settings())))
def test_dashboard_query_semantics(tmp_path: Path, name: str):
    result = run_promtool(tmp_path, [cases(Settings())[name]])
    assert result.returncode == 0, f"{name}:\n{result.stdout}{result.stderr}"


@pytest.mark.prometheus
def test_ktrdr_success_rate_really_was_broken(tmp_path: Path):
    """The same check on KTRDR's own expression fails: the test can see the bug."""
    ktrdr = (
        'sum(ktrdr_operations_total{status="completed"}) / sum(ktrdr_operations_total) * 100 '
        "or vector(100)"
    )
    result = run_promtool(tmp_path, [case([(ops("failed"), "0+1x60")], ktrdr, [("{}", 0)])])
    assert result.returncode != 0
