"""``ktrdr cancel`` and ``ktrdr status`` refused by KTRDR's backend, built from run1's one
cancel (``real_variants``) as KTRDR's code at the recorded commit says they look.

api/endpoints/operations.py: DELETE /operations/{id} answers 404 "Operation not found: …" for
an id it does not know, and 400 "Operation … cannot be cancelled (status: completed)" for an
operation that has already finished, before it asks any worker to stop; GET /operations/{id}
answers 404 for an unknown id. FastAPI marks none of them as an error on the backend's span;
the CLI's httpx client span is ERROR and cli/commands/cancel.py and status.py turn the failure
into ``typer.Exit(1)``: the command span is ERROR "Exit: 1". The messages are in no span."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import real_variants as rv
from conftest import REAL_KTRDR

TRACES = REAL_KTRDR / "run1" / "traces"
# run1 case 14: `ktrdr cancel` of a running backtest (accepted, 200)
CANCEL_TRACE = "235679e60db1f93088a6002cdc4a1d57"
CANCELLED = "op_backtesting_20261204_160009_05b7bec2"
# run1 case 2: a backtest that completed at 15:44:03
DONE = "op_backtesting_20261204_154358_5d955ea3"
UNKNOWN = "op_training_20261204_999999_deadbeef"
NOW = "2026-12-04T16:10:00Z"

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_source_env")]



def _refused(
    recording: rv.Recording, target: str, at: str, code: int, command: str, method: str, salt: int
) -> tuple[rv.Recording, str]:
    """``ktrdr <command> <target>`` at ``at``, answered ``code`` before the backend did
    anything else: run1's cancel trace cut to the CLI's spans and the backend's server span
    (with its send/receive), renamed to ``command`` and ``method``. Its trace id too."""
    shift = rv.ns(at) - rv.ns("2026-12-04T16:00:22Z")
    copied = rv.copy_operation(recording, {CANCEL_TRACE}, {CANCELLED: target}, shift, salt)
    route = "DELETE /api/v1/operations/{operation_id}"

    def kept(service: str, span: dict[str, Any]) -> bool:
        return service == "ktrdr-cli" or (
            service == "ktrdr-api" and span["name"].startswith(route)
        )

    copied = rv.without(copied, lambda svc, s: not kept(svc, s))

    def answered(span: dict[str, Any]) -> None:
        start = int(span["startTimeUnixNano"])
        name = span["name"]
        if name == "cli.cancel":
            span["name"] = f"cli.{command}"
            for a in span["attributes"]:
                if a["key"] == "cli.command":
                    a["value"] = {"stringValue": command}
            span["status"] = {"code": 2, "message": "Exit: 1"}
            event = {
                "timeUnixNano": str(start + 250_000_000),
                "name": "exception",
                "attributes": [
                    {"key": "exception.type", "value": {"stringValue": "click.exceptions.Exit"}},
                    {"key": "exception.message", "value": {"stringValue": "1"}},
                    {"key": "exception.escaped", "value": {"stringValue": "False"}},
                ],
            }
            span["events"] = [event, copy.deepcopy(event)]
            span["endTimeUnixNano"] = str(start + 250_000_000)
        elif name == "DELETE":
            span["name"] = method
            span["status"] = {"code": 2}
            span["endTimeUnixNano"] = str(start + 30_000_000)
        else:
            span["name"] = name.replace("DELETE", method)
            span["endTimeUnixNano"] = str(start + 12_000_000)
        for a in span.get("attributes", []):
            if a["key"] == "http.status_code":
                a["value"] = {"intValue": code}
            if a["key"] == "http.method":
                a["value"] = {"stringValue": method}

    copied = rv.edited(copied, lambda _svc, _s: True, answered)
    trace_id = next(s["traceId"] for _, _, s in rv.spans(copied))
    return recording + copied, trace_id


def _diagnose(recording: rv.Recording, ident: str, scratch: Path) -> dict[str, Any]:
    return rv.diagnosed(recording, ident, NOW, scratch)


def test_cancel_of_a_finished_operation_is_invalid_input_naming_it(tmp_path: Path) -> None:
    """``ktrdr cancel`` of the backtest that completed a minute before: 400. Before: a row of
    its own 'failed: error in DELETE on ktrdr-cli', root cause the CLI's DELETE, 'Read the
    error origin'. Right: invalid input, the operation named, and why (it had finished)."""
    changed, trace_id = _refused(
        rv.load(TRACES), DONE, "2026-12-04T15:45:10Z", 400, "cancel", "DELETE", 7
    )
    d = _diagnose(changed, trace_id, tmp_path)
    assert d["verdict"] == "invalid_input", d["summary"]
    assert DONE in d["summary"] and "had already finished" in d["summary"], d["summary"]
    assert "cancel" in d["summary"] and "400" in d["summary"], d["summary"]
    assert d["findings"][0]["rule_id"] == "cancel-refused-finished"
    assert f"ktrdr status {DONE}" in d["solution"]["commands"]
    assert "error-spans" not in {f["rule_id"] for f in d["findings"]}
    assert d["root_cause"]["evidence"]["route.param"] == DONE
    # the operation itself is not touched by the refused cancel
    done = _diagnose(changed, DONE, tmp_path / "done")
    assert (done["verdict"], done["status"]) == ("healthy", "completed"), done["summary"]


