"""Typed settings sections as plain dataclasses, validated where they come in.

Why not pydantic: every ``opdiag diagnose`` builds the settings, and importing pydantic cost two
thirds of its start-up (0.17 s of 0.27 s). The settings need little of it: defaults, nested
sections, unknown keys refused, and the lax conversions that YAML and environment strings
need (``"300"`` → 300.0, ``"true"`` → True, paths). A section is a dataclass deriving from
:class:`Section`, which keeps pydantic's spelling of the three calls used across the code and
tests: ``model_validate``, ``model_copy(update=...)`` and ``model_dump``. Bounds and checks
are declared in a field's metadata: ``field(default=1, metadata={"ge": 0, "le": 9})``, or
``metadata={"check": f}`` with ``f(value)`` returning the value to keep or raising
``ValueError`` with the reason.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

_TRUE = frozenset({"1", "true", "yes", "on", "t", "y"})
_FALSE = frozenset({"0", "false", "no", "off", "f", "n"})
_HINTS: dict[type, dict[str, Any]] = {}


class SettingsError(ValueError):
    """A value that does not fit its setting; ``loc`` is the dotted path to it."""

    def __init__(self, loc: str, message: str, given: Any = None) -> None:
        super().__init__(f"{loc}: {message}" if loc else message)
        self.loc = loc
        self.message = message
        self.given = given  # the value that did not fit

    def under(self, name: str) -> SettingsError:
        loc = f"{name}.{self.loc}" if self.loc else name
        return SettingsError(loc, self.message, self.given)


class Section:
    """Base of every settings section (subclasses are ``@dataclass``es)."""

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """A section from a mapping of plain values: unknown keys refused, values converted
        to the declared types; ``SettingsError`` names the first problem."""
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping):
            raise SettingsError("", f"should be a mapping, not {type(data).__name__}")
        hints = _hints(cls)
        declared = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        values: dict[str, Any] = {}
        for key, raw in data.items():
            spec = declared.get(key) if isinstance(key, str) else None
            if spec is None:
                raise SettingsError(str(key), "unknown setting (extra inputs are not permitted)")
            try:
                value = _checked(spec, _convert(hints[key], raw))
            except SettingsError as exc:
                if exc.given is None and not isinstance(raw, Mapping | list):
                    exc.given = raw
                raise exc.under(key) from None
            values[key] = value
        for name, spec in declared.items():
            required = (
                spec.default is dataclasses.MISSING
                and spec.default_factory is dataclasses.MISSING
                and spec.init
            )
            if required and name not in values:
                raise SettingsError(name, "is required")
        return cls(**values)

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> Self:
        """A copy with some fields replaced (not validated, as pydantic's)."""
        return dataclasses.replace(self, **dict(update or {}))  # type: ignore[type-var]

    def model_dump(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _checked(spec: dataclasses.Field[Any], value: Any) -> Any:
    meta = spec.metadata
    if "gt" in meta and value <= meta["gt"]:
        raise SettingsError("", f"should be greater than {meta['gt']}")
    if "ge" in meta and value < meta["ge"]:
        raise SettingsError("", f"should be at least {meta['ge']}")
    if "le" in meta and value > meta["le"]:
        raise SettingsError("", f"should be at most {meta['le']}")
    check = meta.get("check")
    if check is not None:
        try:
            return check(value)
        except ValueError as exc:
            raise SettingsError("", str(exc)) from None
    return value


def _convert(hint: Any, raw: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if raw is None and type(None) in options:
            return None
        problems = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, raw)
            except SettingsError as exc:
                problems.append(exc.message)
        raise SettingsError("", "; ".join(problems))
    if origin is list:
        if not isinstance(raw, list | tuple):
            raise SettingsError("", f"should be a list, not {type(raw).__name__}")
        (item,) = typing.get_args(hint)
        out = []
        for i, value in enumerate(raw):
            try:
                out.append(_convert(item, value))
            except SettingsError as exc:
                raise exc.under(str(i)) from None
        return out
    if origin is dict:
        if not isinstance(raw, Mapping):
            raise SettingsError("", f"should be a mapping, not {type(raw).__name__}")
        key_type, value_type = typing.get_args(hint)
        converted = {}
        for key, value in raw.items():
            try:
                converted[_convert(key_type, key)] = _convert(value_type, value)
            except SettingsError as exc:
                raise exc.under(str(key)) from None
        return converted
    if isinstance(hint, type) and issubclass(hint, Section):
        return hint.model_validate(raw)
    return _scalar(hint, raw)


def _scalar(hint: Any, raw: Any) -> Any:
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower() if isinstance(raw, str | int) else None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise SettingsError("", f"should be a boolean, not {raw!r}")
    if hint is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        if isinstance(raw, str):
            try:
                return int(raw.strip())
            except ValueError:
                pass
        raise SettingsError("", f"should be an integer, not {raw!r}")
    if hint is float:
        number: float | None = None
        try:
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                number = float(raw)  # OverflowError: an int beyond any float
            elif isinstance(raw, str):
                number = float(raw.strip())
        except (ValueError, OverflowError):
            number = None
        if number is None or not math.isfinite(number):
            raise SettingsError("", f"should be a finite number, not {str(raw)[:60]!r}")
        return number
    if hint is str:
        if isinstance(raw, str):
            return raw
        raise SettingsError("", f"should be a string, not {raw!r}")
    if hint is Path:
        if isinstance(raw, str | Path):
            return Path(raw)
        raise SettingsError("", f"should be a path, not {raw!r}")
    raise SettingsError("", f"unsupported setting type {hint!r}")  # a bug in a section
