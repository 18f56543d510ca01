"""The live demo's processes export to a real Jaeger, and ``opdiag serve --jaeger-url`` shows
the scenario mix's verdicts through REST and the pages.

One module-scoped run: a fresh real Jaeger, every role of the simulated KTRDR on loopback
(``ktrdr_sim.live``, time compressed 100x) sending OTLP/HTTP to it for one full cycle, then
opdiag served as its own process against Jaeger's query port. Everything is stopped at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from ktrdr_sim.live import launch
from real_jaeger import RealJaeger
from test_stack_live import ALL_VERDICTS  # the mix's verdicts, as the sink run sees them

pytest_plugins = ("real_jaeger_fixtures",)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("live-demo")]  # one demo at a time

CYCLE_TIMEOUT_S = 240.0
SERVE_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def live(jaeger_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealJaeger]:
    """A real Jaeger holding one full cycle of the live demo, exported by its processes."""
    tmp = tmp_path_factory.mktemp("live-jaeger")
    log = tmp / "demo.log"
    with RealJaeger(tmp, jaeger_binary) as jaeger:
        launch.run_cycle(jaeger.otlp_http_url, log, timeout_s=CYCLE_TIMEOUT_S)
        yield jaeger  # the demo is stopped: every process flushed its spans to Jaeger


@pytest.fixture(scope="module")
def served(live: RealJaeger, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``opdiag serve --jaeger-url`` as its own process; its base URL."""
    (port,) = launch.free_ports(1)
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OPDIAG_") and k != "JAEGER_URL"}
    # The demo compresses time 100x: the hung training is stuck after a few real seconds.
    env["OPDIAG_STUCK_AFTER_S"] = "3"
    env["OPDIAG_STORE_PATH"] = str(log.parent / "verdicts.sqlite3")  # never the user's store
    cmd = [sys.executable, "-m", "opdiag.cli.main", "serve", "--jaeger-url", live.query_url,
           "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        time.sleep(4)  # past the stuck threshold since the last span
        yield base
    finally:
        launch.stop(proc)


def test_rest_shows_every_verdict_of_the_mix(served: str):
    rows = httpx.get(f"{served}/api/v1/operations?from=now-1h", timeout=120).json()
    by_verdict: dict[str, list[str]] = {}
    for row in rows:
        by_verdict.setdefault(row["verdict"], []).append(row["operation_id"])
    assert set(by_verdict) == ALL_VERDICTS, by_verdict
    counts = httpx.get(f"{served}/api/v1/verdict-counts?from=now-1h&interval=1h", timeout=120)
    assert {r["verdict"] for r in counts.json() if r["count"]} == ALL_VERDICTS


def test_the_pages_show_them(served: str):
    index = httpx.get(f"{served}/", timeout=120)
    assert index.status_code == 200
    for verdict in ALL_VERDICTS:
        assert f"verdict-{verdict}" in index.text, verdict
    rows = httpx.get(f"{served}/api/v1/operations?from=now-1h", timeout=120).json()
    one_each = {row["verdict"]: row for row in rows}
    for verdict, row in one_each.items():
        link = urlsplit(row["diagnosis_url"])
        page = httpx.get(f"{served}{link.path}?{link.query}", timeout=120)
        assert page.status_code == 200, (verdict, page.text[:300])
        assert f"verdict-{verdict}" in page.text
