"""The argparse tree of ``opdiag``: SPEC.md's CLI contract, flag for flag.

argparse would print its own error and ``sys.exit(2)``; ``OpdiagArgumentParser`` raises
instead, so ``main`` keeps one exit path and one message format for every failure.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from opdiag import __version__


class UsageError(Exception):
    """Bad command-line usage (exit 2); carries argparse's message and the usage line."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage


class OpdiagArgumentParser(argparse.ArgumentParser):
    """Raises ``UsageError`` instead of exiting, so ``main(argv)`` can be called in-process."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.format_usage())


def _port(text: str) -> int:
    """A TCP port, 0 (any free port) to 65535; argparse names the flag and the value."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r} (use 0 to 65535)") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r} (use 0 to 65535)")
    return value


def _source_options(parser: argparse.ArgumentParser, *, rules: bool = True) -> None:
    parser.add_argument(
        "--traces",
        action="append",
        default=[],
        metavar="PATH",
        help="trace file or directory (legacy Jaeger JSON, OTLP-JSON, OTLP lines); repeatable",
    )
    parser.add_argument(
        "--jaeger-url", metavar="URL", help="Jaeger query base URL (default: $JAEGER_URL)"
    )
    parser.add_argument(
        "--lookback",
        metavar="DURATION",
        help="how far back Jaeger is searched from --now, e.g. 6h, 3d "
        "(default: $OPDIAG_JAEGER_LOOKBACK or 6h; an operation id's own date wins)",
    )
    if rules:
        parser.add_argument(
            "--rules",
            action="append",
            default=[],
            metavar="FILE",
            help="extra YAML rule pack, on top of the default one; repeatable",
        )
    parser.add_argument("--config", metavar="FILE", help="settings YAML (default: $OPDIAG_CONFIG)")


NOW_HELP = (
    "the moment to judge at, RFC 3339 or epoch s: 'stuck' is judged by it, and a moment "
    "before the end of the traces sees only what had happened by then (default: the end of "
    "the traces, their last span, for --traces; this machine's clock for Jaeger)"
)


def _diagnosis_options(parser: argparse.ArgumentParser) -> None:
    """What ``diagnose`` and ``compare`` share after the source: the clock and the format."""
    _source_options(parser)
    parser.add_argument("--now", metavar="TIME", help=NOW_HELP)
    parser.add_argument("--format", choices=("markdown", "json"), default="markdown")


def build_parser() -> OpdiagArgumentParser:
    """The whole command tree."""
    parser = OpdiagArgumentParser(
        prog="opdiag",
        description="Diagnose job-system operations from their traces.",
    )
    parser.add_argument("--version", action="version", version=f"opdiag {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    diagnose = commands.add_parser(
        "diagnose", help="diagnose one operation id or trace id", description=(
            "Diagnose one operation (operation.id) or trace id. Exit 0 when diagnosed, "
            "whatever the verdict; 2 bad input; 3 not found; 4 trace source unavailable."
        )
    )
    diagnose.add_argument("ident", metavar="ID", help="operation id or trace id")
    _diagnosis_options(diagnose)

    operations = commands.add_parser(
        "operations", help="list operations with their verdicts",
        description="Every operation (and failed dispatch without an id) with its verdict.",
    )
    _source_options(operations)
    operations.add_argument("--now", metavar="TIME", help=NOW_HELP)
    operations.add_argument(
        "--from", dest="time_from", metavar="T", help="start (RFC 3339, epoch s, now-6h)"
    )
    operations.add_argument(
        "--to", dest="time_to", metavar="T", help="end (RFC 3339, epoch s, now)"
    )
    operations.add_argument("--format", choices=("table", "json"), default="table")

    compare = commands.add_parser(
        "compare", help="compare one operation with another, phase by phase",
        description=(
            "Line up the phases of operation A against operation B (its baseline): this run, "
            "B, the change, new or missing phases, new error types. Exit codes as diagnose."
        ),
    )
    compare.add_argument("ident", metavar="A", help="operation id or trace id (this run)")
    compare.add_argument("against", metavar="B", help="operation id or trace id to compare with")
    _diagnosis_options(compare)

    mcp = commands.add_parser(
        "mcp", help="an MCP server over stdio for AI assistants",
        description=(
            "Serve opdiag's tools (list operations, diagnose, compare, execution flow) to an "
            "assistant over the Model Context Protocol on stdin/stdout."
        ),
    )
    _source_options(mcp)

    serve = commands.add_parser(
        "serve", help="serve the API, pages and metrics for Grafana",
        description="Serve the HTTP API; with neither --traces nor a Jaeger URL, the demo traces.",
    )
    _source_options(serve)
    serve.add_argument("--host", metavar="H", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", metavar="P", type=_port, help="listen port (default 8080)")

    dashboards = commands.add_parser("dashboards", help="Grafana dashboards as code")
    dash_commands = dashboards.add_subparsers(dest="dash_command", metavar="COMMAND", required=True)
    generate = dash_commands.add_parser(
        "generate", help="write provisioning/ (or check it is up to date)"
    )
    generate.add_argument("--out", metavar="DIR", help="output directory (default provisioning/)")
    generate.add_argument(
        "--check", action="store_true", help="exit non-zero with a diff when files differ"
    )
    generate.add_argument(
        "--json-datasource", choices=("infinity", "simpod"), default="infinity",
        help="JSON datasource plugin the dashboards use",
    )
    generate.add_argument("--config", metavar="FILE", help="settings YAML")
    return parser
