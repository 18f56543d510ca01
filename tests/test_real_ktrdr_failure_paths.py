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
# `ktrdr backtest v3_minimal … -m models/v3_minimal/1h_v1 --follow`, completed in 5.2 s
# (run1 case 2)
BACKTEST = "op_backtesting_20261204_154358_5d955ea3"
# `ktrdr data load EURUSD -t 1h` with nothing on :5001 (run1 case 3)
DATA_LOAD = "op_data_load_20261204_154431_10ad325f"

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_source_env")]


def test_a_training_on_two_symbols_names_the_one_whose_data_is_missing(tmp_path: Path) -> None:
    """`ktrdr train v3_minimal --symbols EURUSD,ZZZZ`: EURUSD's bars load, ZZZZ's are not
    cached. The worker names the operation 'EURUSD,ZZZZ', so before the summary said
    'DataNotFoundError for EURUSD,ZZZZ 1h' and the commands were `ktrdr data load
    EURUSD,ZZZZ …`, a symbol the CLI refuses (``cli/data_commands.py``: letters, digits,
    '-' and '.'); the failed span is ZZZZ's."""
    changed = rv.trained_on_symbols(rv.load(TRACES), NO_DATA, "EURUSD", 3097, 235_000_000)
    d = rv.diagnosed(changed, NO_DATA, FINAL, tmp_path)
    assert d["verdict"] == "data_missing", d["summary"]
    assert "for ZZZZ 1h" in d["summary"] and "EURUSD" not in d["summary"], d["summary"]
    assert d["root_cause"]["span_name"] == "training.data_loading"
    assert d["root_cause"]["evidence"]["data.symbol"] == "ZZZZ"
    commands = d["solution"]["commands"]
    assert any(c.startswith("ktrdr data load ZZZZ --timeframe 1h") for c in commands), commands
    assert not any("EURUSD" in c for c in commands), commands


@pytest.mark.parametrize(
    ("message", "named"),
    [
        ("Insufficient data: 12 points available, 26 required for ZZZZ", "ZZZZ"),
        (
            "No aligned samples available: min_len=0, features_len=0, labels_len=3097. One "
            "or both of features/labels are empty after alignment.",
            None,
        ),
    ],
)
def test_a_training_on_two_symbols_failing_with_no_span_of_one_gives_commands_the_cli_takes(
    message: str, named: str | None, tmp_path: Path
) -> None:
    """`ktrdr train v3_minimal --symbols EURUSD,ZZZZ`: both symbols' bars load, then the run
    fails outside any span (only the transition's operation.error says why). An error naming
    ZZZZ narrows the commands to it (already so); one naming neither had the commands say
    `ktrdr data range EURUSD,ZZZZ …`, a symbol KTRDR's CLI refuses. Now each symbol gets its
    own command, and a step says which symbols to check."""
    changed = rv.trained_on_symbols(rv.load(TRACES), NO_DATA, "EURUSD", 3097, 235_000_000)
    changed = rv.failed_past_loading(changed, NO_DATA, 12, message)
    d = rv.diagnosed(changed, NO_DATA, FINAL, tmp_path)
    assert d["verdict"] == "data_missing", d["summary"]
    commands = d["solution"]["commands"]
    assert commands and not any("EURUSD,ZZZZ" in c for c in commands), commands
    if named is not None:
        assert all("ZZZZ" in c and "EURUSD" not in c for c in commands), commands
        return
    for symbol in ("EURUSD", "ZZZZ"):
        assert f"ktrdr data range {symbol} --timeframe 1h" in commands, commands
    assert any("(EURUSD, ZZZZ)" in step for step in d["solution"]["steps"]), d["solution"]
    said = "The operation names several values of its symbol (EURUSD, ZZZZ) and nothing in"
    assert any(step.startswith(said) for step in d["solution"]["steps"]), d["solution"]


def test_a_backtest_whose_model_lacks_the_strategys_features_is_invalid_input(
    tmp_path: Path,
) -> None:
    """The model was trained with other indicators than the strategy now computes:
    ``backtest.feature_compute`` ends in ValueError('Feature mismatch: …'). Already right
    before this test (no test built the error inside the feature phase): invalid input,
    the phase span as the cause, the mismatch quoted, and to pair the model with its own
    strategy."""
    message = (
        "Feature mismatch: missing 3 features.\nMissing: ['1h_rsi_14_high', "
        "'1h_rsi_14_low', '1h_rsi_14_mid']\nThis usually means the strategy config doesn't "
        "match the trained model."
    )
    changed = rv.backtest_features_mismatched(rv.load(TRACES), BACKTEST, message)
    d = rv.diagnosed(changed, BACKTEST, FINAL, tmp_path)
    assert d["verdict"] == "invalid_input", d["summary"]
    assert d["root_cause"]["span_name"] == "backtest.feature_compute"
    assert "Feature mismatch: missing 3 features" in d["summary"], d["summary"]
    assert "ktrdr-backtest-worker-09ec5021" in d["summary"], d["summary"]
    steps = " ".join(d["solution"]["steps"])
    assert "model trained with the same strategy" in steps, steps


