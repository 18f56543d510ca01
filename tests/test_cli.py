"""The CLI contract (SPEC.md): commands, formats, exit codes 0/2/3/4, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from opdiag.cli import commands
from opdiag.cli.main import main
from opdiag.render.json_render import CONTRACT_KEYS

S = 1_000_000
T0 = 1_763_806_500 * S  # 2025-11-22T10:15:00Z
NOW = "2025-11-22T12:00:00Z"
OP_OK = "op_backtesting_20251122_101500_1a2b3c4d"
OP_RUNNING = "op_training_20251122_101600_aaaabbbb"
DISPATCH_TID = "d" * 32
REPO = Path(__file__).resolve().parents[1]


def tag(key: str, value: object) -> dict:
    kind = {bool: "bool", int: "int64", float: "float64"}.get(type(value), "string")
    return {"key": key, "type": kind, "value": value}


def jspan(tid: str, sid: str, name: str, pid: str, start: int, dur: int, parent: str | None = None,
          **tags: object) -> dict:
    return {
        "traceID": tid,
        "spanID": sid,
        "operationName": name,
        "references": [{"refType": "CHILD_OF", "traceID": tid, "spanID": parent}] if parent else [],
        "startTime": start,
        "duration": dur,
        "tags": [tag(k.replace("__", "."), v) for k, v in tags.items()],
        "logs": [],
        "processID": pid,
        "warnings": None,
    }


def corpus_document() -> dict:
    """Three operations: a finished backtest, a training that went silent, a 503 dispatch."""
    ok, run = "a" * 32, "b" * 32
    op_ok = {"operation__id": OP_OK}
    op_run = {"operation__id": OP_RUNNING}
    w = "p1"
    traces = [
        {
            "traceID": ok,
            "processes": {w: {"serviceName": "ktrdr-backtest-worker-1a2b", "tags": []}},
            "spans": [
                jspan(ok, "0000000000000001", "POST /backtests/start", w, T0, 2_000,
                      span__kind="server", http__status_code=200),
                jspan(ok, "0000000000000002", "operation.register", w, T0 + 10, 100,
                      "0000000000000001", operation__type="backtesting", **op_ok),
                jspan(ok, "0000000000000003", "operation.state_transition", w, T0 + 100, 50,
                      "0000000000000001", operation__from_status="pending",
                      operation__to_status="running", **op_ok),
                jspan(ok, "0000000000000004", "backtest.data_loading", w, T0 + 200, 8 * S,
                      "0000000000000001", data__symbol="AAPL"),
                jspan(ok, "0000000000000005", "operation.state_transition", w, T0 + 9 * S, 50,
                      "0000000000000001", operation__from_status="running",
                      operation__to_status="completed", **op_ok),
            ],
        },
        {
            "traceID": run,
            "processes": {w: {"serviceName": "ktrdr-training-worker-9f9f", "tags": []}},
            "spans": [
                jspan(run, "0000000000000011", "POST /training/start", w, T0 + 60 * S, 2_000,
                      span__kind="server", http__status_code=200),
                jspan(run, "0000000000000012", "operation.register", w, T0 + 60 * S + 10, 100,
                      "0000000000000011", operation__type="training", **op_run),
                jspan(run, "0000000000000013", "operation.state_transition", w, T0 + 60 * S + 200,
                      50, "0000000000000011", operation__from_status="pending",
                      operation__to_status="running", **op_run),
                jspan(run, "0000000000000014", "training.data_loading", w, T0 + 61 * S, 5 * S,
                      "0000000000000011", progress__phase="data_loading"),
            ],
        },
        {
            "traceID": DISPATCH_TID,
            "processes": {"p1": {"serviceName": "ktrdr-api", "tags": []}},
            "spans": [
                jspan(DISPATCH_TID, "0000000000000021", "POST /api/v1/backtests/start", "p1",
                      T0 + 120 * S, 5_000, span__kind="server", http__status_code=503,
                      error=True),
                jspan(DISPATCH_TID, "0000000000000022", "workers.select", "p1", T0 + 120 * S + 100,
                      300, "0000000000000021", worker__type="backtesting",
                      worker__total_workers="0", worker__capable_workers="0",
                      worker__available_workers="0",
                      worker__selection_status="no_workers_available"),
            ],
        },
    ]
    return {"data": traces}


@pytest.fixture
def traces_file(tmp_path: Path) -> Path:
    path = tmp_path / "traces.json"
    path.write_text(json.dumps(corpus_document()))
    return path


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("JAEGER_URL", "OPDIAG_JAEGER_URL", "OPDIAG_TRACES", "OPDIAG_RULES",
                "OPDIAG_CONFIG"):
        monkeypatch.delenv(var, raising=False)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_diagnose_json_contract(capsys, traces_file):
    code, out, err = run(capsys, "diagnose", OP_OK, "--traces", str(traces_file), "--now", NOW,
                         "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert set(CONTRACT_KEYS) <= set(data)
    assert data["operation_id"] == OP_OK
    assert data["trace_ids"] == ["a" * 32]
    assert data["verdict"] == "healthy"
    assert isinstance(data["summary"], str) and data["summary"]
    assert isinstance(data["findings"], list)
    assert isinstance(data["execution_flow"], list) and data["execution_flow"]
    assert {"span_id", "span_name", "service", "duration_ms"} <= set(data["execution_flow"][0])
    assert isinstance(data["duration_ms"], int | float)
    page = urlsplit(data["links"]["diagnosis_page"])
    assert page.path.endswith("/operations/" + OP_OK)
    assert parse_qs(page.query) == {  # the operation's time, a minute either side
        "from": [str(data["started_at_ms"] - 60_000)],
        "to": [str(data["ended_at_ms"] + 60_000)],
    }
    assert data["root_cause"] is None or {"span_id", "service", "span_name", "evidence"} <= set(
        data["root_cause"]
    )
    assert data["bottleneck"] is None or {"span_id", "span_name", "self_time_ms"} <= set(
        data["bottleneck"]
    )


def test_diagnose_markdown_sections(capsys, traces_file):
    code, out, _ = run(capsys, "diagnose", DISPATCH_TID, "--traces", str(traces_file),
                       "--now", NOW)
    assert code == 0
    for section in ("Trace Analysis for", "**Trace Summary**", "**Execution Flow**",
                    "**Diagnosis**", "**Root Cause**", "**Solution**"):
        assert section in out
    assert "**no_workers**" in out  # the verdict
    assert "workers.select (ktrdr-api)" in out


def test_stuck_depends_on_now(capsys, traces_file):
    code, out, _ = run(capsys, "diagnose", OP_RUNNING, "--traces", str(traces_file),
                       "--now", NOW, "--format", "json")
    assert code == 0 and json.loads(out)["verdict"] == "stuck"
    code, out, _ = run(capsys, "diagnose", OP_RUNNING, "--traces", str(traces_file),
                       "--now", str(T0 // S + 70), "--format", "json")
    assert code == 0 and json.loads(out)["verdict"] != "stuck"


def test_not_found_exits_3_and_prints_the_not_found_diagnosis(capsys, traces_file):
    code, out, err = run(capsys, "diagnose", "op_missing", "--traces", str(traces_file),
                         "--format", "json")
    assert code == 3
    assert err.startswith("opdiag: ") and "op_missing" in err and len(err.splitlines()) == 1
    data = json.loads(out)
    assert data["verdict"] == "not_found"
    code, out, err = run(capsys, "diagnose", "op_missing", "--traces", str(traces_file))
    assert code == 3 and out == ""


def test_missing_trace_file_exits_2_naming_it(capsys, tmp_path):
    missing = tmp_path / "nope.json"
    code, _, err = run(capsys, "diagnose", OP_OK, "--traces", str(missing))
    assert code == 2
    assert str(missing) in err and "Traceback" not in err


def test_unreadable_trace_file_exits_2_naming_it(capsys, tmp_path):
    bad = tmp_path / "garbage.json"
    bad.write_text("this is { not json")
    code, _, err = run(capsys, "diagnose", OP_OK, "--traces", str(bad))
    assert code == 2
    assert "garbage.json" in err and "Traceback" not in err


def test_bad_file_in_a_directory_is_skipped_with_a_warning(capsys, tmp_path, traces_file):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.json").write_text(traces_file.read_text())
    (corpus / "broken.json").write_text("{{{{")
    code, out, err = run(capsys, "diagnose", OP_OK, "--traces", str(corpus), "--format", "json")
    assert code == 0
    assert json.loads(out)["operation_id"] == OP_OK
    assert "warning" in err and "broken.json" in err


def test_no_source_exits_2(capsys):
    code, _, err = run(capsys, "diagnose", OP_OK)
    assert code == 2
    assert "no trace source: pass --traces or --jaeger-url, or set JAEGER_URL" in err


def test_jaeger_unreachable_exits_4(capsys):
    code, _, err = run(capsys, "diagnose", OP_OK, "--jaeger-url", "http://127.0.0.1:9")
    assert code == 4
    assert err.startswith("opdiag: ") and "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [[], ["diagnose"], ["diagnose", "x", "--format", "yaml"], ["frobnicate"],
     ["operations", "--format", "markdown"], ["dashboards"]],
)
def test_usage_errors_exit_2(capsys, argv):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert "opdiag: " in err and "usage:" in err


def test_help_exits_0(capsys):
    code, out, _ = run(capsys, "diagnose", "--help")
    assert code == 0 and "--traces" in out and "--now" in out


def test_operations_table_lists_every_operation(capsys, traces_file):
    code, out, _ = run(capsys, "operations", "--traces", str(traces_file), "--now", NOW)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:6] == ["TIME", "ID", "TYPE", "STATUS", "VERDICT", "DURATION"]
    body = "\n".join(lines[1:])
    assert len(lines) == 4
    assert OP_OK in body and OP_RUNNING in body and DISPATCH_TID in body
    assert lines[1].split()[1] == DISPATCH_TID  # newest first


def test_operations_json_rows(capsys, traces_file):
    code, out, _ = run(capsys, "operations", "--traces", str(traces_file), "--now", NOW,
                       "--format", "json")
    assert code == 0
    rows = json.loads(out)
    verdicts = {r["operation_id"]: r["verdict"] for r in rows}
    assert verdicts == {OP_OK: "healthy", OP_RUNNING: "stuck", DISPATCH_TID: "no_workers"}
    assert {"time", "operation_type", "status", "duration_ms", "summary"} <= set(rows[0])


def test_operations_time_window(capsys, traces_file):
    code, out, _ = run(capsys, "operations", "--traces", str(traces_file), "--now", NOW,
                       "--from", str(T0 // S + 100), "--to", NOW, "--format", "json")
    assert code == 0
    assert [r["operation_id"] for r in json.loads(out)] == [DISPATCH_TID]
    code, _, err = run(capsys, "operations", "--traces", str(traces_file), "--from", NOW,
                       "--to", str(T0 // S))
    assert code == 2 and "--to" in err


def test_serve_uses_the_demo_without_a_source(capsys, monkeypatch):
    import opdiag.api.server as server

    seen = {}
    monkeypatch.setattr(server, "serve", lambda settings: seen.setdefault("s", settings) and 0)
    code, _, _ = run(capsys, "serve", "--port", "9999", "--host", "0.0.0.0")
    assert code == 0
    settings = seen["s"]
    assert settings.use_demo and settings.server.port == 9999 and settings.server.host == "0.0.0.0"


def test_serve_with_traces_is_not_the_demo(capsys, monkeypatch, traces_file):
    import opdiag.api.server as server

    seen = {}
    monkeypatch.setattr(server, "serve", lambda settings: seen.setdefault("s", settings) and 0)
    assert run(capsys, "serve", "--traces", str(traces_file))[0] == 0
    assert not seen["s"].use_demo and seen["s"].trace_paths == [traces_file]


def test_dashboards_generate_passes_its_flags(capsys, monkeypatch, tmp_path):
    import opdiag_dashboards.cli as dash

    seen = {}

    def fake(out_dir, check, settings, json_datasource="infinity"):
        seen.update(out_dir=out_dir, check=check, ds=json_datasource)
        return 1

    monkeypatch.setattr(dash, "generate", fake)
    code, _, _ = run(capsys, "dashboards", "generate", "--out", str(tmp_path), "--check",
                     "--json-datasource", "simpod")
    assert code == 1
    assert seen == {"out_dir": tmp_path, "check": True, "ds": "simpod"}


def test_unexpected_error_is_one_line_exit_1(capsys, monkeypatch, traces_file):
    def boom(*_args):
        raise RuntimeError("kaboom\nsecond line")

    monkeypatch.setattr(commands, "run_diagnose", boom)
    code, _, err = run(capsys, "diagnose", OP_OK, "--traces", str(traces_file))
    assert code == 1
    assert err == "opdiag: internal error: RuntimeError: kaboom\n"


def test_console_script_subprocess(traces_file):
    script = Path(sys.executable).parent / "opdiag"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "opdiag.cli.main"]
    env = {k: v for k, v in os.environ.items() if k not in ("JAEGER_URL", "OPDIAG_TRACES")}
    proc = subprocess.run(
        [*cmd, "diagnose", DISPATCH_TID, "--traces", str(traces_file), "--now", NOW,
         "--format", "json"],
        capture_output=True, text=True, env=env, cwd=REPO, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["verdict"] == "no_workers"
    proc = subprocess.run([*cmd, "diagnose", "op_missing", "--traces", str(traces_file)],
                          capture_output=True, text=True, env=env, cwd=REPO, check=False)
    assert proc.returncode == 3
    assert proc.stderr.startswith("opdiag: ") and "Traceback" not in proc.stderr


def test_collector_is_restored_after_a_one_shot_command(capsys, traces_file):
    import gc

    assert gc.isenabled()
    run(capsys, "diagnose", OP_OK, "--traces", str(traces_file))
    assert gc.isenabled()


def test_an_empty_traces_path_is_bad_usage(capsys, traces_file):
    """``--traces "$UNSET"`` is ``--traces ''``: Path("") is the working directory, which
    was read whole, recursively."""
    code, out, err = run(capsys, "operations", "--traces", "")
    assert code == 2 and out == ""
    assert "--traces: an empty path" in err


def test_a_refused_write_is_exit_2_naming_it(capsys, tmp_path):
    a_file = tmp_path / "not-a-directory"
    a_file.write_text("x")
    code, _, err = run(capsys, "dashboards", "generate", "--out", str(a_file))
    assert code == 2
    assert "Not a directory" in err and "internal error" not in err


def test_a_full_disk_on_stdout_is_exit_2(traces_file):
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "opdiag.cli.main", "operations", "--traces", str(traces_file)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    assert "No space left on device" in done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr


def test_serve_without_any_source_is_bad_usage_naming_the_way_out(monkeypatch, tmp_path):
    monkeypatch.setenv("OPDIAG_DEMO_TRACES", str(tmp_path / "nowhere"))
    from opdiag.api.server import build_server
    from opdiag.errors import InputError
    from opdiag.settings import Settings

    with pytest.raises(InputError) as info:
        build_server(Settings(trace_paths=[]))
    assert info.value.exit_code == 2
    assert "--traces or --jaeger-url" in info.value.message and "nowhere" in info.value.message


def test_an_install_without_the_checkout_serves_the_demo_corpus_it_carries(
    monkeypatch, tmp_path
):
    """``pip install .`` puts the corpus under ``<prefix>/share/opdiag/demo-traces``
    (pyproject's data-files): every file of demo/traces is matched by those globs."""
    import tomllib

    from opdiag import settings as settings_module

    root = Path(__file__).resolve().parents[1]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "data-files"
    ]["share/opdiag/demo-traces"]
    carried = {p for g in globs for p in root.glob(g)}
    assert carried == set((root / "demo" / "traces").iterdir())
    monkeypatch.delenv("OPDIAG_DEMO_TRACES", raising=False)
    installed = tmp_path / "share" / "opdiag" / "demo-traces"
    installed.mkdir(parents=True)
    monkeypatch.setattr(settings_module.sys, "prefix", str(tmp_path))
    assert settings_module.default_demo_traces() == root / "demo" / "traces"  # a checkout
    monkeypatch.setattr(settings_module, "REPO_ROOT", tmp_path / "site-packages")
    assert settings_module.default_demo_traces() == installed


