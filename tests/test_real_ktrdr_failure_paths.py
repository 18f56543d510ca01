"""Failure paths of KTRDR's workers and data load that run1 did not exercise, built from run1
(``real_variants``) as KTRDR's code at the recorded commit says their spans look, with the
diagnosis a correct reading gives (each builder names the code it follows)."""

from __future__ import annotations

from pathlib import Path

import pytest
import real_variants as rv
from conftest import REAL_KTRDR

TRACES = REAL_KTRDR / "run1" / "traces"
FINAL = "2026-12-04T16:10:00Z"
# `ktrdr train v3_minimal --symbols ZZZZ`: training.data_loading raised DataNotFoundError
# (run1 case 15)
NO_DATA = "op_training_20261204_155455_c5babf81"

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_source_env")]


def test_a_training_on_two_symbols_names_the_one_whose_data_is_missing(tmp_path: Path) -> None:
    """`ktrdr train v3_minimal --symbols EURUSD,ZZZZ`: EURUSD's bars load, ZZZZ's are not
    cached. The worker names the operation 'EURUSD,ZZZZ', so before the summary said
    'DataNotFoundError for EURUSD,ZZZZ 1h' and the commands were `ktrdr data load
    EURUSD,ZZZZ …`, which asks for one symbol of that name; the failed span is ZZZZ's."""
    changed = rv.trained_on_symbols(rv.load(TRACES), NO_DATA, "EURUSD", 3097, 235_000_000)
    d = rv.diagnosed(changed, NO_DATA, FINAL, tmp_path)
    assert d["verdict"] == "data_missing", d["summary"]
    assert "for ZZZZ 1h" in d["summary"] and "EURUSD" not in d["summary"], d["summary"]
    assert d["root_cause"]["span_name"] == "training.data_loading"
    assert d["root_cause"]["evidence"]["data.symbol"] == "ZZZZ"
    commands = d["solution"]["commands"]
    assert any(c.startswith("ktrdr data load ZZZZ --timeframe 1h") for c in commands), commands
    assert not any("EURUSD" in c for c in commands), commands
