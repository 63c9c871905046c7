"""Limits on a real gunicorn server: socket connections per address refused over the limit,
logins answered 429 with Retry-After, oversized HTTP bodies 413, an oversized socket message
closes that connection only."""

import time

import pytest
import requests
import socketio

from .clients import BrowserSession, LiveSocket
from .server import LiveServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def limited_server(tmp_path):
    server = LiveServer(
        {"SECRET_KEY": "e2e-secret", "DATABASE_URL": f"sqlite:///{tmp_path / 'e2e.db'}",
         "MESSAGE_QUEUE_URL": "", "RATELIMIT_SOCKET_CONNECTS_PER_IP": "3 per minute",
         "RATELIMIT_LOGIN_PER_IP": "2 per minute", "SOCKETIO_MAX_MESSAGE_SIZE": "16384",
         "MAX_CONTENT_LENGTH": "32768"},
        log_path=tmp_path / "gunicorn.log",
    )
    server.migrate()
    server.start()
    yield server
    server.stop()


def test_socket_connections_over_the_limit_are_refused(limited_server):
    session = BrowserSession(limited_server.url)
    sockets = [LiveSocket(session).connect() for _ in range(3)]
    refused, reasons = LiveSocket(session), []
    refused.client.on("connect_error", reasons.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        refused.connect()
    assert "Too many connections from your address" in reasons[0]["message"], reasons
    # The connections already open keep working, and so does HTTP.
    assert session.post("/table/rows", {"a": "2", "b": "3"}).status_code == 201
    for sock in sockets:
        sock.wait_for(lambda events: any(e == "table:row" for e, _ in events))
        sock.disconnect()


def test_logins_over_the_limit_get_429_with_retry_after(limited_server):
    session = BrowserSession(limited_server.url)
    form = {"username": "nobody", "password": "wrong password", "csrf_token": session.token}
    statuses = [session.http.post(limited_server.url + "/login", data=form, timeout=10).status_code
                for _ in range(2)]
    assert statuses == [422, 422]
    refused = session.http.post(limited_server.url + "/login", data=form, timeout=10)
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "Too many login attempts from your address." in refused.text


def test_an_oversized_http_body_gets_413(limited_server):
    session = BrowserSession(limited_server.url)
    response = session.post("/chat/general/messages", {"body": "x" * 40000})
    assert response.status_code == 413
    assert "too much data" in response.text and "32 KiB" in response.text
    # A normal request right after is served.
    assert session.post("/table/rows", {"a": "1", "b": "1"}).status_code == 201


def test_an_oversized_socket_message_closes_that_connection_only(limited_server):
    session = BrowserSession(limited_server.url)
    sender, watcher = LiveSocket(session).connect(), LiveSocket(session).connect()
    sender.client.emit("chat:typing", {"room": "general", "pad": "x" * 20000})
    deadline = time.monotonic() + 10
    while sender.client.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sender.client.connected, "the big sender was not disconnected"
    assert watcher.client.connected
    response = requests.post(limited_server.url + "/table/rows", data={"a": "4", "b": "5"},
                             headers={"X-CSRFToken": session.token, "HX-Request": "true"},
                             cookies=session.http.cookies, timeout=10)
    assert response.status_code == 201
    [row] = [d for d in watcher.wait_for(lambda ev: any(e == "table:row" for e, _ in ev))
             if d[0] == "table:row"]
    assert row[1]["sum"] == 9
    watcher.disconnect()
