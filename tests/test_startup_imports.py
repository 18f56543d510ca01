"""What the one-shot commands import: ``opdiag dashboards`` renders JSON from settings alone,
so it must not pay for the trace model, msgspec or the diagnosis engine (msgspec alone is
about 15 ms of start-up). Settings and the shared time helpers therefore stay dataclasses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("msgspec", "opdiag.model", "opdiag.diagnosis.engine")


def test_dashboards_generate_imports_neither_the_model_nor_the_engine(tmp_path: Path):
    code = (
        "import sys\n"
        "from opdiag.cli.main import main\n"
        f"status = main(['dashboards', 'generate', '--out', {str(tmp_path)!r}])\n"
        f"print(status, [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()[-1]
    assert out == "0 []"
    assert any(tmp_path.rglob("*.json"))  # it did render the dashboards
