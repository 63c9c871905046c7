"""Limits on a real gunicorn server: socket connections per address refused over the limit,
logins answered 429 with Retry-After, oversized HTTP bodies 413, an oversized socket message
closes that connection only."""

import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest
import requests
import socketio

from .clients import BrowserSession, LiveSocket
from .conftest import sqlite_server
from .server import LiveServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def limited_server(tmp_path):
    with sqlite_server(
        tmp_path,
        RATELIMIT_SOCKET_CONNECTS_PER_IP="3 per minute",
        RATELIMIT_LOGIN_PER_IP="2 per minute",
        SOCKETIO_MAX_MESSAGE_SIZE="16384",
        MAX_CONTENT_LENGTH="32768",
    ) as server:
        yield server


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
    statuses = [
        session.http.post(limited_server.url + "/login", data=form, timeout=10).status_code
        for _ in range(2)
    ]
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
    response = requests.post(
        limited_server.url + "/table/rows",
        data={"a": "4", "b": "5"},
        headers={"X-CSRFToken": session.token, "HX-Request": "true"},
        cookies=session.http.cookies,
        timeout=10,
    )
    assert response.status_code == 201
    [row] = [
        d
        for d in watcher.wait_for(lambda ev: any(e == "table:row" for e, _ in ev))
        if d[0] == "table:row"
    ]
    assert row[1]["sum"] == 9
    watcher.disconnect()


def worker_rss_mib(server: LiveServer) -> int:
    [pid] = subprocess.run(
        ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) // 1024


def raw_websocket(server: LiveServer) -> socket.socket:
    """A websocket to the server, opened by hand (to send frames no library would)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(
        f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    assert sock.recv(4096).startswith(b"HTTP/1.1 101")
    return sock


def send_until_closed(sock: socket.socket, data: bytes, limit: int) -> int:
    """Send ``data`` over and over until the server closes the connection; bytes sent."""
    sent = 0
    try:
        while sent < limit:
            sock.sendall(data)
            sent += len(data)
    except OSError:
        pass
    return sent


@pytest.mark.parametrize("how", ["one frame", "fragments"])
def test_a_huge_socket_message_is_refused_before_it_fills_the_workers_memory(limited_server, how):
    """A frame that announces 400 MB, or a message sent in many small fragments: the server
    closes the connection once the 16 KiB limit is passed, without reading the rest."""
    session = BrowserSession(limited_server.url)
    watcher = LiveSocket(session).connect()
    before = worker_rss_mib(limited_server)
    sock = raw_websocket(limited_server)
    mask = b"\0\0\0\0"
    if how == "one frame":
        sock.sendall(bytes([0x81, 0x80 | 127]) + struct.pack("!Q", 400 << 20) + mask)
        chunk = b"x" * (1 << 20)
    else:  # a text frame without FIN, then continuation frames of 60 KB, none final
        sock.sendall(bytes([0x01, 0x80 | 1]) + mask + b"4")
        chunk = bytes([0x00, 0x80 | 126]) + struct.pack("!H", 60000) + mask + b"x" * 60000
    sent = send_until_closed(sock, chunk, 100 << 20)
    sock.close()
    grown = worker_rss_mib(limited_server) - before
    print(f"\n{how}: closed after {sent >> 10} KiB sent; worker RSS grew {grown} MiB")
    assert sent < 50 << 20, "the server kept reading"
    assert grown < 20
    assert session.post("/table/rows", {"a": "6", "b": "7"}).status_code == 201
    watcher.wait_for(lambda events: any(d.get("sum") == 13 for e, d in events if e == "table:row"))
    watcher.disconnect()
