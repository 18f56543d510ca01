"""Exception classes carrying the module paths the real code raises them from.

The SDK's ``record_exception`` writes ``exception.type`` as ``module.QualName`` (bare for
builtins), so setting ``__module__`` makes the recorded type match what KTRDR, httpx and
pydantic would produce.
"""

from __future__ import annotations


class DataNotFoundError(Exception):
    """KTRDR: no local data for the requested symbol/timeframe/range."""


class InsufficientDataError(Exception):
    """KTRDR: data exists but too few rows for the requested computation."""


class ConnectError(Exception):
    """httpx: the TCP connection could not be established."""


class ValidationError(ValueError):
    """pydantic: request or config validation failed."""


DataNotFoundError.__module__ = "ktrdr.errors.exceptions"
InsufficientDataError.__module__ = "ktrdr.errors.exceptions"
ConnectError.__module__ = "httpx"
ValidationError.__module__ = "pydantic_core._pydantic_core"
