"""The server limits glibc's malloc arenas (see opdiag.api.server.limit_malloc_arenas)."""

from __future__ import annotations

import sys

import pytest
from opdiag.api import server


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_arena_limit_is_accepted_by_glibc():
    assert server.limit_malloc_arenas() is True


def test_serve_applies_the_arena_limit_before_workers_start(monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(server, "limit_malloc_arenas", lambda: calls.append("arenas") or True)

    def refuse(settings):
        calls.append("build")
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(server, "build_server", refuse)
    assert server.serve(server.Settings()) == 2
    assert calls == ["arenas", "build"]
