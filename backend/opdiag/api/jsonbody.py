"""JSON from clients, parsed strictly: orjson refuses nesting past 1024 levels (the standard
library recurses until ``RecursionError``), lone surrogates (which could not be encoded again
in an answer), NaN/Infinity and trailing commas. Every refusal is a 400 naming the field."""

from __future__ import annotations

from typing import Any

import orjson

from opdiag.errors import InputError


def _reason(exc: orjson.JSONDecodeError) -> str:
    message = str(exc.msg)
    if "depth" in message:
        return "nested too deeply"
    if "not valid UTF-8" in message:
        return "not UTF-8 text"
    if "surrogate" in message:
        return "holds a lone surrogate"
    return message


def parse_json(raw: bytes | str, field: str, what: str = "request body") -> Any:
    """``raw`` decoded, or ``InputError`` saying why not (depth, surrogate, syntax)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(
            f"{what} is not valid JSON: {_reason(exc)} (at character {exc.pos})", field=field
        ) from None
