"""The KTRDR dashboard bugs (research/ktrdr.md §6, §9) stay fixed: the generated PromQL is
evaluated by Prometheus' own engine (`promtool test rules`) over small input series, with
every variable at "All" exactly as Grafana would send it.

- success rate: 0 % (not 100 %) when every operation failed, no data when none finished,
  computed over the dashboard range (not lifetime counters);
- counts over the range include each series' first operation: KTRDR's counters are born at
  their first increment (value 1, no 0 sample), which a plain increase() never counts;
- finishing rate: each graph step counts the operations finished in it, a series' first
  increment included, and the steps add up to the operations finished in the range;
- error rate: 0 (not empty) while traffic flows without errors, 0 (not NaN) without traffic;
- latency percentiles: nothing (not NaN) without traffic;
- errors by status: a 0 series (not empty) when no 4xx/5xx series exists;
- workers: every instance of the worker job (not only ports 5003/5005);
- services: the backend is included whether its job is `ktrdr-backend` or `backend`;
- the `_total`-named registry gauge is read as a gauge.
"""

from __future__ import annotations

import inspect
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from opdiag.settings import Settings
from opdiag_dashboards.queries import promql as pq

RANGE = "1h"
# Grafana's graph step ($__interval) in these tests: the input interval, so steps tile the hour.
STEP = "1m"
STEP_MS = "60000"


def all_selected(expr: str, settings: Settings) -> str:
    """Substitute every variable with its "All" value (the variables' allValue)."""
    d = settings.dashboards
    values = {
        "$__rate_interval": "1m",
        "$__range": RANGE,
        "$__interval_ms": STEP_MS,
        "$__interval": STEP,
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


def steps_case(series: list[tuple[str, str]], tests: list[tuple[str, str, list]]) -> dict:
    """One input, several (expr, eval_time, samples) checks."""
    return {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series],
        "promql_expr_test": [
            {
                "expr": expr,
                "eval_time": at,
                "exp_samples": [{"labels": labels, "value": value} for labels, value in samples],
            }
            for expr, at, samples in tests
        ],
    }


def series(metric: str, **labels: str) -> str:
    return metric + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def ops(status: str, instance: str = "w:5003", operation_type: str = "training") -> str:
    return series(
        "ktrdr_operations_total",
        job="ktrdr-workers",
        instance=instance,
        operation_type=operation_type,
        status=status,
    )


def bucket(le: str, operation_type: str = "training") -> str:
    return series(
        "ktrdr_operation_duration_seconds_bucket",
        job="ktrdr-workers",
        instance="w:5003",
        operation_type=operation_type,
        status="completed",
        le=le,
    )


# A series KTRDR creates at its first increment inside the range (30 min before the end of
# the 1 h range): absent, then 1. A plain increase() over the range gives 0 for it.
BORN = "_x30 1+0x30"
# One operation of 20 s finished in the range: a duration histogram born at its first observe.
ONE_20S_OPERATION = [(bucket("10"), "_x30 0+0x30"), (bucket("30"), BORN), (bucket("+Inf"), BORN)]


def http(code: str) -> str:
    return series(
        "http_server_duration_milliseconds_count",
        job="ktrdr-backend",
        instance="backend:8000",
        http_status_code=code,
    )


def http_bucket(le: str) -> str:
    return series(
        "http_server_duration_milliseconds_bucket",
        job="ktrdr-backend",
        instance="backend:8000",
        le=le,
    )


# 10 requests a minute, all under 100 ms (P95 = 95 ms by interpolation), then none from 30 min.
TRAFFIC_THEN_IDLE = [
    (http_bucket("100"), "0+10x30 300+0x30"),
    (http_bucket("+Inf"), "0+10x30 300+0x30"),
]
PER_STEP_S = 1 / 60  # one operation in a 1 min step, per second


def in_range(per_second: str) -> str:
    """The operations a per-step rate shows over the hour: each step's value times the step.

    Steps at 1 min .. 60 min (not at 0, where every series would look born), whether the
    subquery range is closed (Prometheus 2) or left-open (3).
    """
    return f"sum_over_time(({per_second})[59m59s:{STEP}]) * 60"


def registry(metric: str, worker_type: str) -> str:
    return series(metric, job="ktrdr-backend", instance="backend:8000", worker_type=worker_type)


