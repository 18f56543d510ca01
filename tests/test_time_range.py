"""One rule for the time range a listing covers, whatever the way in (``timeutil.resolve_range``):
the CLI, the assistant (MCP) and the HTTP API each read times in their own dialect, and for the
same range they list the same operations. Before, each resolved the range its own way: the
CLI let ``--from`` equal ``--to`` and rounded ``--to now/d`` down (Grafana's "Today" listed
nothing there while the API listed the day)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opdiag.api.app import create_app
from opdiag.cli.main import main
from opdiag.errors import InputError
from opdiag.mcp_server import OpdiagTools
from opdiag.service import DiagnosisService
from opdiag.settings import Settings
from opdiag.sources.files import FileSource
from opdiag.timeutil import parse_any_time, parse_rfc3339, resolve_range

DEMO = Path(__file__).resolve().parents[1] / "demo" / "traces"
NOW = "2026-11-24T08:30:00Z"  # ten minutes after the demo's last start but one
NOW_US = parse_rfc3339(NOW)
MIN_US = 60_000_000


def _no_clock() -> int:
    raise AssertionError("the clock was read although no relative time needed it")


def test_neither_end_named_is_the_whole_range_without_reading_the_clock():
    for raw in (None, ""):
        got = resolve_range(raw, raw, clock=_no_clock, span_us=MIN_US, parse=parse_any_time,
                            whole=lambda: (5, 9))
        assert got == (5, 9)


def test_without_a_whole_range_the_default_is_the_span_up_to_and_including_now():
    got = resolve_range(None, None, clock=lambda: NOW_US, span_us=MIN_US, parse=parse_any_time)
    assert got == (NOW_US + 1 - MIN_US, NOW_US + 1)
    grafana = resolve_range(None, None, clock=lambda: NOW_US, span_us=MIN_US,
                            parse=parse_any_time, past_now_us=0)
    assert grafana == (NOW_US - MIN_US, NOW_US)


def test_one_end_named_places_the_other_one_span_away_or_at_now():
    only_to = resolve_range(None, "now-1h", clock=lambda: NOW_US, span_us=MIN_US,
                            parse=parse_any_time, whole=lambda: (0, 1))
    assert only_to == (NOW_US - 3600_000_000 - MIN_US, NOW_US - 3600_000_000)
    only_from = resolve_range("now-1h", None, clock=lambda: NOW_US, span_us=MIN_US,
                              parse=parse_any_time, whole=lambda: (0, 1))
    assert only_from == (NOW_US - 3600_000_000, NOW_US + 1)


def test_the_end_of_a_range_rounds_up_to_the_end_of_its_unit():
    day_us = 86_400_000_000
    start, end = resolve_range("now/d", "now/d", clock=lambda: NOW_US, span_us=MIN_US,
                               parse=parse_any_time)
    assert end - start == day_us and start <= NOW_US < end


@pytest.mark.parametrize("raw_from, raw_to", [("now-10m", "now-20m"), ("now-10m", "now-10m")])
def test_an_empty_or_reversed_range_is_refused_naming_the_start(raw_from, raw_to):
    with pytest.raises(InputError) as caught:
        resolve_range(raw_from, raw_to, clock=lambda: NOW_US, span_us=MIN_US,
                      parse=parse_any_time, names=("since", "until"))
    assert caught.value.field == "since"
    assert caught.value.message == "since: must be before 'until'"


def _cli(capsys: pytest.CaptureFixture[str], raw_from: str, raw_to: str) -> tuple[int, object]:
    code = main(["operations", "--traces", str(DEMO), "--from", raw_from, "--to", raw_to,
                 "--now", NOW, "--format", "json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if code == 0 else captured.err


def _mcp(raw_from: str, raw_to: str) -> object:
    settings = Settings()
    source = FileSource([str(DEMO)], settings.max_trace_file_bytes)
    tools = OpdiagTools(DiagnosisService(source, settings), settings, file_source=True)
    try:
        return tools.list_operations(since=raw_from, until=raw_to, now=NOW, limit=200)
    except InputError as exc:
        return exc


def _api(raw_from: str, raw_to: str) -> tuple[int, object]:
    settings = Settings.model_validate({"trace_paths": [str(DEMO)]})
    with create_app(settings).test_client() as client:
        answer = client.get("/api/v1/operations", query_string={
            "from": raw_from, "to": raw_to, "now": str(NOW_US // 1000)})
        return answer.status_code, answer.get_json()


def _keys(rows: object) -> set[str]:
    """The CLI's and the API's rows name an operation, or the trace of a request."""
    assert isinstance(rows, list)
    return {r["operation_id"] or r["trace_id"] for r in rows}


@pytest.mark.parametrize("raw_from, raw_to", [("now-20m", "now-10m"), ("now/d", "now/d")])
def test_every_way_in_lists_the_same_operations_for_the_same_range(capsys, raw_from, raw_to):
    code, cli_rows = _cli(capsys, raw_from, raw_to)
    assert code == 0, cli_rows
    mcp = _mcp(raw_from, raw_to)
    assert not isinstance(mcp, InputError), mcp.message
    status, api_rows = _api(raw_from, raw_to)
    assert status == 200, api_rows
    cli_ids = _keys(cli_rows)
    assert cli_ids, "the range holds operations of the demo"
    # the assistant's answer fits its budget: the rows cut are counted, not shown
    shown = {r["key"] for r in mcp["operations"]}
    assert mcp["total"] == len(cli_ids) and shown <= cli_ids
    assert len(shown) + mcp["omitted"] == len(cli_ids)
    assert _keys(api_rows) == cli_ids
    if raw_from == "now/d":  # Grafana's "Today": the whole recorded day
        _, everything = _cli(capsys, "now-7d", "now")
        assert cli_ids == _keys(everything)
    else:
        assert len(cli_ids) < len(_keys(_cli(capsys, "now-7d", "now")[1]))


def test_every_way_in_refuses_an_empty_range_naming_its_own_start(capsys):
    code, err = _cli(capsys, "now-10m", "now-10m")
    assert code == 2 and "--from: must be before '--to'" in err
    refused = _mcp("now-10m", "now-10m")
    assert isinstance(refused, InputError) and refused.field == "since"
    status, body = _api("now-10m", "now-10m")
    assert status == 400 and "from: must be before 'to'" in json.dumps(body)
