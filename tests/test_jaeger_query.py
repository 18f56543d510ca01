"""Pure helpers of the Jaeger client: parameters per dialect, escaping, ids, versions."""

from __future__ import annotations

import json
import re

import pytest
from opdiag.devtools.replay_jaeger import index_html
from opdiag.model import looks_like_trace_id
from opdiag.sources.jaeger_query import (
    V3Dialect,
    dialect_for_version,
    dialect_from_error,
    escape_tag_value,
    legacy_search_params,
    parse_version,
    rfc3339,
    v3_search_params,
)


@pytest.mark.parametrize(
    ("ident", "expected"),
    [
        ("1234abcd5678ef90", True),
        ("00000000000000001234ABCD5678EF90", True),
        ("a1" * 16, True),
        ("op_backtesting_20251124_160000_1a2b", False),
        ("1234abcd5678ef9", False),  # 15 chars: too short to be taken for a trace id
        ("a1" * 17, False),
        ("deadbeefdeadbeeg", False),
    ],
)
def test_trace_id_recognition(ident: str, expected: bool) -> None:
    assert looks_like_trace_id(ident) is expected


@pytest.mark.parametrize("storage", ["memory", "badger", "cassandra"])
def test_exact_storages_keep_values(storage: str) -> None:
    assert escape_tag_value("op.a*(b)", storage) == "op.a*(b)"


@pytest.mark.parametrize("storage", ["elasticsearch", "OpenSearch"])
@pytest.mark.parametrize(
    "value",
    ["op_regex.1", "a.b*c+d?e|f", "(x)[y]{z}", 'q"u\\o~t#e@s&<>', "^anchor$", "op_plain_1"],
)
def test_regex_storages_escape_every_metacharacter(storage: str, value: str) -> None:
    escaped = escape_tag_value(value, storage)
    # Matched as an anchored regex (Lucene regexp is anchored), the escaped form is literal.
    assert re.fullmatch(escaped, value)
    if value == "op_regex.1":
        assert not re.fullmatch(escaped, "op_regexX1")
    if value == "op_plain_1":
        assert escaped == value  # '_' is not a metacharacter


def test_rfc3339_is_utc_with_z_and_microseconds() -> None:
    assert rfc3339(1_764_000_000_000_001) == "2025-11-24T16:00:00.000001Z"


def test_v3_params_camel_case() -> None:
    params = v3_search_params(
        V3Dialect(camel=True),
        service="ktrdr-cli",
        start_us=1_764_000_000_000_000,
        end_us=1_764_000_060_000_000,
        depth=50,
        attributes={"operation.id": "op_1"},
    )
    assert params == {
        "query.serviceName": "ktrdr-cli",
        "query.startTimeMin": "2025-11-24T16:00:00.000000Z",
        "query.startTimeMax": "2025-11-24T16:01:00.000000Z",
        "query.searchDepth": "50",
        "query.rawTraces": "true",
        "query.attributes": '{"operation.id":"op_1"}',
    }
    assert json.loads(params["query.attributes"]) == {"operation.id": "op_1"}


def test_v3_params_snake_case() -> None:
    params = v3_search_params(
        V3Dialect(camel=False, attributes=False),
        service="s",
        start_us=0,
        end_us=1_000_000,
        depth=7,
    )
    assert params == {
        "query.service_name": "s",
        "query.start_time_min": "1970-01-01T00:00:00.000000Z",
        "query.start_time_max": "1970-01-01T00:00:01.000000Z",
        "query.num_traces": "7",
        "query.raw_traces": "true",  # adjusters rewrite the storage's traces in place
    }


def test_legacy_params_require_service_and_use_tag_pairs() -> None:
    params = legacy_search_params(
        service="w", start_us=1, end_us=2, limit=3, tags={"operation.id": "a:b"}
    )
    assert params == [
        ("service", "w"),
        ("start", "1"),
        ("end", "2"),
        ("limit", "3"),
        ("raw", "true"),
        ("tag", "operation.id:a:b"),
    ]


@pytest.mark.parametrize(
    ("version", "expected"),
    [("v2.20.0", (2, 20, 0)), ("v2.18.1", (2, 18, 1)), ("v1.76.0", (1, 76, 0))],
)
def test_version_from_index_page(version: str, expected: tuple[int, int, int]) -> None:
    assert parse_version(index_html(version).decode()) == expected


def test_version_absent_or_dev() -> None:
    assert parse_version("const JAEGER_VERSION = DEFAULT_VERSION;") is None
    page = 'const JAEGER_VERSION = {"gitCommit":"","gitVersion":"dev","buildDate":""};'
    assert parse_version(page) is None


def test_dialect_rules() -> None:
    assert dialect_for_version((2, 19, 0)) == V3Dialect(camel=True, attributes=True)
    assert dialect_for_version((2, 18, 9)) == V3Dialect(camel=False, attributes=False)
    assert dialect_for_version((1, 76, 0)).camel is False
    old = dialect_from_error("query.start_time_min and query.start_time_max are required")
    assert old == V3Dialect(camel=False, attributes=False)
    assert dialect_from_error("query.startTimeMin and query.startTimeMax are required").camel


def test_rfc3339_holds_times_to_the_bounds_it_can_write() -> None:
    assert rfc3339(-1) == "1970-01-01T00:00:00.000000Z"
    assert rfc3339(10**20) == "9999-12-31T23:59:59.999999Z"
    assert rfc3339(253_402_300_799_999_999) == "9999-12-31T23:59:59.999999Z"
