"""The OpenAPI document declares the grammar the server parses (issue 11, item 12): for times
(``from``, ``to``, ``now``) and ids, a value the document allows is taken by the server and a
value it refuses is a 400, so schema-driven clients and fuzzers agree with the server. The
check validates each candidate against the published schema with ``jsonschema`` (query values
deserialised as OpenAPI does: digits for an integer) and sends it to the app."""

from __future__ import annotations

import random
import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pytest
from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.validators import extend

pytest_plugins = ("api_fixtures",)

_FORMATS = FormatChecker()


@_FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    """RFC 3339 date-time: a real calendar date and time with a zone (the test's own model,
    as jsonschema checks it only with an optional package)."""
    if not isinstance(value, str):
        return True
    match = re.fullmatch(
        r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})",
        value,
    )
    if not match:
        return False
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    datetime(year, month, day, hour, minute, second)  # raises for Feb 30, hour 25 …
    return True


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    """``pattern`` as JSON Schema means it (ECMA-262): ``$`` is the very end, not also the
    place before a final newline as in Python's ``re``."""
    if not isinstance(instance, str):
        return
    match = re.search(pattern, instance)
    if match is None or (pattern.endswith("$") and match.end() != len(instance)):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = extend(Draft202012Validator, {"pattern": _ecma_pattern})


def _parameters(doc: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p["schema"] for p in doc["paths"][path]["get"]["parameters"]}


def _schema_allows(schema: dict[str, Any], raw: str) -> bool:
    """A query or path value against its schema; an integer alternative takes digits."""
    alternatives = schema.get("anyOf", [schema])
    for alternative in alternatives:
        value: Any = raw
        if alternative.get("type") == "integer":
            if not re.fullmatch(r"[0-9]+", raw):
                continue
            value = int(raw)
        if _Validator(alternative, format_checker=_FORMATS).is_valid(value):
            return True
    return False


TIMES_VALID = [
    "0", "1764000000000", "253402300799000", "now", "now-6h", "now-1d/d", "now/M", "now+5m",
    "now-999w", "now-99999h", "now-1.5h", "now-999999999999ms", "2025-11-22T10:15:00Z",
    "2025-11-22t10:15:00.123+01:00", "1970-01-01T00:00:00Z", "2024-02-29T12:00:00-05:00",
]
TIMES_INVALID = [
    "", " now", "now ", "now-6x", "now-60y", "now-1000w", "now-100000h", "now-99999999999w/M",
    "-5", "+5", "1.5", "253402300799001", "9999999999999999", "2025-11-22 10:15:00Z",
    "2025-11-22T10:15:00", "2025-11-22", "1969-12-31T23:59:59Z", "2025-13-01T00:00:00Z",
    "2025-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "now-\u0663h", "\u0661\u0662", "yesterday",
    "NaN", "1e3", "now-1.2345h", "now\n", "12\n",
]


def _fuzzed(seed: int, count: int) -> list[str]:
    """Strings near the grammar: pieces of valid values shuffled and mutated."""
    rng = random.Random(seed)
    pieces = ["now", "-", "+", "/", "d", "h", "w", "M", "ms", "y", ".", "5", "12", "999",
              "2025-11-22", "T", "10:15:00", "Z", "+01:00", " ", "\u0663", "0", "1764000000000"]
    out = []
    for _ in range(count):
        out.append("".join(rng.choice(pieces) for _ in range(rng.randint(1, 5))))
    return out


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    from opdiag.api.openapi import openapi_document

    return openapi_document()


def test_every_time_parameter_publishes_the_same_grammar(doc):
    schemas = []
    for path in doc["paths"]:
        for name, schema in _parameters(doc, path).items():
            if name in ("from", "to", "now"):
                schemas.append(schema)
    assert len(schemas) >= 10
    assert all(schema == schemas[0] for schema in schemas)
    assert schemas[0]["anyOf"]  # not a free string


def test_the_catalogue_is_classified_as_meant(doc):
    schema = _parameters(doc, "/api/v1/operations/{ident}")["now"]
    assert [v for v in TIMES_VALID if not _schema_allows(schema, v)] == []
    assert [v for v in TIMES_INVALID if _schema_allows(schema, v)] == []


@pytest.mark.parametrize("raw", TIMES_VALID + TIMES_INVALID + _fuzzed(11, 300))
def test_server_and_document_agree_on_times(client, doc, raw):
    from api_support import FAILED_ID

    schema = _parameters(doc, "/api/v1/operations/{ident}")["now"]
    response = client.get(f"/api/v1/operations/{FAILED_ID}", query_string={"now": raw})
    if raw == "":
        assert response.status_code == 200  # an empty value means "not given"
        return
    assert (response.status_code != 400) == _schema_allows(schema, raw), response.get_json()
    assert response.status_code in (200, 400)


IDS_VALID = ["a", "op_training_20261124_102005_82abc753", "a b", "a/b", "100%", "é", "x" * 512,
             "0bf3eca74fe13d9556d53be6be9acca3", "<script>"]
IDS_INVALID = [" a", "a ", "a\tb", "\x7f", "a\x85", "x" * 513, "\n", "a\n"]


@pytest.mark.parametrize("raw", IDS_VALID + IDS_INVALID)
def test_server_and_document_agree_on_ids(client, doc, raw):
    schema = _parameters(doc, "/api/v1/operations/{ident}")["ident"]
    response = client.get("/api/v1/operations/" + quote(raw, safe=""))
    allowed = _schema_allows(schema, raw)
    assert allowed == (raw in IDS_VALID)
    assert (response.status_code != 400) == allowed, response.get_json()
    assert response.status_code in (200, 400, 404)
