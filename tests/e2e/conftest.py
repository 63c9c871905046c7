from contextlib import contextmanager

import pytest

from .server import LiveServer


@contextmanager
def sqlite_server(tmp_path, **settings: str):
    """gunicorn with one gevent websocket worker on SQLite in ``tmp_path``, with ``settings``."""
    server = LiveServer(
        {
            "SECRET_KEY": "e2e-secret",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'e2e.db'}",
            "MESSAGE_QUEUE_URL": "",
            **settings,
        },
        log_path=tmp_path / "gunicorn.log",
    )
    server.migrate()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def live_server(tmp_path):
    """gunicorn with one gevent websocket worker on SQLite, as `make run` serves it."""
    with sqlite_server(tmp_path) as server:
        yield server


# Scale-out fixtures: several workers and hosts on PostgreSQL and a message queue.
from .cluster import balancer, cluster, own_redis, postgres_url  # noqa: F401
