"""What each ``opdiag`` command does, once its arguments are parsed.

Each command returns an exit status and writes only through the ``out``/``err`` streams it
is given, so tests call them in-process. Heavy modules (the Flask server, httpx, grafanalib)
are imported inside the command that needs them: ``opdiag diagnose`` on a file is timed
against ``jq`` and must start fast.
"""

from __future__ import annotations

import argparse
import errno
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from opdiag.controls import message_line
from opdiag.errors import InputError, NotFoundError
from opdiag.settings import Settings, load_settings
from opdiag.timeutil import ALL_END_US, parse_lookback_s, parse_now

if TYPE_CHECKING:  # (the model and msgspec stay out of ``opdiag dashboards``)
    from opdiag.diagnosis.result import Diagnosis
    from opdiag.sources.base import TraceSource



def _check_paths(paths: list[str]) -> list[Path]:
    """Named paths must exist and be readable: a typo is bad input (2), not 'not found'."""
    checked: list[Path] = []
    for raw in paths:
        if not raw.strip():  # Path("") is ".": an unset variable would read the whole tree
            raise InputError("--traces: an empty path", field="traces")
        path = Path(raw)
        if not path.exists():
            raise InputError(_missing(path), source=raw)
        if not os.access(path, os.R_OK):
            raise InputError("permission denied", source=raw)
        checked.append(path)
    return checked


def _missing(path: Path) -> str:
    """Why a named path cannot be read: gone, or a symbolic link that leads nowhere."""
    if not path.is_symlink():
        return "no such file or directory"
    try:
        path.resolve(strict=True)
    except RuntimeError:  # (Python 3.11 raises this for a loop)
        return "a symbolic link that loops back on itself"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link that loops back on itself"
    return f"a broken symbolic link (to {os.readlink(path)!r}, which does not exist)"


def build_settings(args: argparse.Namespace, *, serve: bool = False) -> Settings:
    """Settings from defaults < config file < env < flags. ``--jaeger-url`` wins over an
    ``OPDIAG_TRACES`` from the environment; ``--rules`` adds to configured packs."""
    overrides: dict[str, Any] = {}
    traces = list(getattr(args, "traces", None) or [])
    if traces:
        overrides["trace_paths"] = [str(p) for p in _check_paths(traces)]
    jaeger: dict[str, Any] = {}
    jaeger_url = getattr(args, "jaeger_url", None)
    if jaeger_url:
        jaeger["url"] = jaeger_url
        if not traces:
            overrides["trace_paths"] = []
    lookback = getattr(args, "lookback", None)
    if lookback:
        jaeger["lookback_s"] = parse_lookback_s(lookback, name="--lookback")
    if jaeger:
        overrides["jaeger"] = jaeger
    if serve:
        server: dict[str, Any] = {}
        if getattr(args, "host", None):
            server["host"] = args.host
        if getattr(args, "port", None) is not None:
            server["port"] = args.port
        if server:
            overrides["server"] = server
    settings = load_settings(config_file=getattr(args, "config", None), overrides=overrides)
    extra_rules = [Path(p) for p in (getattr(args, "rules", None) or [])]
    if extra_rules:
        for rule in extra_rules:
            if not rule.is_file():
                raise InputError("rule pack not found", source=str(rule))
        settings = settings.model_copy(update={"rule_packs": [*settings.rule_packs, *extra_rules]})
    if serve and not settings.trace_paths and not settings.jaeger.url:
        settings = settings.model_copy(update={"use_demo": True})
    return settings


def finish(args: argparse.Namespace, status: int) -> int:
    """Hand the status to ``args.finish`` when the console entry set one (see cli.main): it
    ends the process while the trace model is still referenced, so freeing 100 000 spans one
    by one is never paid for. In-process callers (tests) get the status back as usual."""
    hook = getattr(args, "finish", None)
    if hook is not None:
        hook(status)
    return status


def warn_problems(source: TraceSource | None, err: TextIO) -> None:
    """Skipped bad files are warnings, printed once, after the work."""
    for problem in getattr(source, "problems", None) or []:
        err.write(f"opdiag: warning: skipped {message_line(str(problem))}\n")


def _resolve_time(text: str, *, name: str, now_us: int, end: bool = False) -> int:
    """A ``--from``/``--to``: RFC 3339, epoch seconds, or relative to now (``now-1h``)."""
    raw = text.strip()
    if raw.startswith("now"):
        from opdiag.timeutil import parse_http_time

        return parse_http_time(raw, name=name, now_us=now_us, end=end)
    return parse_now(raw, name=name)


