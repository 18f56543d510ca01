"""Compiled rule packs kept on disk: ``opdiag diagnose`` neither parses YAML nor imports
PyYAML at each start (about a third of its start-up).

An entry is the pickled ``RulePack`` of one pack file, named by a hash of everything the
compiled form depends on: the file's bytes and path, the source of the modules whose classes
it holds, and the Python version. Editing the pack, a user pack or opdiag itself gives another
name (the path as given is part of it: it is the pack's ``source``), so a stale entry is
never read. The cache only saves time: an unreadable, corrupt or unwritable entry is ignored,
and without a usable directory every pack is parsed as before. A pack that does not validate
is never cached (its error is raised each time).

Where: ``$OPDIAG_CACHE_DIR``, else ``$XDG_CACHE_HOME/opdiag``, else ``~/.cache/opdiag``, in
``rule-packs/``; ``OPDIAG_CACHE_DIR=off`` turns it off. The directory is the user's own, like
the rest of their cache: entries are trusted as code would be.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import sys
import tempfile
from functools import cache
from pathlib import Path

from opdiag.diagnosis.rules import RulePack, load_rule_pack

# The modules whose classes a compiled pack holds: their source is part of every key.
_MODULES = (
    "opdiag.diagnosis.rules",
    "opdiag.diagnosis.pack_yaml",
    "opdiag.diagnosis.conditions",
    "opdiag.diagnosis.templates",
    "opdiag.diagnosis.neighbour_spec",
    "opdiag.diagnosis.candidates",
    "opdiag.globs",
    "opdiag.model",
)
_OFF = "off"


def cache_dir() -> Path | None:
    """Where compiled packs go (see the module docstring); None when turned off."""
    chosen = os.environ.get("OPDIAG_CACHE_DIR")
    if chosen == _OFF:
        return None
    if chosen:
        return Path(chosen) / "rule-packs"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "opdiag" / "rule-packs"


@cache
def _code_fingerprint() -> bytes:
    """A hash of the source of the modules a compiled pack depends on (once per process)."""
    digest = hashlib.sha256(sys.version.encode())
    for name in _MODULES:  # located, not imported (the YAML reader imports PyYAML)
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        digest.update(Path(origin).read_bytes() if origin else name.encode())
    return digest.digest()


def _key(path: Path, data: bytes) -> str:
    digest = hashlib.sha256(_code_fingerprint())
    digest.update(str(path).encode("utf-8", "surrogatepass"))
    digest.update(b"\0")
    digest.update(data)
    return digest.hexdigest()


def load_rule_pack_cached(path: str | os.PathLike[str]) -> RulePack:
    """``load_rule_pack(path)``, from the cache when the same file was compiled before."""
    where = cache_dir()
    source = Path(path)
    try:
        data = source.read_bytes()
    except OSError:
        return load_rule_pack(path)  # words the error
    if where is None:
        return load_rule_pack(path)
    entry = where / f"{_key(source, data)}.pickle"
    found = _read(entry, str(path))
    if found is not None:
        return found
    pack = load_rule_pack(path)
    _write(where, entry, pack)
    return pack


def _read(entry: Path, source: str) -> RulePack | None:
    try:
        pack = pickle.loads(entry.read_bytes())
    except FileNotFoundError:
        return None
    except Exception:  # a corrupt or foreign entry: parse the pack instead
        return None
    if not isinstance(pack, RulePack) or pack.source != source:
        return None
    return pack


def _write(where: Path, entry: Path, pack: RulePack) -> None:
    """Write atomically (a temporary file renamed), quietly giving up on any error."""
    try:
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=where, prefix=".tmp-", suffix=".pickle")
        try:
            with os.fdopen(fd, "wb") as out:
                pickle.dump(pack, out, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, entry)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except (OSError, pickle.PicklingError):
        return
