"""What a request needs from its app: settings, trace source and service, kept on
``app.extensions`` (never module globals), read through ``current_state()``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from opdiag.settings import Settings

EXTENSION = "opdiag"


@dataclass(slots=True)
class AppState:
    settings: Settings
    source: Any
    service: Any
    store: Any = None  # the verdict store, when the app reads lists from it
    watcher: Any = None  # its watcher (started by the server, not by the factory)


def install_state(app: Flask, state: AppState) -> None:
    app.extensions[EXTENSION] = state


def current_state() -> AppState:
    """The state of the app serving the current request."""
    state: AppState = current_app.extensions[EXTENSION]
    return state
