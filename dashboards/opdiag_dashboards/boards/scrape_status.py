"""The up/down table of scrape targets shared by the System Overview and Worker Status boards."""

from __future__ import annotations

from opdiag_dashboards import fields, panels, verdicts


def up_down_table(
    title: str, description: str, target: object, rename: dict[str, str]
) -> object:
    """One row per scrape target (an instant ``up``-style query in table format), its value
    shown as a coloured Status cell; ``rename`` names the label columns."""
    return panels.table(
        title,
        description,
        [target],
        mappings=verdicts.up_down_mappings(),
        thresholds=panels.steps("red", (1, "green")),
        overrides=[fields.by_name("Value", display="Status", cell="color-background")],
        transformations=[fields.organize(exclude=["Time", "__name__"], rename=rename)],
    )
