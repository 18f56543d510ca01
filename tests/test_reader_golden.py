"""The reader gives the same model as the reader it replaced, on every fixture, the demo and
real KTRDR corpora, every whitespace style and hundreds of mutated (hostile) inputs; and the
style of a file never changes its model."""

from __future__ import annotations

import json

from reader_golden import GOLDEN, compute


def test_models_match_the_frozen_reader():
    golden = json.loads(GOLDEN.read_text())
    now = compute()
    assert now.keys() == golden.keys()
    differ = [f"{name}: {golden[name][:90]} -> {now[name][:90]}"
              for name in golden if now[name] != golden[name]]
    assert not differ, f"{len(differ)} input(s) parse differently:\n" + "\n".join(differ[:20])


def test_whitespace_and_key_order_do_not_matter():
    golden = json.loads(GOLDEN.read_text())
    styled = [name for name in golden if " [" in name]
    assert len(styled) > 100
    for name in styled:
        assert golden[name] == golden[name.rsplit(" [", 1)[0]], name