def test_an_empty_now_is_bad_usage(capsys, traces_file):
    """``--now "$WHEN"`` with WHEN unset judged by the wall clock without a word."""
    code, _, err = run(capsys, "operations", "--traces", str(traces_file), "--now", "")
    assert code == 2 and "--now: empty time" in err


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OPDIAG_STUCK_AFTER_S", "-5"),
        ("OPDIAG_STUCK_AFTER_S", "0"),
    ],
)
def test_thresholds_that_make_no_sense_are_refused(
    capsys, monkeypatch, traces_file, variable, value
):
    monkeypatch.setenv(variable, value)
    code, _, err = run(capsys, "operations", "--traces", str(traces_file))
    assert code == 2 and "diagnosis.stuck_after_s: should be greater than 0" in err


def test_a_named_symlink_that_leads_nowhere_says_so(capsys, tmp_path):
    loop = tmp_path / "loop.json"
    loop.symlink_to("loop.json")
    broken = tmp_path / "broken.json"
    broken.symlink_to("gone/traces.json")
    code, _, err = run(capsys, "operations", "--traces", str(loop))
    assert code == 2 and "a symbolic link that loops back on itself" in err
    code, _, err = run(capsys, "operations", "--traces", str(broken))
    assert code == 2 and "a broken symbolic link (to 'gone/traces.json'" in err
    code, _, err = run(capsys, "operations", "--traces", str(tmp_path / "absent.json"))
    assert code == 2 and "no such file or directory" in err
