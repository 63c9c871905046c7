"""/healthz and the message queue when a dependency is down or stopped answering.

A "black hole" is a port that accepts connections and never answers: the worst case, because
only timeouts end the wait. Nothing here needs a running service.
"""

import socket
import time

import pytest

from webapp import create_app
from webapp.health import check_queue

from .conftest import make_config


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: connections are refused


@pytest.mark.parametrize("scheme", ["redis://{}/0", "amqp://guest:guest@{}//"])
def test_a_queue_that_never_answers_is_down_within_seconds(scheme, black_hole):
    started = time.monotonic()
    assert check_queue(scheme.format(black_hole)) == "down"
    assert time.monotonic() - started < 8


@pytest.mark.parametrize("scheme", ["redis://{}/0", "amqp://guest:guest@{}//"])
def test_a_refused_queue_is_down_at_once(scheme):
    started = time.monotonic()
    assert check_queue(scheme.format(f"127.0.0.1:{dead_port()}")) == "down"
    assert time.monotonic() - started < 3


def test_healthz_answers_503_quickly_when_the_database_never_answers(black_hole, monkeypatch):
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "2")
    app = create_app(make_config(f"postgresql+psycopg://postgres@{black_hole}/app"))
    started = time.monotonic()
    response = app.test_client().get("/healthz")
    assert time.monotonic() - started < 8
    assert response.status_code == 503
    assert response.get_json() == {"db": "down", "queue": "off"}


def test_healthz_answers_503_when_the_database_is_gone(tmp_path):
    app = create_app(make_config(f"postgresql+psycopg://postgres@127.0.0.1:{dead_port()}/app"))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503 and response.get_json()["db"] == "down"
