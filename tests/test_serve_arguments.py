"""``opdiag serve`` refuses bad listen addresses and Jaeger URLs with exit 2, naming the value
(issue 11, item 15), before anything listens."""

from __future__ import annotations

import socket

import pytest
from opdiag.cli.main import main
from opdiag.errors import InputError
from opdiag.settings import load_settings


@pytest.fixture(autouse=True)
def _never_serve(monkeypatch):
    """Should a bad value slip through, the server stops at once instead of the test hanging."""
    from opdiag.api import server as server_module

    real = server_module.build_server

    def build_and_disarm(settings):
        server, state = real(settings)
        server.run = lambda: None
        return server, state

    monkeypatch.setattr(server_module, "build_server", build_and_disarm)


def _serve(capsys, demo_traces, *extra: str) -> tuple[int, str]:
    status = main(["serve", "--traces", str(demo_traces), *extra])
    captured = capsys.readouterr()
    assert "opdiag serving" not in captured.out  # nothing was served
    return status, captured.err


@pytest.mark.parametrize("port", ["99999", "-1", "65536", "http", "80.5"])
def test_a_bad_port_exits_2_naming_it(capsys, demo_traces, port):
    status, err = _serve(capsys, demo_traces, "--port", port)
    assert status == 2, err
    assert port in err and "--port" in err
    assert "internal error" not in err


@pytest.mark.parametrize("host", ["not a host!!", "999.1.1.1", "::1::", "-"])
def test_a_bad_host_exits_2_naming_it(capsys, demo_traces, host):
    status, err = _serve(capsys, demo_traces, "--host", host, "--port", "0")
    assert status == 2, err
    assert host in err
    assert "internal error" not in err


def test_a_busy_port_exits_2_naming_it(capsys, demo_traces):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        status, err = _serve(capsys, demo_traces, "--host", "127.0.0.1", "--port", port)
    assert status == 2, err
    assert f"127.0.0.1:{port}" in err and "in use" in err


@pytest.mark.parametrize("url", ["notaurl", "http://", "ftp://jaeger:16686", "localhost:16686"])
def test_a_bad_jaeger_url_is_bad_usage(capsys, url):
    status = main(["serve", "--jaeger-url", url, "--port", "0"])
    err = capsys.readouterr().err
    assert status == 2, err
    assert url in err and "jaeger" in err.lower()
    status = main(["diagnose", "x", "--jaeger-url", url])
    assert status == 2
    assert url in capsys.readouterr().err


def test_a_bad_jaeger_url_from_the_environment_is_named():
    with pytest.raises(InputError) as info:
        load_settings(environ={"JAEGER_URL": "notaurl"})
    assert "notaurl" in info.value.message and info.value.field == "jaeger.url"


def test_a_bad_port_from_the_environment_is_named():
    with pytest.raises(InputError) as info:
        load_settings(environ={"OPDIAG_PORT": "99999"})
    assert "99999" in info.value.message and info.value.field == "server.port"


def test_good_values_still_load():
    settings = load_settings(
        environ={"JAEGER_URL": "http://jaeger:16686/", "OPDIAG_PORT": "0"}
    )
    assert settings.jaeger.url == "http://jaeger:16686/"
    assert settings.server.port == 0


def test_links_lead_back_to_the_port_served():
    """A server started with --port wrote links to :8080, where nothing listened: every
    diagnosis_url of its list and annotations. OPDIAG_PUBLIC_URL (a proxy's address) wins."""
    import argparse

    from opdiag.cli.commands import build_settings

    args = argparse.Namespace(traces=None, jaeger_url=None, port=18431, host="127.0.0.1")
    assert build_settings(args, serve=True).links.opdiag_url == "http://localhost:18431"
    other = argparse.Namespace(traces=None, jaeger_url=None, port=9000, host="10.1.2.3")
    assert build_settings(other, serve=True).links.opdiag_url == "http://10.1.2.3:9000"
    v6 = load_settings(environ={}, overrides={"server": {"host": "fd00::5", "port": 9}})
    assert v6.links.opdiag_url == "http://[fd00::5]:9"
    public = load_settings(
        environ={"OPDIAG_PUBLIC_URL": "https://opdiag.example"},
        overrides={"server": {"port": 18431}},
    )
    assert public.links.opdiag_url == "https://opdiag.example"
    assert load_settings(environ={}).links.opdiag_url == "http://localhost:8080"
