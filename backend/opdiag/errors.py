"""opdiag's error tree. Each error knows the CLI exit status and HTTP status it maps to,
so the edges (CLI, Flask) translate them in one place and never show a stack trace."""

from __future__ import annotations


class OpdiagError(Exception):
    """Base of every error opdiag reports to a person."""

    exit_code = 1
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(OpdiagError):
    """Unreadable or malformed input: a trace file, a parameter, a rule pack."""

    exit_code = 2
    http_status = 400

    def __init__(
        self, message: str, *, source: str | None = None, field: str | None = None
    ) -> None:
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + message)
        self.source = source
        self.field = field


class TraceFormatError(InputError):
    """A trace file or response that is not one of the accepted formats."""


class RulePackError(InputError):
    """A rule pack that does not validate; the message names file, line and reason."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None) -> None:
        where = f"{source}:{line}" if source and line else source
        super().__init__(message, source=where)
        self.line = line


class NotFoundError(OpdiagError):
    """No trace holds the requested operation or trace id."""

    exit_code = 3
    http_status = 404


class NotYetError(NotFoundError):
    """The source holds the id, but nothing of it had been exported by the moment judged at
    (``now`` before it started, or before any of its spans ended)."""

    field = "now"


class SourceUnavailableError(OpdiagError):
    """The trace source (Jaeger) cannot be reached or answers nonsense."""

    exit_code = 4
    http_status = 502


class SourceTimeoutError(SourceUnavailableError):
    """The trace source did not answer in time."""

    http_status = 504


class StoreUnavailableError(OpdiagError):
    """The verdict store (SQLite file, PostgreSQL server) cannot be opened, read or written."""

    exit_code = 4
    http_status = 503