def test_a_data_load_of_a_symbol_ib_does_not_know_is_invalid_input(tmp_path: Path) -> None:
    """Host service and Gateway up, symbol unknown to IB: /data/validate answers 200 with
    is_valid false and the backend fails the load 'Symbol ZZZZ not found'; no span is in
    error. Already right before this test (the rule had vectors, no recording): invalid
    input naming the symbol, with the host service's own check to run."""
    changed = rv.data_load_of_an_unknown_symbol(rv.load(TRACES), DATA_LOAD, "ZZZZ")
    d = rv.diagnosed(changed, DATA_LOAD, FINAL, tmp_path)
    assert d["verdict"] == "invalid_input", d["summary"]
    assert "Symbol ZZZZ not found" in d["summary"], d["summary"]
    commands = " ".join(d["solution"]["commands"])
    assert "localhost:5001/data/validate" in commands and '"symbol": "ZZZZ"' in commands


def test_a_training_on_several_timeframes_names_the_one_that_failed_to_load(
    tmp_path: Path,
) -> None:
    """A strategy on 1h, 4h and 1d for a symbol not cached: the multi-timeframe load reads
    the base (1h) first and raises DataError('Failed to load base timeframe 1h for ZZZZ').
    Before: 'No data for ZZZZ 1h,4h,1d' (only 1h was tried) and `ktrdr data load ZZZZ
    --timeframe 1h,4h,1d`, a timeframe the CLI refuses."""
    changed = rv.trained_on_timeframes(rv.load(TRACES), NO_DATA, "1h,4h,1d")
    d = rv.diagnosed(changed, NO_DATA, FINAL, tmp_path)
    assert d["verdict"] == "data_missing", d["summary"]
    assert "for ZZZZ 1h (" in d["summary"], d["summary"]
    commands = d["solution"]["commands"]
    assert any(c.startswith("ktrdr data load ZZZZ --timeframe 1h --mode") for c in commands)
    assert not any("4h" in c for c in commands), commands
    assert "ZZZZ 1h in the requested range" in d["solution"]["steps"][0]


MINIMAL = "op_training_20261204_154305_f6579e1a"  # v3_minimal, 10 epochs on EURUSD: 44.8 s


@pytest.mark.parametrize(("loop_extra_s", "verdict"), [(86, "healthy"), (250, "slow")])
def test_a_training_on_three_symbols_is_judged_by_all_the_data_it_loaded(
    loop_extra_s: int, verdict: str, tmp_path: Path
) -> None:
    """v3_minimal trained again at 16:05 with `--symbols EURUSD,GBPUSD,USDJPY`: three
    training.data_loading of 3,097 rows each, and a loop on three times the samples (2.2
    min against the one-symbol run's 44.8 s). Its size is the three loads' rows, so the
    one-symbol run says 2.2 min is its expected time: healthy (before: 'slow … 2.2 min vs
    baseline 44.8 s', its size read from the first load only). A loop far past that is
    still slow, against the time expected for its 9,291 rows."""
    from opdiag.devtools.score_cases import diagnose_case

    again = "op_training_20261204_160500_f6579e19"
    base = rv.load(TRACES)
    first = diagnose_case(TRACES.parent, {"id": MINIMAL, "upto": None, "now": FINAL}, tmp_path)
    shift = rv.ns("2026-12-04T16:05:00Z") - rv.ns("2026-12-04T15:43:05Z")
    copy = rv.copy_operation(base, set(first["trace_ids"]), {MINIMAL: again}, shift, salt=9)
    copy = rv.trained_on_more_symbols(
        copy, {s["traceId"] for _, _, s in rv.spans(copy)},
        again, ["GBPUSD", "USDJPY"], 235_000_000, loop_extra_s * 10**9,
    )
    root = tmp_path / "again"
    rv.write(base + copy, root / "traces")
    d = diagnose_case(root, {"id": again, "now": "2026-12-04T16:30:00Z"}, tmp_path / "d")
    assert d["verdict"] == verdict, d["summary"]
    c = d["comparison"]
    assert [r["key"] for r in c["runs"]] == [MINIMAL] and c["size"] == 9291, c
    if verdict == "slow":
        assert "vs baseline 2.2 min for its 9,291 data rows" in d["summary"], d["summary"]


def _minimal_again(tmp_path: Path, keep_s: float, rows: int | None = None) -> dict:
    """v3_minimal trained again at 16:05 (MINIMAL's copy), its loop cut to ``keep_s``
    (``loop_cut``), on ``rows`` bars when given (a smaller range), diagnosed at 16:30."""
    from opdiag.devtools.score_cases import diagnose_case

    again = "op_training_20261204_160500_f6579e19"
    base = rv.load(TRACES)
    first = diagnose_case(TRACES.parent, {"id": MINIMAL, "upto": None, "now": FINAL}, tmp_path)
    shift = rv.ns("2026-12-04T16:05:00Z") - rv.ns("2026-12-04T15:43:05Z")
    copy = rv.copy_operation(base, set(first["trace_ids"]), {MINIMAL: again}, shift, salt=9)
    copy = rv.loop_cut(copy, {s["traceId"] for _, _, s in rv.spans(copy)}, int(keep_s * 1e9))
    if rows is not None:

        def fewer(span: dict) -> None:
            for a in span["attributes"]:
                if a["key"] == "data.rows":
                    a["value"] = {"intValue": str(rows)}

        copy = rv.edited(copy, lambda _svc, s: s["name"] == "training.data_loading", fewer)
    root = tmp_path / "again"
    rv.write(base + copy, root / "traces")
    return diagnose_case(root, {"id": again, "now": "2026-12-04T16:30:00Z"}, tmp_path / "d")


