"""Who judged a stored verdict: this opdiag's code, its rule packs and the settings a verdict
depends on, as one short digest.

A settled verdict is final for its judge only: after an upgrade, another rule pack or other
thresholds, the operations the source still holds are judged again by the watcher's next
pass (a store kept the wording and the mistakes of the version that first saw an operation,
and the list showed them beside pages that said otherwise).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import opdiag
from opdiag.settings import Settings

_PACKAGE = Path(opdiag.__file__).resolve().parent


def judge_of(settings: Settings) -> str:
    """The digest of the package's sources and bundled packs, the user's packs (as read
    now) and the diagnosis, comparison and link settings (the rows carry their links)."""
    digest = hashlib.sha256()
    for path in sorted([*_PACKAGE.rglob("*.py"), *_PACKAGE.rglob("*.yaml")]):
        digest.update(path.relative_to(_PACKAGE).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    for pack in settings.rule_packs:
        digest.update(str(pack).encode("utf-8", "surrogatepass"))
        try:
            digest.update(Path(pack).read_bytes())
        except OSError:  # loading the pack words that error; the judge only needs a name
            digest.update(b"\0unreadable")
    for section in (settings.diagnosis, settings.comparison, settings.links):
        digest.update(repr(section).encode())
    return digest.hexdigest()[:16]
