"""Exception classes carrying the module paths the real code raises them from.

The SDK's ``record_exception`` writes ``exception.type`` as ``module.QualName`` (bare for
builtins), so setting ``__module__`` makes the recorded type match what KTRDR, httpx and click
produce (``run1/real-spans.txt``).
"""

from __future__ import annotations


class DataNotFoundError(Exception):
    """KTRDR: no local data for the requested symbol/timeframe/range."""


class ValidationError(ValueError):
    """KTRDR: a request or strategy configuration that cannot be used."""


class WorkerUnavailableError(Exception):
    """KTRDR: no worker of the type is available (answered 503)."""


class ConnectError(Exception):
    """httpx: the TCP connection could not be established."""


class ReadTimeout(Exception):
    """httpx: the server accepted the request but did not answer in time."""


class Exit(Exception):
    """click: ``typer.Exit(1)``, how the CLI gives up."""


for _cls in (DataNotFoundError, ValidationError, WorkerUnavailableError):
    _cls.__module__ = "ktrdr.errors.exceptions"
ConnectError.__module__ = "httpx"
ReadTimeout.__module__ = "httpx"
Exit.__module__ = "click.exceptions"
