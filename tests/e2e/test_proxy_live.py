"""Behind a proxy (PROXY_FIX_HOPS=1) on a real gunicorn server: the forwarded scheme makes the
session cookie Secure, and sockets are counted per forwarded client address."""

import pytest
import requests
import socketio

from .conftest import sqlite_server
from .server import LiveServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def proxied_server(tmp_path):
    with sqlite_server(
        tmp_path, PROXY_FIX_HOPS="1", RATELIMIT_SOCKET_CONNECTS_PER_IP="2 per minute"
    ) as server:
        yield server


def forwarded(address: str) -> dict:
    return {
        "X-Forwarded-For": address,
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "chat.example.com",
    }


def cookie_attributes(response) -> set[str]:
    cookie = response.headers["Set-Cookie"]
    return {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}


def connect(server: LiveServer, address: str) -> socketio.Client:
    client = socketio.Client(
        reconnection=False, websocket_extra_options={"origin": "https://chat.example.com"}
    )
    client.connect(
        server.url, transports=["websocket"], headers=forwarded(address), wait_timeout=10
    )
    return client


def test_forwarded_https_and_client_addresses_are_used(proxied_server):
    secure = requests.get(proxied_server.url + "/", headers=forwarded("203.0.113.1"), timeout=10)
    assert {"secure", "httponly", "samesite"} <= cookie_attributes(secure)
    plain = requests.get(proxied_server.url + "/", timeout=10)
    assert "secure" not in cookie_attributes(plain)

    # The page's origin is the proxy's (https://chat.example.com), and each forwarded address
    # has its own count: two sockets from one, a third refused, another address still welcome.
    first = [connect(proxied_server, "203.0.113.1") for _ in range(2)]
    with pytest.raises(socketio.exceptions.ConnectionError):
        connect(proxied_server, "203.0.113.1")
    other = connect(proxied_server, "203.0.113.2")
    for client in [*first, other]:
        assert client.connected
        client.disconnect()
