"""Infinity columns are derived from opdiag's row models (opdiag.api.schemas), never typed
twice: the generated targets hold exactly what the models say."""

from __future__ import annotations

import pytest
from opdiag.api.schemas import ROW_MODELS, Row
from opdiag.settings import Settings
from opdiag_dashboards.columns import column_type, kind_columns, model_columns
from opdiag_dashboards.render import render_dashboards
from opdiag_dashboards.targets import simpod_request
from pydantic import Field


def test_type_mapping_follows_the_model():
    cols = {c["selector"]: c["type"] for c in kind_columns("operations")}
    assert cols["time"] == "timestamp_epoch"  # epoch ms
    assert cols["duration_ms"] == "number"  # a duration, not a timestamp
    assert cols["finished"] == "boolean"
    assert cols["operation_id"] == "string"
    flow = {c["selector"]: c["type"] for c in kind_columns("flow")}
    assert flow["start_ms"] == "number" and flow["index"] == "number"


def test_every_model_field_has_a_column_type():
    for kind, model in ROW_MODELS.items():
        for name, field in model.model_fields.items():
            assert column_type(name, field) in {"string", "number", "boolean", "timestamp_epoch"}, (
                kind,
                name,
            )


def test_a_new_field_type_changes_the_column():
    class Changed(Row):
        time: int = Field(description="Bucket start, epoch ms")
        started: float = Field(description="When it began, epoch ms")
        count: str

    assert model_columns(Changed) == [
        {"selector": "time", "text": "time", "type": "timestamp_epoch"},
        {"selector": "started", "text": "started", "type": "timestamp_epoch"},
        {"selector": "count", "text": "count", "type": "string"},
    ]


def test_unknown_columns_are_refused():
    with pytest.raises(KeyError, match="no field"):
        kind_columns("operations", ["operation_id", "nope"])


def test_generated_targets_carry_the_model_columns():
    checked = 0
    for dash in render_dashboards(Settings()).values():
        queries = [t for p in dash["panels"] for t in p.get("targets", [])]
        queries += [
            v["query"]["infinityQuery"]
            for v in dash["templating"]["list"]
            if isinstance(v.get("query"), dict) and "infinityQuery" in v["query"]
        ]
        for target in queries:
            if "columns" not in target:
                continue
            path = target["url"].split("?")[0]
            kind = "variables" if "/variables/" in path or target["refId"] == "variable" else None
            kind = kind or simpod_request(target["url"])[0]
            names = [c["selector"] for c in target["columns"]]
            assert target["columns"] == kind_columns(kind, names), target["url"]
            checked += 1
    assert checked >= 15
