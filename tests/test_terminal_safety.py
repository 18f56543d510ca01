"""Nothing a trace, a file name or Jaeger says reaches the operator's terminal as a control
sequence: C0/C1 controls (ESC, CSI, OSC window titles, BEL) and bidirectional overrides
are replaced in the table, the Markdown, and every message on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opdiag.cli.main import main
from opdiag.controls import one_line

OP = "op_training_20261124_080000_deadbeef"
HOSTILE = "train\x1b]0;owned\x07 \x1b[2J\x9b31m\u202egnp.exe\u2066x\u2069\u2028y"
FORBIDDEN = ("\x1b", "\x07", "\x9b", "\u202e", "\u2066", "\u2069", "\u2028")


def _trace_file(path: Path) -> Path:
    start = 1_763_971_200_000_000
    span = {
        "traceID": "ab" * 16,
        "spanID": "cd" * 8,
        "operationName": HOSTILE,
        "references": [],
        "startTime": start,
        "duration": 5_000_000,
        "tags": [
            {"key": "operation.id", "type": "string", "value": OP},
            {"key": "error", "type": "bool", "value": True},
            {"key": "otel.status_description", "type": "string", "value": HOSTILE},
        ],
        "logs": [],
        "processID": "p1",
    }
    failed = {
        **span,
        "spanID": "ef" * 8,
        "operationName": "operation.state_transition",
        "references": [{"refType": "CHILD_OF", "traceID": "ab" * 16, "spanID": "cd" * 8}],
        "startTime": start + 4_000_000,
        "duration": 10,
        "tags": [
            {"key": "operation.id", "type": "string", "value": OP},
            {"key": "operation.to_status", "type": "string", "value": "failed"},
            {"key": "operation.error", "type": "string", "value": HOSTILE},
        ],
    }
    doc = {
        "data": [
            {
                "traceID": "ab" * 16,
                "spans": [span, failed],
                "processes": {"p1": {"serviceName": HOSTILE, "tags": []}},
            }
        ]
    }
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _clean(text: str) -> None:
    assert not [c for c in FORBIDDEN if c in text], repr(text[:400])


def test_one_line_keeps_text_and_drops_controls() -> None:
    assert one_line("plain text, ünïcödé ✓") == "plain text, ünïcödé ✓"
    _clean(one_line(HOSTILE))
    assert "gnp.exe" in one_line(HOSTILE)


@pytest.mark.parametrize("command", [["operations"], ["diagnose", OP]])
def test_listing_and_markdown_hold_no_control_sequence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    traces = _trace_file(tmp_path / "t.json")
    code = main([*command, "--traces", str(traces), "--now", "2025-11-24T09:00:00Z"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "gnp.exe" in out  # the text is shown, without what would reorder or repaint it
    _clean(out)
    _clean(err)


def test_a_file_name_in_a_warning_or_an_error_is_cleaned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "traces"
    folder.mkdir()
    _trace_file(folder / "good.json")
    (folder / "bad\x1b[2J\x1b]0;owned\x07.json").write_text("{not json", encoding="utf-8")
    assert main(["operations", "--traces", str(folder), "--now", "2025-11-24T09:00:00Z"]) == 0
    _, err = capsys.readouterr()
    assert "skipped" in err
    _clean(err)
    missing = tmp_path / "gone\x1b]0;owned\x07\u202e.json"
    assert main(["operations", "--traces", str(missing)]) == 2
    _, err = capsys.readouterr()
    assert "gone" in err and err.count("\n") == 1
    _clean(err)
