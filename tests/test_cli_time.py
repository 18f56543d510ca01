"""Time parsing at the edges: ``--now`` and the HTTP time parameters."""

from __future__ import annotations

import pytest
from opdiag.cli.main import main
from opdiag.errors import InputError
from opdiag.timeutil import (
    format_rfc3339,
    parse_duration_us,
    parse_http_time,
    parse_now,
    parse_rfc3339,
)

T = 1_763_806_500  # 2025-11-22T10:15:00Z
NOW_US = T * 1_000_000


@pytest.mark.parametrize(
    "text",
    ["2025-11-22T10:15:00Z", "2025-11-22T10:15:00+00:00", "2025-11-22T11:15:00+01:00",
     "2025-11-22 10:15:00Z", "2025-11-22T10:15:00", str(T), f"{T}.0"],
)
def test_now_accepts_rfc3339_and_epoch_seconds(text):
    assert parse_now(text) == NOW_US


def test_now_keeps_fractions():
    assert parse_now("2025-11-22T10:15:00.25Z") == NOW_US + 250_000
    assert parse_now(f"{T}.5") == NOW_US + 500_000


@pytest.mark.parametrize("text", ["yesterday", "", "2025-13-01T00:00:00Z", "99999999999999"])
def test_bad_now_is_an_input_error_naming_the_flag(text):
    with pytest.raises(InputError) as info:
        parse_now(text)
    assert "--now" in info.value.message


def test_http_times():
    assert parse_http_time(str(T * 1000), name="from", now_us=0) == NOW_US  # epoch ms
    assert parse_http_time("now", name="to", now_us=NOW_US) == NOW_US
    assert parse_http_time("now-6h", name="from", now_us=NOW_US) == NOW_US - 6 * 3600 * 10**6
    assert parse_http_time("now-15m", name="from", now_us=NOW_US) == NOW_US - 15 * 60 * 10**6
    assert parse_http_time("2025-11-22T10:15:00Z", name="from", now_us=0) == NOW_US
    with pytest.raises(InputError) as info:
        parse_http_time("now-6x", name="from", now_us=NOW_US)
    assert info.value.field == "from"


def test_durations():
    assert parse_duration_us("5m") == 300 * 10**6
    assert parse_duration_us("1500") == 1_500_000  # ms, as Grafana's $__interval_ms
    for bad in ("0", "-5m", "5 parsecs"):
        with pytest.raises(InputError):
            parse_duration_us(bad)


def test_round_trip_format():
    assert format_rfc3339(NOW_US) == "2025-11-22T10:15:00Z"
    assert parse_rfc3339(format_rfc3339(NOW_US)) == NOW_US


def test_cli_bad_now_exits_2_with_one_line(capsys, tmp_path):
    trace_file = tmp_path / "t.json"
    trace_file.write_text('{"data": []}')
    code = main(["diagnose", "op_x", "--traces", str(trace_file), "--now", "tomorrow"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("opdiag: --now: cannot parse 'tomorrow'")
    assert "Traceback" not in err


def test_grafana_rounding():
    day = 86400 * 10**6
    assert parse_http_time("now/d", name="from", now_us=NOW_US) == NOW_US - NOW_US % day
    assert parse_http_time("now-1d/d", name="from", now_us=NOW_US) == NOW_US - NOW_US % day - day
    # 2025-11-22 is a Saturday: the week started on Monday 2025-11-17.
    assert format_rfc3339(parse_http_time("now/w", name="from", now_us=NOW_US)) == (
        "2025-11-17T00:00:00Z"
    )
    assert format_rfc3339(parse_http_time("now/M", name="from", now_us=NOW_US)) == (
        "2025-11-01T00:00:00Z"
    )
    assert format_rfc3339(parse_http_time("now/y", name="from", now_us=NOW_US)) == (
        "2025-01-01T00:00:00Z"
    )


def test_grafana_rounding_ends_a_range_at_the_end_of_the_unit():
    """Grafana's "Today" is from=now/d&to=now/d: the end of a range rounds to the end of
    its unit (it rounded down too, and the API refused the empty range)."""
    day = 86400 * 10**6
    start = parse_http_time("now/d", name="from", now_us=NOW_US)
    assert parse_http_time("now/d", name="to", now_us=NOW_US, end=True) == start + day
    for unit, want in [("w", "2025-11-24T00:00:00Z"), ("M", "2025-12-01T00:00:00Z"),
                       ("y", "2026-01-01T00:00:00Z")]:
        got = parse_http_time(f"now/{unit}", name="to", now_us=NOW_US, end=True)
        assert format_rfc3339(got) == want, unit
    december = NOW_US + 20 * day  # 2025-12-12: the month after is in the next year
    assert format_rfc3339(parse_http_time("now/M", name="to", now_us=december, end=True)) == (
        "2026-01-01T00:00:00Z"
    )


def test_the_api_takes_grafanas_today():
    from opdiag.api.app import create_app
    from opdiag.settings import Settings, default_demo_traces

    settings = Settings.model_validate({"trace_paths": [str(default_demo_traces())]})
    with create_app(settings).test_client() as client:
        for unit in "dwMy":
            answer = client.get(f"/api/v1/operations?from=now/{unit}&to=now/{unit}")
            assert answer.status_code == 200, (unit, answer.get_json())


def test_the_hint_of_a_bad_time_says_what_numbers_mean_where_it_is_read():
    """The CLI reads a plain number as epoch seconds, the HTTP API as epoch ms: an invalid
    date's hint must not send an API caller to 1970 by following it."""
    import pytest
    from opdiag.errors import InputError
    from opdiag.timeutil import parse_now

    with pytest.raises(InputError, match="epoch ms") as api:
        parse_http_time("2026-02-30T00:00:00Z", name="from", now_us=NOW_US)
    assert "epoch seconds" not in api.value.message
    with pytest.raises(InputError, match="epoch seconds"):
        parse_now("2026-02-30T00:00:00Z")


def test_a_body_that_is_not_utf8_is_named_so():
    import pytest
    from opdiag.api.jsonbody import parse_json
    from opdiag.errors import InputError

    with pytest.raises(InputError, match="not UTF-8 text"):
        parse_json(b'{"a": "\xff"}', "body")
    with pytest.raises(InputError, match="lone surrogate"):
        parse_json(b'{"a": "\\ud800"}', "body")


def test_an_assistants_time_is_what_the_cli_and_the_api_take_seconds_told_from_ms():
    """MCP's times: the CLI's forms (RFC 3339, epoch seconds) mean what they mean there, and
    epoch ms, a JSON number or ``now-6h`` too; below ``EPOCH_MS_FROM`` a number is seconds."""
    from opdiag.timeutil import EPOCH_MS_FROM, parse_any_time

    for value in (str(T), T, T * 1000, str(T * 1000), f"{T}.0", float(T), "2025-11-22T10:15:00",
                  "2025-11-22T11:15:00+01:00", "now"):
        assert parse_any_time(value, name="now", now_us=NOW_US) == NOW_US, value
    assert parse_any_time("now-1h", name="since", now_us=NOW_US) == NOW_US - 3600 * 10**6
    for value in (EPOCH_MS_FROM - 1, EPOCH_MS_FROM, 0, -T, T * 10**6, float("inf"), "1970-01-21"):
        with pytest.raises(InputError) as info:
            parse_any_time(value, name="until", now_us=NOW_US)
        assert info.value.field == "until" and info.value.message.startswith("until: ")
