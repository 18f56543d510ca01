"""The Dockerfile that docker-compose builds: the same package as a local install, every
directory the package needs, a non-root user, and a /readyz healthcheck on opdiag's port.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml
from opdiag.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SETTINGS = Settings()


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (REPO / "Dockerfile").read_text()
    logical: list[str] = []
    current = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip()[:-1] + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(x.split(None, 1)[0].upper(), x.split(None, 1)[1]) for x in logical]


INSTR = _instructions()
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _values(name: str) -> list[str]:
    return [args for instr, args in INSTR if instr == name]


def _pip_installs(command: str) -> list[list[str]]:
    """Arguments (options dropped) of every ``pip install`` in a shell command."""
    found = []
    for part in re.split(r"&&|;", command):
        words = shlex.split(part)
        if any(w == "pip" or w.endswith("/pip") for w in words) and "install" in words:
            rest = words[words.index("install") + 1:]
            found.append([w for w in rest if not w.startswith("-")])
    return found


def test_the_image_installs_this_project_like_make_does():
    image = [args for run in _values("RUN") for args in _pip_installs(run)]
    assert image, "the Dockerfile installs nothing with pip"
    assert all(len(a) == 1 for a in image), image
    (spec,) = image[0]
    assert re.fullmatch(r"\.(\[[\w,]+\])?", spec), f"installs {spec!r}, not this project"
    make = (REPO / "Makefile").read_text()
    local = [args for line in make.splitlines() for args in _pip_installs(line.strip())]
    assert any(re.fullmatch(r"\.(\[[\w,]+\])?", a[-1]) for a in local if a), local
    # The image's extras exist, bring the demo (the compose demo services run from it), and
    # are part of what the tests install.
    extras = re.findall(r"\w+", spec[1:])
    optional = PYPROJECT["project"]["optional-dependencies"]
    assert "demo" in extras and all(e in optional for e in extras)
    assert "opdiag[demo]" in optional["test"]
    assert "install opdiag" in (REPO / "README.md").read_text()


def test_the_image_copies_every_package_directory():
    copied = {c for args in _values("COPY") for c in shlex.split(args)[:-1]}
    where = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["where"]
    for folder in where:
        assert folder in copied, f"{folder}/ is not copied into the image"
    assert {"pyproject.toml", "README.md"} <= copied  # the build reads both
    workdir = _values("WORKDIR")[-1]
    env = " ".join(_values("ENV"))
    assert f"OPDIAG_DEMO_TRACES={workdir}/demo/traces" in env


def test_the_image_runs_as_a_non_root_user():
    users = _values("USER")
    assert users, "no USER: the image runs as root"
    user = users[-1]
    assert user not in ("root", "0") and not user.startswith("0:")
    created = re.search(r"useradd\b.*--uid (\d+).* (\w+)$", " ".join(_values("RUN")))
    assert created and created.group(2) == user
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert compose["services"]["opdiag"]["user"] == created.group(1)


def test_the_image_serves_opdiag_with_a_readyz_healthcheck():
    port = SETTINGS.server.port
    env = " ".join(_values("ENV"))
    assert f"OPDIAG_PORT={port}" in env and "OPDIAG_HOST=0.0.0.0" in env
    assert str(port) in _values("EXPOSE")[-1].split()
    (health,) = _values("HEALTHCHECK")
    assert f"http://127.0.0.1:{port}/readyz" in health
    cmd = _values("CMD")[-1]
    assert shlex.split(cmd.strip("[]").replace(",", " ")) == ["opdiag", "serve"]
    assert "opdiag" in PYPROJECT["project"]["scripts"]


@pytest.mark.parametrize("module", ["ktrdr_sim.live", "ktrdr_sim.live.probe"])
def test_the_commands_compose_runs_in_the_image_exist(module):
    path = REPO / "demo" / Path(*module.split("."))
    assert (path / "__main__.py").is_file() or path.with_suffix(".py").is_file()


def test_the_verdict_store_lives_on_a_volume_the_user_owns():
    env = " ".join(_values("ENV"))
    match = re.search(r"OPDIAG_STORE_PATH=(\S+)", env)
    assert match, "the image sets no store path"
    folder = str(Path(match.group(1)).parent)
    assert folder in _values("VOLUME")[-1].split()
    created = re.search(r"useradd\b.*--uid (\d+)", " ".join(_values("RUN")))
    assert created and f"install -d -o {created.group(1)} {folder}" in " ".join(_values("RUN"))
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    opdiag = compose["services"]["opdiag"]
    assert str(Path(opdiag["environment"]["OPDIAG_STORE_PATH"]).parent) == folder
    volume, target = opdiag["volumes"][0].split(":")
    assert target == folder and volume in compose["volumes"]
