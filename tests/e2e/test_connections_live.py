"""Connections that hold a worker's slots without using them, on gunicorn with raw TCP sockets:
silent and half-sent connections are closed after their timeout, an Engine.IO connection that
never sends its Socket.IO CONNECT too, and open connections per client address are capped."""

import json
import shutil
import socket
import subprocess
import time

import pytest
import requests
import socketio
import websocket

from .clients import BrowserSession, LiveSocket
from .conftest import sqlite_server
from .server import ROOT

pytestmark = pytest.mark.e2e

TIMEOUT = 2  # seconds, every timeout of these servers
CLOSED_WITHIN = 10  # seconds a test waits for a close that should come after TIMEOUT


@pytest.fixture(scope="module")
def timed_server(tmp_path_factory):
    with sqlite_server(
        tmp_path_factory.mktemp("timeouts"),
        CONNECTION_IDLE_TIMEOUT=str(TIMEOUT),
        REQUEST_READ_TIMEOUT=str(TIMEOUT),
        SOCKETIO_CONNECT_TIMEOUT=str(TIMEOUT),
    ) as server:
        yield server


def connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=CLOSED_WITHIN)
    return sock


def read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took.
    Fails if the connection is still open after CLOSED_WITHIN seconds."""
    start, data = time.monotonic(), b""
    sock.settimeout(CLOSED_WITHIN)
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        raise AssertionError(
            f"still open after {CLOSED_WITHIN}s; received {data[:300]!r}"
        ) from None
    except ConnectionResetError:
        pass
    return data, time.monotonic() - start


def request(server, path: str = "/healthz", headers: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n{headers}\r\n".encode()


def test_a_silent_connection_is_closed_after_the_idle_timeout(timed_server):
    sock = connect(timed_server)
    data, seconds = read_until_closed(sock)
    assert data == b""
    print(f"\nsilent connection closed after {seconds:.1f}s")


def test_an_idle_keep_alive_connection_is_closed_after_its_last_response(timed_server):
    sock = connect(timed_server)
    sock.sendall(request(timed_server))
    data, _ = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 ") and b'"db":"ok"' in data.replace(b" ", b"")


@pytest.mark.parametrize(
    "sent",
    [
        b"GET /healthz HTT",  # half a request line
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: te",  # headers without their end
    ],
    ids=["request line", "headers"],
)
def test_a_half_sent_request_is_closed(timed_server, sent):
    sock = connect(timed_server)
    sock.sendall(sent)
    data, _ = read_until_closed(sock)
    if b"\r\n" in sent:  # the request line came: the client is told
        assert data.startswith(b"HTTP/1.1 408 ")
        assert b"took too long to arrive" in data


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_a_half_sent_body_is_answered_408_and_closed(timed_server, accept):
    session = BrowserSession(timed_server.url)
    sock = connect(timed_server)
    body = b"a=1&b=2&csrf_token=" + session.token.encode()
    sock.sendall(
        b"POST /table/rows HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: %s\r\nCookie: %s\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
        % (
            timed_server.port,
            accept.encode(),
            session.cookie_header().encode(),
            len(body) + 100,
            body,
        )
    )
    data, _ = read_until_closed(sock)
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), data[:300]
    if accept == "application/json":
        assert json.loads(payload) == {
            "ok": False,
            "error": "The request took too long to arrive. Try again.",
        }
    else:
        assert b"The request took too long to arrive" in payload
    # Nothing was stored.
    assert 'id="row-' not in session.load("/")


@pytest.mark.parametrize("pause", [TIMEOUT * 0.25, TIMEOUT * 0.6])
def test_a_body_is_served_if_it_arrives_in_time_however_it_trickles(timed_server, pause):
    """Three parts of a small body: within the timeout in all, served; over it, 408."""
    session = BrowserSession(timed_server.url)
    sock = connect(timed_server)
    body = b"a=20&b=22&csrf_token=" + session.token.encode()
    sock.sendall(
        b"POST /table/rows HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nCookie: %s\r\nHX-Request: true\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
        % (timed_server.port, session.cookie_header().encode(), len(body))
    )
    try:
        for part in (body[:5], body[5:10], body[10:]):
            time.sleep(pause)
            sock.sendall(part)
    except BrokenPipeError:
        pass
    data, _ = read_until_closed(sock)
    in_time = pause * 3 < TIMEOUT
    assert data.startswith(b"HTTP/1.1 201 " if in_time else b"HTTP/1.1 408 "), data[:300]


def engineio_only(server) -> websocket.WebSocket:
    """An Engine.IO websocket that gets its OPEN packet and never sends a Socket.IO CONNECT."""
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket",
        timeout=CLOSED_WITHIN,
    )
    assert ws.recv().startswith("0{")
    return ws


def wait_closed(ws: websocket.WebSocket) -> float:
    start = time.monotonic()
    try:
        while True:
            frame = ws.recv()
            if frame == "2":  # a ping: answer it, as a client that keeps it alive would
                ws.send("3")
            elif not frame:
                break
    except websocket.WebSocketTimeoutException:
        raise AssertionError(f"still open after {CLOSED_WITHIN}s") from None
    except (websocket.WebSocketConnectionClosedException, ConnectionResetError):
        pass
    return time.monotonic() - start


def test_an_engineio_connection_without_socketio_connect_is_closed(timed_server):
    ws = engineio_only(timed_server)
    print(f"\nclosed after {wait_closed(ws):.1f}s")
    # A client that connects properly stays connected past that time.
    session = BrowserSession(timed_server.url)
    live = LiveSocket(session).connect()
    time.sleep(TIMEOUT + 1)
    assert live.client.connected
    assert live.client.call("chat:join", {"room": "general"}, timeout=10) == {
        "ok": False,
        "error": "Log in to chat.",
    }
    live.disconnect()


def test_silent_connections_no_longer_starve_a_worker(tmp_path):
    """100 silent connections fill a worker of WORKER_CONNECTIONS=100; after the idle timeout
    they are gone and a normal request is answered."""
    with sqlite_server(
        tmp_path, WORKER_CONNECTIONS="100", CONNECTION_IDLE_TIMEOUT=str(TIMEOUT)
    ) as server:
        silent = [connect(server) for _ in range(100)]
        time.sleep(0.5)
        start = time.monotonic()
        response = requests.get(server.url + "/healthz", timeout=3 * CLOSED_WITHIN)
        print(f"\nanswered after {time.monotonic() - start:.1f}s")
        assert response.status_code == 200
        for sock in silent:
            assert read_until_closed(sock)[0] == b""


def over_cap(response: requests.Response, cap: int) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert f"Too many open connections from your address (at most {cap} at once)" in (response.text)


def test_the_cap_counts_engineio_connections_and_refuses_the_next(tmp_path):
    with sqlite_server(
        tmp_path, MAX_CONNECTIONS_PER_IP="3", SOCKETIO_CONNECT_TIMEOUT=str(TIMEOUT)
    ) as server:
        held = [engineio_only(server) for _ in range(3)]
        over_cap(requests.get(server.url + "/", timeout=10), 3)
        refused = requests.get(
            server.url + "/table/rows", headers={"Accept": "application/json"}, timeout=10
        )
        assert refused.status_code == 429
        assert (
            refused.json()["ok"] is False
            and "Too many open connections" in (refused.json()["error"])
        )
        with pytest.raises(websocket.WebSocketBadStatusException) as error:
            engineio_only(server)
        assert error.value.status_code == 429
        # They never sent a Socket.IO CONNECT: closed after the timeout, which frees the cap.
        for ws in held:
            wait_closed(ws)
        assert requests.get(server.url + "/", timeout=10).status_code == 200


def test_the_cap_refuses_the_next_socket_and_answers_again_once_one_closes(tmp_path):
    with sqlite_server(tmp_path, MAX_CONNECTIONS_PER_IP="3") as server:
        session = BrowserSession(server.url)
        session.http.close()  # its keep-alive connection would count too
        sockets = [LiveSocket(session).connect() for _ in range(3)]
        with pytest.raises(socketio.exceptions.ConnectionError):
            LiveSocket(session).connect()
        over_cap(requests.get(server.url + "/", timeout=10), 3)
        # The sockets already open keep working.
        assert sockets[0].client.call("chat:join", {"room": "general"}, timeout=10) == {
            "ok": False,
            "error": "Log in to chat.",
        }
        sockets.pop().disconnect()
        deadline = time.monotonic() + CLOSED_WITHIN
        while (status := requests.get(server.url + "/", timeout=10).status_code) == 429:
            assert time.monotonic() < deadline, "still refused after a socket closed"
            time.sleep(0.1)
        assert status == 200
        sockets.append(LiveSocket(session).connect())
        for sock in sockets:
            sock.disconnect()


def test_the_cap_counts_the_forwarded_address_behind_a_proxy(tmp_path):
    with sqlite_server(tmp_path, MAX_CONNECTIONS_PER_IP="2", PROXY_FIX_HOPS="1") as server:

        def keep_alive(client: str) -> tuple[socket.socket, bytes]:
            sock = connect(server)
            sock.sendall(request(server, headers=f"X-Forwarded-For: {client}\r\n"))
            return sock, sock.recv(65536)

        held = [keep_alive("203.0.113.7") for _ in range(2)]
        assert all(answer.startswith(b"HTTP/1.1 200 ") for _, answer in held)
        _, third = keep_alive("203.0.113.7")
        assert third.startswith(b"HTTP/1.1 429 ") and b"Retry-After: " in third
        _, other = keep_alive("198.51.100.9")
        assert other.startswith(b"HTTP/1.1 200 ")


def test_the_cap_is_off_with_0(tmp_path):
    with sqlite_server(tmp_path, MAX_CONNECTIONS_PER_IP="0") as server:
        session = BrowserSession(server.url)
        sockets = [LiveSocket(session).connect() for _ in range(20)]
        assert requests.get(server.url + "/", timeout=10).status_code == 200
        for sock in sockets:
            sock.disconnect()


NODE_CLIENT = """
import { io } from "socket.io-client";
const socket = io(process.argv[1], {
  transports: ["websocket"], reconnectionDelay: 200, reconnectionDelayMax: 1000,
});
let errors = 0;
socket.on("connect_error", () => { if (errors++ === 0) console.log("refused"); });
socket.on("connect", () => { console.log(`connected after ${errors} refusals`); process.exit(0); });
setTimeout(() => process.exit(1), 30000);
"""


def test_a_socket_refused_over_the_cap_is_retried_by_socket_io_client(tmp_path):
    """What a page does: socket.io-client keeps trying by itself and gets in once a slot frees."""
    if not shutil.which("node") or not (ROOT / "node_modules" / "socket.io-client").is_dir():
        pytest.skip("needs node and node_modules (make install)")
    with sqlite_server(tmp_path, MAX_CONNECTIONS_PER_IP="2") as server:
        session = BrowserSession(server.url)
        session.http.close()
        sockets = [LiveSocket(session).connect() for _ in range(2)]
        node = subprocess.Popen(
            ["node", "--input-type=module", "-e", NODE_CLIENT, server.url],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert node.stdout.readline().strip() == "refused"
        sockets.pop().disconnect()
        assert node.wait(30) == 0
        assert node.stdout.readline().startswith("connected after ")
        sockets[0].disconnect()
