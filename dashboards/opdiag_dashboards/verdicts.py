"""Verdict codes and their colours (SPEC "Diagnosis"), as Grafana value mappings."""

from __future__ import annotations

from opdiag_dashboards import fields

VERDICT_COLORS: dict[str, str] = {
    "healthy": "green",
    "failed": "red",
    "invalid_input": "orange",
    "data_missing": "orange",
    "service_unreachable": "dark-red",
    "no_workers": "purple",
    "no_capable_workers": "purple",
    "workers_busy": "light-purple",
    "worker_lost": "dark-orange",
    "stuck": "yellow",
    "slow": "light-yellow",
    "cancelled": "blue",
    "not_found": "text",
}

# How bad a verdict is (``OperationRow.severity``): a healthy verdict a rule warns about (a
# data load completed with missing bars) stands out from the green ones beside it.
SEVERITY_COLORS: dict[str, str] = {
    "critical": "dark-red",
    "error": "red",
    "warning": "orange",
    "info": "green",
}


# Phase statuses of a comparison with the last good runs (``PhaseChange.status``).
CHANGE_COLORS: dict[str, str] = {
    "slower": "red",
    "new": "orange",
    "missing": "purple",
    "not reached": "purple",
    "stopped": "blue",
    "in progress": "light-blue",
    "faster": "green",
    "as expected": "green",
    "same": "text",
    "not comparable": "text",
    "no baseline": "text",
}


def color_mappings(colors: dict[str, str]) -> list[dict[str, object]]:
    """One value mapping carrying the colour of every code."""
    options = {
        code: {"text": code, "color": color, "index": i}
        for i, (code, color) in enumerate(colors.items())
    }
    return [{"type": "value", "options": options}]


def verdict_mappings() -> list[dict[str, object]]:
    """One value mapping carrying the colour of every verdict."""
    return color_mappings(VERDICT_COLORS)


def verdict_column() -> dict[str, object]:
    """The override of a table's ``verdict`` column: coloured cell, one width everywhere."""
    return fields.by_name(
        "verdict",
        display="Verdict",
        mappings=verdict_mappings(),
        cell="color-background",
        width=150,
    )


def severity_column() -> dict[str, object]:
    """The override of a table's ``severity`` column: coloured text beside the verdict."""
    return fields.by_name(
        "severity",
        display="Severity",
        mappings=color_mappings(SEVERITY_COLORS),
        cell="color-text",
        width=90,
    )


def up_down_mappings() -> list[dict[str, object]]:
    """1 -> Up (green), 0 -> Down (red) for `up` series."""
    return [
        {
            "type": "value",
            "options": {
                "0": {"text": "Down", "color": "red", "index": 0},
                "1": {"text": "Up", "color": "green", "index": 1},
            },
        }
    ]


def bool_mappings(true_text: str, true_color: str) -> list[dict[str, object]]:
    """Booleans as words: highlight true, leave false blank."""
    return [
        {
            "type": "value",
            "options": {
                "true": {"text": true_text, "color": true_color, "index": 0},
                "false": {"text": "", "index": 1},
            },
        }
    ]


def dash_zero_mappings() -> list[dict[str, object]]:
    """0 shown as "-", as a stat shows no value: the API's 0 for a baseline means none (a
    request refused before it became an operation has no good runs), not "0 ms"."""
    return [{"type": "value", "options": {"0": {"text": "-", "index": 0}}}]


def blank_zero_mappings() -> list[dict[str, object]]:
    """0 left blank: the value the API gives for none (no expected time, no percentage, no
    change for a run that did not complete), which must not read as "0 ms" or "0 %"."""
    return [{"type": "value", "options": {"0": {"text": "", "index": 0}}}]
