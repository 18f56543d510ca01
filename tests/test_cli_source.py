"""Which trace source the CLI ends up with: flags, environment, demo, none."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from opdiag.cli.commands import build_settings
from opdiag.cli.main import main
from opdiag.errors import InputError
from opdiag.settings import Settings
from opdiag.sources.factory import NO_SOURCE_MESSAGE, make_source
from opdiag.sources.files import FileSource
from opdiag.sources.jaeger import JaegerSource


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("JAEGER_URL", "OPDIAG_JAEGER_URL", "OPDIAG_TRACES", "OPDIAG_RULES",
                "OPDIAG_CONFIG", "OPDIAG_DEMO_TRACES"):
        monkeypatch.delenv(var, raising=False)


def args(**kw) -> argparse.Namespace:
    base = {"traces": [], "jaeger_url": None, "rules": [], "config": None}
    base.update(kw)
    return argparse.Namespace(**base)


def test_traces_make_a_file_source(tmp_path):
    source = make_source(Settings(trace_paths=[tmp_path]))
    assert isinstance(source, FileSource)


def test_jaeger_url_makes_a_jaeger_source():
    source = make_source(Settings.model_validate({"jaeger": {"url": "http://jaeger:16686"}}))
    assert isinstance(source, JaegerSource)
    close = getattr(source, "close", None)
    if callable(close):
        close()


def test_demo_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("OPDIAG_DEMO_TRACES", str(tmp_path))
    source = make_source(Settings(use_demo=True))
    assert isinstance(source, FileSource) and source.paths == [tmp_path]
    with pytest.raises(InputError) as info:
        make_source(Settings())
    assert info.value.message == NO_SOURCE_MESSAGE


def test_jaeger_url_flag_beats_traces_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("OPDIAG_TRACES", str(tmp_path))
    settings = build_settings(args(jaeger_url="http://j:16686"))
    assert settings.trace_paths == [] and settings.jaeger.url == "http://j:16686"


def test_jaeger_url_from_the_environment(monkeypatch):
    monkeypatch.setenv("JAEGER_URL", "http://env-jaeger:16686")
    assert build_settings(args()).jaeger.url == "http://env-jaeger:16686"


def test_rules_flag_adds_to_configured_packs(tmp_path, monkeypatch):
    configured = tmp_path / "team.yaml"
    extra = tmp_path / "extra.yaml"
    configured.write_text("x: 1\n")
    extra.write_text("x: 1\n")
    monkeypatch.setenv("OPDIAG_RULES", str(configured))
    settings = build_settings(args(rules=[str(extra)]))
    assert settings.rule_packs == [configured, extra]


def test_missing_rule_pack_is_bad_input(capsys, tmp_path):
    trace_file = tmp_path / "t.json"
    trace_file.write_text('{"data": []}')
    code = main(["diagnose", "x", "--traces", str(trace_file), "--rules",
                 str(tmp_path / "nope.yaml")])
    err = capsys.readouterr().err
    assert code == 2 and "nope.yaml" in err


def test_bad_config_file_is_bad_input(capsys, tmp_path):
    config = tmp_path / "opdiag.yaml"
    config.write_text("diagnosis: {stuck_after_s: soon}\n")
    code = main(["diagnose", "x", "--traces", str(tmp_path), "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and "diagnosis.stuck_after_s" in err


def test_serve_prefers_given_sources(tmp_path):
    settings = build_settings(args(traces=[str(tmp_path)], host=None, port=None), serve=True)
    assert not settings.use_demo and settings.trace_paths == [Path(tmp_path)]


@pytest.mark.parametrize(
    ("flag", "env", "seconds"),
    [
        (None, None, 6 * 3600.0),
        ("3d", None, 3 * 86400.0),
        (None, "90m", 5400.0),
        (None, "7200", 7200.0),  # plain numbers are seconds
        ("1w", "90m", 7 * 86400.0),  # the flag wins
    ],
)
def test_the_look_back_from_the_flag_or_the_environment(monkeypatch, flag, env, seconds):
    monkeypatch.delenv("OPDIAG_JAEGER_LOOKBACK", raising=False)
    if env is not None:
        monkeypatch.setenv("OPDIAG_JAEGER_LOOKBACK", env)
    got = build_settings(args(jaeger_url="http://jaeger:16686", lookback=flag))
    assert got.jaeger.lookback_s == seconds


@pytest.mark.parametrize("value", ["soon", "0", "-3h", "3 days"])
def test_a_bad_look_back_is_bad_usage(monkeypatch, capsys, value):
    monkeypatch.delenv("OPDIAG_JAEGER_LOOKBACK", raising=False)
    argv = ["operations", "--jaeger-url", "http://127.0.0.1:9", "--lookback", value]
    assert main(argv) == 2
    assert "--lookback" in capsys.readouterr().err
    monkeypatch.setenv("OPDIAG_JAEGER_LOOKBACK", value)
    assert main(argv[:3]) == 2
    assert "OPDIAG_JAEGER_LOOKBACK" in capsys.readouterr().err