def test_a_training_whose_loop_took_no_time_is_told_to_read_its_result(tmp_path: Path) -> None:
    """v3_minimal again, its loss NaN on the first batch: KTRDR's model trainer returns
    {"error": "NaN loss detected on first batch"} and the worker completes the training, its
    span-less loop 0.3 s where the earlier run's took 43 s. Before: 'healthy: completed in
    2.1 s' and nothing else, and the earlier good run, 20 times longer, left out of the
    baseline as slow next to it. Now still healthy (no span failed), with an advisory that
    names the missing loop and says to read the result; the earlier run stays its baseline."""
    d = _minimal_again(tmp_path, 0.3)
    assert d["verdict"] == "healthy", d["summary"]
    (advice,) = [f for f in d["findings"] if f["rule_id"] == "training-completed-too-fast"]
    text = advice["summary"]
    assert "the time after training.data_loading took 300ms" in text, text
    assert "vs baseline 44.8 s" in text, text
    assert "read its result (ktrdr status op_training_20261204_160500_f6579e19)" in text, text
    assert [r["key"] for r in d["comparison"]["runs"]] == [MINIMAL], d["comparison"]


@pytest.mark.parametrize(("keep_s", "rows"), [(43.0, None), (4.0, 280)])
def test_a_training_that_took_its_time_for_its_data_gets_no_such_advice(
    keep_s: float, rows: int | None, tmp_path: Path
) -> None:
    """The same run with its loop as long as the earlier one's, and one on a tenth of the
    bars whose loop takes a tenth of the time: healthy, and not told it was too fast (the
    second is held to its data's share of the earlier run's time; held to the whole run's,
    it would read too fast)."""
    d = _minimal_again(tmp_path, keep_s, rows)
    assert d["verdict"] == "healthy", d["summary"]
    assert not [f for f in d["findings"] if f["rule_id"] == "training-completed-too-fast"]


# `ktrdr data load AAPL -t 1h` against the real IB host service (run1 case 4: the Gateway was
# down); ``loaded_in_segments`` gives it the Gateway up and 30 segments to download
AAPL_LOAD = "op_data_load_20261204_154455_734c9af6"


@pytest.mark.parametrize("now", ["2026-12-04T15:45:27Z", FINAL])
def test_a_data_load_cancelled_while_downloading_says_to_load_it_again(
    now: str, tmp_path: Path
) -> None:
    """Ctrl+C 30 s into the download (segment 9 of 30): the cancel, then the request in
    flight abandoned (its span ends unset: CancelledError is not recorded), no more
    segments, no failure. Cancelled, with no cause. Before: the generic cancel's advice,
    `ktrdr resume`, which for a data load (no checkpoint) answers 404 and marks it
    failed; now to load it again."""
    downloading = rv.loaded_in_segments(
        rv.load(TRACES), AAPL_LOAD, segments=30, failed={}, complete=False
    )
    changed = rv.download_cancelled(downloading, AAPL_LOAD, rv.ns("2026-12-04T15:45:25.300Z"))
    d = rv.diagnosed(changed, AAPL_LOAD, now, tmp_path)
    assert (d["verdict"], d["status"]) == ("cancelled", "cancelled"), d["summary"]
    assert "User requested cancellation via CLI" in d["summary"], d["summary"]
    assert d["root_cause"] is None
    commands = d["solution"]["commands"]
    assert "ktrdr data load AAPL --timeframe 1h --mode tail" in commands, commands
    assert not any("resume" in c for c in commands), commands


def test_a_cancelled_data_load_says_when_the_cancel_came_not_how_long_it_lasted(
    tmp_path: Path,
) -> None:
    """Ctrl+C 29.6 s after the load started (15:44:55.734 to the CLI's DELETE at
    15:45:25.300); its spans run on to the abandoned request's answer, 32.8 s in. Before,
    the summary said '32.8 s in' (the operation's duration, which goes on after the
    cancel); now when the cancel came."""
    downloading = rv.loaded_in_segments(
        rv.load(TRACES), AAPL_LOAD, segments=30, failed={}, complete=False
    )
    changed = rv.download_cancelled(downloading, AAPL_LOAD, rv.ns("2026-12-04T15:45:25.300Z"))
    d = rv.diagnosed(changed, AAPL_LOAD, FINAL, tmp_path)
    assert d["verdict"] == "cancelled", d["summary"]
    assert "at 15:45:25 UTC, 29.6 s in," in d["summary"], d["summary"]