def run_diagnose(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    now_us = parse_now(args.now) if args.now is not None else None
    settings = build_settings(args)
    from opdiag.service import DiagnosisService
    from opdiag.sources.factory import make_source

    source = make_source(settings)
    try:
        service = DiagnosisService(source, settings, recording_clock=True)
        try:
            diagnosis = service.diagnose(args.ident, now_us=now_us)
        except NotFoundError:
            if args.format == "json":
                _print_not_found(args.ident, settings, service.rules, out)
            raise
    finally:
        warn_problems(source, err)
    if args.format == "json":
        from opdiag.render.json_render import render_json

        out.write(render_json(diagnosis) + "\n")
    else:
        from opdiag.render.markdown import render_markdown

        out.write(render_markdown(diagnosis))
    return finish(args, 0)


def _print_not_found(ident: str, settings: Settings, rules: Any, out: TextIO) -> None:
    from msgspec.structs import replace

    from opdiag.diagnosis.engine import not_found
    from opdiag.render.json_render import render_json
    from opdiag.render.links import build_links

    diagnosis = not_found(ident, rules)
    diagnosis = replace(diagnosis, links=build_links(diagnosis, settings.links))
    out.write(render_json(diagnosis) + "\n")


def run_operations(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    now_given = parse_now(args.now) if args.now is not None else None
    settings = build_settings(args)
    from opdiag.service import DiagnosisService
    from opdiag.sources.factory import make_source

    source = make_source(settings)
    try:
        # one-shot, no threads: half of a long listing's verdicts may come from a fork
        service = DiagnosisService(source, settings, fork=True, recording_clock=True)
        start_us, end_us = _listing_range(args, settings, service, now_given)
        diagnoses = service.each_operation(start_us, end_us, now_given, rows=True)
    finally:
        warn_problems(source, err)
    in_flight: list[bool] = []

    def watched(each: Iterable[Diagnosis]) -> Iterator[Diagnosis]:
        for d in each:
            if not in_flight and not d.finished:
                in_flight.append(True)
            yield d

    if args.format == "json":
        from opdiag.render.json_render import write_list
        from opdiag.render.rows import operation_row_dict

        # row by row: a long listing never holds every final diagnosis or row at once
        write_list(out, map(operation_row_dict, watched(diagnoses)))
    else:
        from opdiag.render.table import render_operations_table

        out.write(render_operations_table(list(watched(diagnoses))))
    note = service.clock_note(now_given) if in_flight else None
    if note is not None:  # the verdicts of what was in flight depend on it
        err.write(f"opdiag: note: {note}\n")
    return finish(args, 0)


def _listing_range(
    args: argparse.Namespace, settings: Settings, service: Any, now_given: int | None
) -> tuple[int, int]:
    """``--from``/``--to`` (relative ones from the clock judged by: ``--now``, else the end
    of the traces or Jaeger's clock); without either, all of the files, or Jaeger's
    look-back."""
    from opdiag.timeutil import resolve_range

    return resolve_range(
        args.time_from,
        args.time_to,
        clock=lambda: now_given if now_given is not None else service.default_now_us(),
        span_us=int(settings.jaeger.lookback_s * 1_000_000),
        parse=_resolve_time,
        names=("--from", "--to"),
        whole=(lambda: (0, ALL_END_US)) if settings.trace_paths else None,
    )


def run_compare(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    now_us = parse_now(args.now) if args.now is not None else None
    settings = build_settings(args)
    from opdiag.service import DiagnosisService
    from opdiag.sources.factory import make_source

    source = make_source(settings)
    try:
        service = DiagnosisService(source, settings, recording_clock=True)
        this, other, comparison = service.compare(
            args.ident, args.against, now_us=now_us
        )
    except (NotFoundError, InputError) as exc:  # not found, or two runs not comparable
        if args.format == "json":  # a script reads JSON on stdout whatever happened
            from opdiag.render.json_render import dumps

            kind = "not_found" if isinstance(exc, NotFoundError) else "bad_input"
            out.write(dumps({"error": exc.message, "kind": kind}) + "\n")
        raise
    finally:
        warn_problems(source, err)
    if args.format == "json":
        from opdiag.render.json_render import comparison_dict, dumps

        out.write(dumps(comparison_dict(this, other, comparison)) + "\n")
    else:
        from opdiag.render.markdown import render_comparison_markdown

        out.write(render_comparison_markdown(this, other, comparison))
    return finish(args, 0)


def run_mcp(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = build_settings(args)
    from opdiag.mcp_server import serve_stdio

    return serve_stdio(settings)


def run_serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = build_settings(args, serve=True)
    from opdiag.api.server import serve

    return int(serve(settings))


def run_dashboards(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = load_settings(config_file=args.config)
    from opdiag_dashboards.cli import generate

    out_dir = Path(args.out) if args.out else None
    return int(generate(out_dir, args.check, settings, json_datasource=args.json_datasource))