@pytest.mark.parametrize(
    ("command", "method"), [("status", "GET"), ("cancel", "DELETE")]
)
def test_a_command_about_an_unknown_operation_names_the_id(
    command: str, method: str, tmp_path: Path
) -> None:
    """``ktrdr status`` / ``ktrdr cancel`` of an id KTRDR does not know: 404. Before:
    'failed: error in GET on ktrdr-cli'. Right: invalid input naming the id that does not
    exist, with how to find the right one."""
    changed, trace_id = _refused(
        rv.load(TRACES), UNKNOWN, "2026-12-04T15:58:00Z", 404, command, method, 9
    )
    d = _diagnose(changed, trace_id, tmp_path)
    assert d["verdict"] == "invalid_input", d["summary"]
    assert f"no operation {UNKNOWN} exists" in d["summary"], d["summary"]
    assert f"cli.{command}" in d["summary"] and "404" in d["summary"], d["summary"]
    assert d["findings"][0]["rule_id"] == "operation-id-unknown"
    assert "ktrdr ops" in d["solution"]["commands"]


def test_the_listing_shows_refused_commands_as_invalid_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The rows of the refused commands say invalid_input, not failed; the completed
    backtest and the accepted cancel of run1 keep their verdicts."""
    from opdiag.cli.main import main

    changed, done_trace = _refused(
        rv.load(TRACES), DONE, "2026-12-04T15:45:10Z", 400, "cancel", "DELETE", 7
    )
    changed, unknown_trace = _refused(
        changed, UNKNOWN, "2026-12-04T15:58:00Z", 404, "status", "GET", 9
    )
    traces = rv.write(changed, tmp_path / "traces")
    assert main(["operations", "--traces", str(traces), "--now", NOW, "--format", "json"]) == 0
    rows = {r["operation_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[done_trace]["verdict"] == "invalid_input", rows[done_trace]["summary"]
    assert rows[unknown_trace]["verdict"] == "invalid_input", rows[unknown_trace]["summary"]
    assert rows[DONE]["verdict"] == "healthy"
    assert rows[CANCELLED]["verdict"] == "cancelled"
    assert not any("error in DELETE" in r["summary"] or "error in GET" in r["summary"]
                   for r in rows.values())


@pytest.mark.parametrize(
    ("changed", "said"),
    [
        ({"mode": "recent"}, "invalid input: ktrdr data load refused --mode recent before "
         "sending any request (tail, backfill or full)"),
        ({"timeframe": "1H"}, "invalid input: ktrdr data load refused the timeframe '1H' "
         "before sending any request"),
        ({"symbol": "AAPL US"}, "invalid input: ktrdr data load refused the symbol 'AAPL US' "
         "before sending any request"),
        # arguments it accepts, then an exception before the first request (sys.exit(1) too)
        ({"start_date": "2024-13-45"}, "invalid input: cli.data_load stopped before it sent any"),
    ],
)
def test_a_data_load_the_cli_refused_before_any_request_is_invalid_input(
    changed: dict[str, str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ktrdr data load AAPL --mode recent`: KTRDR's CLI refuses the mode and calls
    sys.exit(1) before any request (cli/data_commands.py load_data), so its trace is the one
    cli.data_load span, its status unset (its telemetry sets OK on return, ERROR on an
    Exception; SystemExit is neither). Built from run1's own `ktrdr data load AAPL`. Before,
    the trace was in no row, and diagnosed by its id it read 'healthy: no errors'. The CLI
    checks the symbol, the timeframe and the mode in that order: the one it refused is named
    (the summary said 'the reason is on its console' for all of them before)."""
    from opdiag.cli.main import main

    recording = rv.load(TRACES)
    svc, load = next(
        (svc, span) for _, svc, span in rv.spans(recording)
        if span["name"] == "cli.data_load" and '"symbol": "AAPL"' in str(rv.attr(span, "cli.args"))
    )
    refused = copy.deepcopy(load)
    refused["traceId"], refused["spanId"] = "0e686596bc3181dde575fc6a8dd4bdbc", "0e686596bc3181dd"
    refused.pop("parentSpanId", None)
    refused["status"] = {}  # unset: the span ended by SystemExit
    start = rv.ns("2026-12-04T16:08:30Z")
    refused["startTimeUnixNano"], refused["endTimeUnixNano"] = str(start), str(start + 90_000_000)
    args = json.loads(rv.attr(load, "cli.args"))
    args["kwargs"].update(changed)
    refused["attributes"] = [a for a in refused["attributes"] if a["key"] != "cli.args"] + [
        {"key": "cli.args", "value": {"stringValue": json.dumps(args)}}
    ]
    traces = rv.write(rv.added(recording, svc, [refused]), tmp_path / "traces")
    assert main(["operations", "--traces", str(traces), "--now", NOW, "--format", "json"]) == 0
    rows = {r["operation_id"]: r for r in json.loads(capsys.readouterr().out)}
    row = rows[refused["traceId"]]
    assert (row["operation_type"], row["status"], row["verdict"]) == (
        "data_load", "rejected", "invalid_input"
    ), row["summary"]
    assert row["summary"].startswith(said), row["summary"]
    assert main(["diagnose", refused["traceId"], "--traces", str(traces), "--now", NOW,
                 "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    value = next(iter(changed.values()))
    assert value in "\n".join(d["solution"]["steps"]), d["solution"]["steps"]
    # run1's own loads (their CLI spans returned OK) keep their verdicts
    assert rows["op_data_load_20261204_154455_734c9af6"]["verdict"] == "service_unreachable"
