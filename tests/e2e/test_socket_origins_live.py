"""SOCKETIO_ALLOWED_ORIGINS over real websockets: listed origins join the page's own one."""

import pytest
import socketio

from .clients import BrowserSession, LiveSocket
from .server import LiveServer

pytestmark = pytest.mark.e2e


def test_listed_and_own_origins_open_a_socket_and_a_foreign_one_cannot(tmp_path):
    server = LiveServer(
        {
            "SECRET_KEY": "e2e-secret",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'e2e.db'}",
            "MESSAGE_QUEUE_URL": "",
            "SOCKETIO_ALLOWED_ORIGINS": "https://partner.example",
        },
        log_path=tmp_path / "gunicorn.log",
    )
    server.migrate()
    server.start()
    try:
        session = BrowserSession(server.url)
        foreign = LiveSocket(session, origin="http://evil.example")
        with pytest.raises((socketio.exceptions.ConnectionError, ValueError)):
            foreign.connect()
        assert not foreign.client.connected
        for origin in (None, server.url, "https://partner.example"):  # None: the client's own
            sock = LiveSocket(session, origin=origin).connect()
            assert sock.client.connected, origin
            sock.disconnect()
    finally:
        server.stop()