def cases(s: Settings) -> dict[str, dict]:
    q = {
        name: all_selected(fn(s), s)
        for name, fn in vars(pq).items()
        if callable(fn)
        and fn.__module__ == pq.__name__
        and list(inspect.signature(fn).parameters) == ["s"]
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
        "first increment: a failure series born in the range counts 1, not 0": case(
            [(ops("failed"), BORN)], q["failed_in_range"], [("{}", 1)]
        ),
        "first increment: born series count their value, older ones their increase": case(
            # w:5003 had 5 failures before the range and 1 in it; w:5004 was born with 2.
            [(ops("failed"), "5+0x30 6+0x30"), (ops("failed", "w:5004"), "_x40 2+0x20")],
            f"round({q['failed_in_range']})",
            [("{}", 3)],
        ),
        "first increment: a born series of a process that stopped still counts": case(
            [(ops("failed"), "_x30 2+0x10 stale")], q["failed_in_range"], [("{}", 2)]
        ),
        "a counter reset inside the range counts the new value, not a negative step": case(
            # The process restarted at 31 min; its counter was born again at 1.
            [(ops("failed"), "5+0x30 1+0x30")],
            f"round({q['failed_in_range']})",
            [("{}", 1)],
        ),
        "first increment: success rate when each type finished once": case(
            [(ops("completed"), BORN), (ops("failed", operation_type="backtesting"), BORN)],
            q["success_rate_percent"],
            [("{}", 50)],
        ),
        "first increment: finished by type and status": case(
            [(ops("completed"), BORN), (ops("failed", operation_type="backtesting"), BORN)],
            q["finished_by_type_and_status"],
            [
                ('{operation_type="training", status="completed"}', 1),
                ('{operation_type="backtesting", status="failed"}', 1),
            ],
        ),
        "first increment: median duration of one operation": case(
            ONE_20S_OPERATION, all_selected(pq.duration_quantile_in_range(s, 0.5), s), [("{}", 20)]
        ),
        "first increment: duration percentiles per type": case(
            ONE_20S_OPERATION,
            all_selected(pq.duration_quantile_by_type_in_range(s, 0.5), s),
            [('{operation_type="training"}', 20)],
        ),
        "finishing rate: a series born in a step counts in that step, then 0": steps_case(
            [(ops("failed"), BORN)],
            [
                (q["finished_rate_by_status"], "30m", [('{status="failed"}', PER_STEP_S)]),
                (q["finished_rate_by_status"], "31m", [('{status="failed"}', 0)]),
                (q["finished_rate_by_status"], "29m", []),
            ],
        ),
        "finishing rate: an existing series counts its step's increase, per second": steps_case(
            [(ops("completed"), "5+0x10 7+0x50")],
            [
                (q["finished_rate_by_status"], "11m", [('{status="completed"}', 2 * PER_STEP_S)]),
                (q["finished_rate_by_status"], "12m", [('{status="completed"}', 0)]),
            ],
        ),
        "finishing rate: the steps add up to the operations finished in the range": steps_case(
            [
                # 5 before the range, +1 at 11 min, +2 at 32 min: 3
                (ops("failed"), "5+0x10 6+0x20 8+0x29"),
                # born at 40 min with 2 (two operations in its first scrape): 2
                (ops("failed", "w:5004"), "_x40 2+0x20"),
                # process restarted at 31 min, its counter born again at 1: 1
                (ops("failed", "w:5005"), "5+0x30 1+0x30"),
                # a failed scrape (staleness marker) at 21 min, then +1: 1, not 51 again
                (ops("completed"), "50+0x20 stale 51+0x38"),
                # born at 45 min, the process stopped at 50 min: 1
                (ops("completed", "w:5004", "backtesting"), "_x45 1+0x5 stale"),
            ],
            [
                (
                    in_range(q["finished_rate_by_status"]),
                    "60m",
                    [('{status="failed"}', 6), ('{status="completed"}', 2)],
                ),
                (
                    # the same operations as Finished by Type and Status over the range
                    f"round({q['finished_by_type_and_status']})",
                    "60m",
                    [
                        ('{operation_type="training", status="failed"}', 6),
                        ('{operation_type="training", status="completed"}', 1),
                        ('{operation_type="backtesting", status="completed"}', 1),
                    ],
                ),
            ],
        ),
        "latency percentiles are nothing, not NaN, without traffic": steps_case(
            TRAFFIC_THEN_IDLE,
            [
                (all_selected(pq.latency_quantile(s, qq), s), "20m", [("{}", ms)])
                for qq, ms in ((0.5, 50), (0.95, 95))
            ]
            + [
                (all_selected(pq.latency_quantile(s, qq), s), "45m", []) for qq in (0.5, 0.95, 0.99)
            ],
        ),
        "latency percentiles are nothing before any HTTP series exists": case(
            [(ops("completed"), "0+1x60")], all_selected(pq.latency_quantile(s, 0.95), s), []
        ),
        "error rate is 0 with healthy traffic": case(
            [(http("200"), "0+60x60")], q["error_ratio_percent"], [("{}", 0)]
        ),
        "error rate is 0, not NaN, without traffic": case(
            [(http("200"), "5+0x60"), (http("503"), "1+0x60")],
            q["error_ratio_percent"],
            [("{}", 0)],
        ),
        "error rate is 0 before any HTTP series exists": case(
            [(ops("completed"), "0+1x60")], q["error_ratio_percent"], [("{}", 0)]
        ),
        "errors by status are one 0 series without 4xx/5xx": case(
            [(http("200"), "0+60x60")],
            q["errors_by_status"],
            [(f'{{http_status_code="{pq.NO_ERRORS}"}}', 0)],
        ),
        "errors by status show each code (and no zero series) once there are errors": case(
            [(http("200"), "0+60x60"), (http("503"), "0+60x60"), (http("404"), "0+120x60")],
            q["errors_by_status"],
            [('{http_status_code="503"}', 1), ('{http_status_code="404"}', 2)],
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


@pytest.mark.prometheus
def test_plain_increase_really_misses_the_first_increment(tmp_path: Path):
    """The first-increment cases can see the bug: a plain increase() counts 0 of 1 failure."""
    plain = 'sum(increase(ktrdr_operations_total{status="failed"}[1h])) or vector(0)'
    result = run_promtool(tmp_path, [case([(ops("failed"), BORN)], plain, [("{}", 1)])])
    assert result.returncode != 0


@pytest.mark.prometheus
def test_unguarded_error_rate_really_was_nan_without_traffic(tmp_path: Path):
    """The no-traffic case can see the bug: the former expression gives NaN (0/0), not 0."""
    s = Settings()
    errors = pq.error_ratio_percent(s).split(" / ")[0]
    former = all_selected(f"{errors} / {pq.request_rate(s)} * 100", s)
    result = run_promtool(tmp_path, [case([(http("200"), "5+0x60")], former, [("{}", 0)])])
    assert result.returncode != 0


FORMER_FINISHING_RATE = 'sum by (status) (rate(ktrdr_operations_total{job=~".*"}[1m]))'


@pytest.mark.prometheus
def test_rate_really_missed_the_first_increment_per_step(tmp_path: Path):
    """The finishing-rate cases can see the bug: rate() shows nothing in the step where a
    series is born, and its steps add up to 0 of the 1 operation."""
    born = [(ops("failed"), BORN)]
    at_birth = steps_case(
        born, [(FORMER_FINISHING_RATE, "30m", [('{status="failed"}', PER_STEP_S)])]
    )
    total = steps_case(born, [(in_range(FORMER_FINISHING_RATE), "60m", [('{status="failed"}', 1)])])
    for broken in (at_birth, total):
        assert run_promtool(tmp_path, [broken]).returncode != 0


@pytest.mark.prometheus
def test_instant_offset_would_count_a_failed_scrape_as_new_operations(tmp_path: Path):
    """Why the last value before a step is last_over_time(), not ``S offset $__interval``:
    after a staleness marker the instant form counts the lifetime total again."""
    s = Settings()
    naive = all_selected(
        pq.finished_rate_by_status(s)
        .replace("last_over_time(", "(")
        .replace("[$__range] offset", " offset"),
        s,
    )
    stale = [(ops("completed"), "50+0x20 stale 51+0x38")]
    test = steps_case(stale, [(in_range(naive), "60m", [('{status="completed"}', 1)])])
    assert run_promtool(tmp_path, [test]).returncode != 0


@pytest.mark.prometheus
def test_latency_without_the_guard_really_was_nan_without_traffic(tmp_path: Path):
    """The no-traffic case can see the bug: the former expression gives NaN, not nothing."""
    s = Settings()
    former = all_selected(pq.latency_quantile(s, 0.95).removesuffix(" >= 0"), s)
    assert former != all_selected(pq.latency_quantile(s, 0.95), s)
    test = steps_case(TRAFFIC_THEN_IDLE, [(former, "45m", [])])
    assert run_promtool(tmp_path, [test]).returncode != 0
