"""FileSource's operation index reads each trace's distinct ``operation.id`` texts without a
loop over its spans (issue 10); values that are not strings are still read one by one, as
text (``1``, ``True`` and ``1.0`` are equal keys but different ids)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from opdiag.sources.files import FileSource

TID = "ab" * 16
TID2 = "cd" * 16


def _span(n: int, trace_id: str, op: Any) -> dict[str, Any]:
    tags = [] if op is None else [{"key": "operation.id", "type": "bool", "value": op}]
    return {
        "traceID": trace_id,
        "spanID": f"{n:016x}",
        "operationName": "s",
        "references": [],
        "startTime": 1_700_000_000_000_000 + n,
        "duration": 10,
        "tags": tags,
        "logs": [],
        "processID": "p1",
    }


def _source(tmp_path: Path, ops: list[Any], ops2: list[Any]) -> FileSource:
    traces = [
        {
            "traceID": tid,
            "spans": [_span(i + 1, tid, op) for i, op in enumerate(values)],
            "processes": {"p1": {"serviceName": "svc"}},
        }
        for tid, values in ((TID, ops), (TID2, ops2))
    ]
    path = tmp_path / "t.json"
    path.write_bytes(orjson.dumps({"data": traces}))
    source = FileSource([path])
    source.check()
    return source


@pytest.mark.parametrize(
    ("ops", "ops2", "index"),
    [
        (
            ["op_b", None, " op_a ", "op_b", "None", "null", ""],
            ["op_a", "op_a"],
            {"op_b": [TID], "op_a": [TID, TID2]},
        ),
        ([1, True, 1.0, "1"], ["True"], {"1": [TID], "True": [TID, TID2], "1.0": [TID]}),
        (
            [["a", "list"], "op_a"],
            [{"k": 1}],
            {"['a', 'list']": [TID], "op_a": [TID], "{'k': 1}": [TID2]},
        ),
    ],
)
def test_the_index_holds_every_id_text_in_order(
    tmp_path: Path, ops: list[Any], ops2: list[Any], index: dict[str, list[str]]
) -> None:
    source = _source(tmp_path, ops, ops2)
    assert source._by_operation == index
    assert list(source._by_operation) == list(index)
