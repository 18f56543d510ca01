"""``opdiag`` entry point: parse, run one command, map every failure to its exit status.

Exit status (SPEC.md): 0 diagnosed (whatever the verdict), 2 bad usage or unreadable input,
3 not found, 4 trace source unavailable, 1 anything unexpected. Every failure is one line on
stderr, ``opdiag: <message>``: never a stack trace.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from opdiag.cli.parser import UsageError, build_parser
from opdiag.controls import message_line
from opdiag.errors import OpdiagError
from opdiag.gcpause import gc_paused

EXIT_USAGE = 2
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130


def _exit_now(status: int) -> None:
    """Console runs of one-shot commands end here, output flushed, without tearing down the
    trace model object by object (about 0.1 s on a 100 000-span trace); nothing else needs
    cleaning up: no files are open for writing and no threads run."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(status)


def _dispatch(argv: Sequence[str] | None) -> int:
    from opdiag.cli import commands
    from opdiag.sources.budget import jaeger_budget

    args = build_parser().parse_args(argv)
    if argv is None and args.command in {"diagnose", "operations", "compare"}:
        args.finish = _exit_now
    out, err = sys.stdout, sys.stderr
    # One-shot commands build ~10 objects per span and drop them all at the end: no cyclic
    # GC while they run (not for ``serve``; restored afterwards for in-process callers).
    one_shot = {
        "diagnose": commands.run_diagnose,
        "operations": commands.run_operations,
        "compare": commands.run_compare,
    }.get(args.command)
    if one_shot is not None:  # one request: its Jaeger calls share one budget
        with gc_paused(), jaeger_budget():
            return one_shot(args, out, err)
    if args.command == "mcp":
        return commands.run_mcp(args, out, err)
    if args.command == "serve":
        return commands.run_serve(args, out, err)
    return commands.run_dashboards(args, out, err)


def _one_line(message: str) -> str:
    """A message for the terminal: one line, no control or bidi characters (messages name
    files and quote Jaeger's answers, both untrusted)."""
    return message_line(message) or "error"


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``opdiag`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    try:
        return _dispatch(argv)
    except UsageError as exc:
        sys.stderr.write(exc.usage)
        sys.stderr.write(f"opdiag: {_one_line(exc.message)}\n")
        return EXIT_USAGE
    except OpdiagError as exc:
        sys.stderr.write(f"opdiag: {_one_line(exc.message)}\n")
        return exc.exit_code
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        sys.stderr.write("opdiag: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `opdiag operations | head`: quiet, and no flush error at exit
        _silence_stdout()
        return 0
    except OSError as exc:  # the machine refused a write: a full disk, a file where a
        # directory was asked for. The input was fine; the output could not be made.
        where = f"{exc.filename}: " if exc.filename else ""
        sys.stderr.write(f"opdiag: {_one_line(where + (exc.strerror or str(exc)))}\n")
        _silence_stdout()
        return EXIT_USAGE
    except Exception as exc:  # last resort: a short message, never a traceback
        detail = str(exc).splitlines()[0] if str(exc) else ""
        detail = _one_line(detail[:300])
        sys.stderr.write(f"opdiag: internal error: {type(exc).__name__}: {detail}\n")
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
