"""Infinity columns derived from opdiag's REST row models, so panels and API cannot drift.

A column's type comes from the pydantic field: str -> string, int/float -> number,
bool -> boolean; a number named ``time`` or described as "epoch ms" -> timestamp_epoch
(durations such as ``duration_ms`` or offsets such as ``start_ms`` stay numbers).
"""

from __future__ import annotations

from collections.abc import Iterable

from opdiag.api.schemas import ROW_MODELS, Row
from pydantic.fields import FieldInfo

_SCALARS = {str: "string", int: "number", float: "number", bool: "boolean"}


def is_epoch_ms(name: str, field: FieldInfo) -> bool:
    """True for timestamps (epoch ms), false for durations and offsets in ms."""
    return name == "time" or "epoch ms" in (field.description or "")


def column_type(name: str, field: FieldInfo) -> str:
    """The Infinity column type of one model field."""
    scalar = _SCALARS.get(field.annotation)  # type: ignore[arg-type]
    if scalar is None:
        raise TypeError(f"row field {name} has a non-scalar type {field.annotation!r}")
    if scalar == "number" and is_epoch_ms(name, field):
        return "timestamp_epoch"
    return scalar


def model_columns(model: type[Row], names: Iterable[str] | None = None) -> list[dict[str, str]]:
    """Infinity ``columns`` for the given fields of a row model (all fields, in model order)."""
    fields = model.model_fields
    wanted = list(fields) if names is None else list(names)
    unknown = [n for n in wanted if n not in fields]
    if unknown:
        raise KeyError(f"{model.__name__} has no field(s) {unknown}")
    return [{"selector": n, "text": n, "type": column_type(n, fields[n])} for n in wanted]


def kind_columns(kind: str, names: Iterable[str] | None = None) -> list[dict[str, str]]:
    """Columns of a row kind (``operations``, ``diagnosis``, ``flow`` ...)."""
    return model_columns(ROW_MODELS[kind], names)
