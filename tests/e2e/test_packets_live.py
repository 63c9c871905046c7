"""A Socket.IO packet the server refuses (malformed, binary) closes that client's connection, on
gunicorn with real clients: the client sees its transport close, reconnects by itself, and its
next event is answered and broadcasts reach it again. Nobody else is disturbed.

The official Node client (socket.io-client from node_modules, driven by refused_packet.mjs)
and python-socketio each send the bad packet raw on their own websocket.
"""

import itertools
import json
import shutil
import subprocess
import threading
import time

import pytest
import socketio

from .clients import logged_in
from .conftest import sqlite_server
from .server import ROOT

pytestmark = pytest.mark.e2e
USERNAMES = (f"user{n}" for n in itertools.count())


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """One server for these tests: each refused packet closes its sender's connection only."""
    with sqlite_server(tmp_path_factory.mktemp("packets")) as server:
        yield server


# What each client writes on its websocket: the Engine.IO message ("4" + the Socket.IO packet).
BAD_PACKETS = {
    "event data not a list": "42{}",
    "unknown packet type": "4abc",
    "ack id not a number": '42abc["chat:typing",{"room":"general"}]',
    "event without a name": "42[]",
    "reserved event name": '42["disconnect"]',
}


class ReconnectingClient:
    """python-socketio as a page uses socket.io-client: reconnects by itself after a drop."""

    def __init__(self, session):
        self.session = session
        self.lock = threading.Condition()
        self.log: list[tuple[str, object]] = []
        self.client = socketio.Client(reconnection_delay=0.2, reconnection_delay_max=1)
        self.client.on("connect", lambda: self._record("connect", None))
        self.client.on("disconnect", lambda reason: self._record("disconnect", reason))
        self.client.on("table:row", lambda data: self._record("table:row", data))

    def _record(self, what, data):
        with self.lock:
            self.log.append((what, data))
            self.lock.notify_all()

    def count(self, what: str) -> int:
        with self.lock:
            return sum(1 for name, _ in self.log if name == what)

    def wait(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        with self.lock:
            while not predicate():
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out waiting for {what}; saw {self.log!r}")
                self.lock.wait(0.1)

    def connect(self) -> "ReconnectingClient":
        self.client.connect(
            self.session.base_url,
            transports=["websocket"],
            headers={"Cookie": self.session.cookie_header()},
            wait_timeout=10,
        )
        return self

    def rows(self) -> list[dict]:
        with self.lock:
            return [data for name, data in self.log if name == "table:row"]


def send_raw(client: socketio.Client, frame: str | bytes) -> None:
    """Write one websocket frame as it is, on the client's own Engine.IO websocket."""
    if isinstance(frame, bytes):
        client.eio.ws.send_binary(frame)
    else:
        client.eio.ws.send(frame)


def posted_row_reaches(session, clients, a: int) -> None:
    assert session.post("/table/rows", {"a": str(a), "b": "1"}).status_code == 201
    for client in clients:
        client.wait(lambda c=client: any(row["a"] == a for row in c.rows()), 10, f"the row a={a}")


@pytest.mark.parametrize(
    "frame",
    [*BAD_PACKETS.values(), "binary event", b"\x01\x02\x03"],
    ids=[*BAD_PACKETS, "binary event", "bare binary frame"],
)
def test_a_refused_packet_closes_the_connection_and_the_client_comes_back(live_server, frame):
    alice = logged_in(live_server.url, next(USERNAMES))
    sender, watcher = ReconnectingClient(alice).connect(), ReconnectingClient(alice).connect()
    assert sender.client.call("chat:join", {"room": "general"}, timeout=10)["ok"]
    if frame == "binary event":
        # What socket.io-client sends for an event with a Buffer in it: a packet announcing
        # one attachment, then the attachment as a binary frame.
        sender.client.emit("chat:typing", {"room": "general", "blob": b"\x00\x01"})
    else:
        send_raw(sender.client, frame)

    sender.wait(lambda: sender.count("disconnect") >= 1, 10, "the sender's disconnect")
    with sender.lock:
        reason = next(data for name, data in sender.log if name == "disconnect")
    # A transport close, which clients answer by reconnecting (never "io server disconnect").
    assert reason == sender.client.reason.TRANSPORT_ERROR, reason
    sender.wait(lambda: sender.count("connect") >= 2, 15, "the sender's reconnect")
    assert sender.client.call("chat:join", {"room": "general"}, timeout=10)["ok"]
    posted_row_reaches(alice, [sender, watcher], 7)
    # The other socket of the same user never noticed anything.
    assert watcher.count("disconnect") == 0 and watcher.count("connect") == 1
    for client in (sender, watcher):
        client.client.disconnect()


def test_a_refused_packet_from_the_node_client_closes_its_connection_and_it_comes_back(
    live_server,
):
    if not shutil.which("node") or not (ROOT / "node_modules" / "socket.io-client").is_dir():
        pytest.skip("needs node and node_modules (make install)")
    results = {}
    for name, frame in [*BAD_PACKETS.items(), ("binary event", "binary event")]:
        done = subprocess.run(
            ["node", str(ROOT / "tests" / "e2e" / "refused_packet.mjs"), live_server.url, frame],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{name}: {done.stderr}"
        results[name] = json.loads(done.stdout)
    for name, seen in results.items():
        # socket.io-client saw its transport close (not "io server disconnect", which it
        # would not come back from), reconnected, got an answer and a broadcast.
        assert seen["disconnect"] in ("transport close", "transport error"), (name, seen)
        assert seen["reconnected"], (name, seen)
        assert seen["ack"] == {"ok": False, "error": "Log in to chat."}, (name, seen)
        assert seen["row"]["sum"] == seen["expected_sum"], (name, seen)
