"""`opdiag dashboards generate [--out DIR] [--check]`: write or drift-check provisioning/.

Returns an exit status instead of exiting (grafanalib ``_gen`` style) so tests call it
in-process. ``check=True`` never writes: it prints a unified diff of what would change.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import TextIO

from opdiag.settings import REPO_ROOT, Settings

from opdiag_dashboards.provisioning import MANAGED, render_files


def default_out_dir() -> Path:
    """<repo>/provisioning from a source checkout (editable install); otherwise (a plain
    `pip install .`, as in CI) ./provisioning of the working directory, the checkout root."""
    if (REPO_ROOT / "pyproject.toml").is_file():
        return REPO_ROOT / "provisioning"
    return Path.cwd() / "provisioning"


DEFAULT_OUT = default_out_dir()


def managed_files(out_dir: Path) -> set[str]:
    """Relative paths of generator-owned files present under ``out_dir``."""
    found: set[str] = set()
    for sub, suffix in MANAGED:
        folder = out_dir / sub
        if folder.is_dir():
            found |= {
                p.relative_to(out_dir).as_posix()
                for p in folder.iterdir()
                if p.is_file() and p.name.endswith(suffix)
            }
    return found


def drift(out_dir: Path, files: dict[str, str]) -> list[str]:
    """Unified diff lines between the committed files and the generated ones (empty = none)."""
    lines: list[str] = []
    for rel in sorted(set(files) | managed_files(out_dir)):
        path = out_dir / rel
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        new = files.get(rel)
        if old == new:
            continue
        lines.extend(
            difflib.unified_diff(
                [] if old is None else old.splitlines(keepends=True),
                [] if new is None else new.splitlines(keepends=True),
                fromfile=f"a/{rel}" if old is not None else "/dev/null",
                tofile=f"b/{rel}" if new is not None else "/dev/null",
            )
        )
    return lines


def write(out_dir: Path, files: dict[str, str]) -> None:
    """Write every file, and delete generator-owned files that are no longer generated."""
    for rel in managed_files(out_dir) - set(files):
        (out_dir / rel).unlink()
    for rel, text in files.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def generate(
    out_dir: Path | None,
    check: bool,
    settings: Settings,
    json_datasource: str = "infinity",
    *,
    stdout: TextIO | None = None,
) -> int:
    """Generate provisioning/ (0), or with ``check`` return 1 and print a diff on drift."""
    out = sys.stdout if stdout is None else stdout
    target = default_out_dir() if out_dir is None else Path(out_dir)
    try:
        files = render_files(settings, json_datasource)
    except ValueError as exc:
        print(f"opdiag dashboards: {exc}", file=sys.stderr)
        return 2
    if check:
        lines = drift(target, files)
        if lines:
            out.writelines(line if line.endswith("\n") else line + "\n" for line in lines)
            print(
                f"\n{target} differs from the generated provisioning; "
                "run `opdiag dashboards generate` and commit the result.",
                file=out,
            )
            return 1
        print(f"{target} is up to date ({len(files)} files).", file=out)
        return 0
    write(target, files)
    print(f"wrote {len(files)} files to {target}", file=out)
    return 0
