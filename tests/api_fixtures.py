"""pytest fixtures of the API, web and simpod tests (flaskr's conftest, as a plugin module):
``settings``, a fake ``service``, the ``app`` built from them and its test ``client``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_support import FakeService, make_settings
from flask import Flask
from flask.testing import FlaskClient
from opdiag.api.app import create_app
from opdiag.settings import Settings


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def service(settings: Settings) -> FakeService:
    return FakeService(settings)


@pytest.fixture
def app(settings: Settings, service: FakeService) -> Flask:
    flask_app = create_app(settings, service=service, source=service.source)
    flask_app.testing = True
    return flask_app


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as test_client:
        yield test_client
