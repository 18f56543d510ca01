"""Build every dashboard for the given settings as clean JSON models, keyed by file name."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from opdiag.settings import Settings

from opdiag_dashboards.board import Board, to_dashboard
from opdiag_dashboards.boards import diagnosis, operations, system_overview, worker_status
from opdiag_dashboards.datasources import JSON_DATASOURCE_TYPES
from opdiag_dashboards.finalize import clean_dashboard

BOARD_MODULES: tuple[ModuleType, ...] = (system_overview, worker_status, operations, diagnosis)


def build_boards(settings: Settings, json_datasource: str = "infinity") -> list[Board]:
    """Every dashboard's content, in a fixed order."""
    if json_datasource not in JSON_DATASOURCE_TYPES:
        raise ValueError(f"json datasource must be one of {sorted(JSON_DATASOURCE_TYPES)}")
    return [module.build(settings, json_datasource) for module in BOARD_MODULES]


def render_dashboards(
    settings: Settings, json_datasource: str = "infinity"
) -> dict[str, dict[str, Any]]:
    """File name (``<uid>.json``) -> dashboard JSON model."""
    boards = build_boards(settings, json_datasource)
    others = {b.title: b.uid for b in boards}
    return {
        f"{b.uid}.json": clean_dashboard(to_dashboard(b, settings, others).to_json_data())
        for b in boards
    }
