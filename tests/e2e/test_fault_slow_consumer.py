"""Clients that stop reading: the server bounds what it queues for each socket, drops those that
fall behind, and the other clients keep getting every message; a dropped client that reads
again finds its connection closed, and catches up from the database.

The kernel buffers a few megabytes per connection before the server's own queue grows, so the
burst is of large messages: 2000 emoji each (about 32 KB per event as JSON plus HTML).
"""

import base64
import concurrent.futures
import os
import re
import socket
import statistics
import threading
import time

import pytest

from .clients import logged_in
from .faults import children, rss_kib, wait
from .server import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SLOW = 10  # sockets that never read
AUTHORS, PER_AUTHOR = 30, 9  # flood control allows 10 messages in 10 s per user
READERS = 5  # sockets that read everything at once
LIMIT = 50  # SOCKET_SEND_QUEUE_MAX of the bounded run
BODY = "\U0001f600" * 2000
MESSAGE_EVENT = re.compile(rb'42\["chat:message",\{"id":(\d+)')


class StalledSocket:
    """A raw websocket that opens a Socket.IO connection and joins #general, then never reads
    again (or, with keep_reading(), reads everything at once)."""

    def __init__(self, url: str, cookie: str):
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.socket()
        # A small receive window: the server's writes stall after a few kilobytes.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Origin: {url}\r\nCookie: {cookie}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.received = b""
        self._read_until(b"\r\n\r\n")
        assert b" 101 " in self.received.split(b"\r\n", 1)[0], self.received[:200]
        self._read_until(b'"sid"')  # the Engine.IO open packet
        self._send_text("40")  # Socket.IO connect to the default namespace
        self._read_until(b'40{"sid"')
        self._send_text('420["chat:join",{"room":"general"}]')
        self._read_until(b'430[{"ok":true')  # joined: from now on it stops reading

    def _read_until(self, marker: bytes, timeout: float = 10) -> None:
        self.sock.settimeout(timeout)
        while marker not in self.received:
            chunk = self.sock.recv(4096)
            assert chunk, "closed during the handshake"
            self.received += chunk

    def _send_text(self, text: str) -> None:
        payload, mask = text.encode(), os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert len(payload) < 126
        self.sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def read_rest(self, timeout: float = 30) -> tuple[bytes, bool]:
        """Read again, everything until the server closes or nothing comes for a while;
        (data, closed by the server)."""
        self.sock.settimeout(1.5)
        deadline = time.monotonic() + timeout
        data = b""
        while time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return data, False
            except ConnectionResetError:
                return data, True
            if not chunk:
                return data, True
            data += chunk
        return data, False

    def keep_reading(self, seen: dict[int, float]) -> None:
        """Read everything as it comes (a healthy client, cheap enough not to fall behind):
        ``seen`` gets each message id and when it arrived."""

        def loop():
            self.sock.settimeout(None)
            tail = b""
            while True:
                try:
                    chunk = self.sock.recv(1 << 20)
                except OSError:
                    return
                if not chunk:
                    return
                now = time.monotonic()
                data = tail + chunk
                for i in MESSAGE_EVENT.findall(data):
                    seen.setdefault(int(i), now)
                tail = data[-64:]

        threading.Thread(target=loop, daemon=True).start()

    def close(self) -> None:
        self.sock.close()


def message_ids(data: bytes) -> set[int]:
    return {int(i) for i in MESSAGE_EVENT.findall(data)}


def run(tmp_path, limit: int) -> dict:
    server = LiveServer(
        {
            "SECRET_KEY": "fault-secret",
            "DATABASE_URL": f"sqlite:///{tmp_path / f'{limit}.db'}",
            "MESSAGE_QUEUE_URL": "",
            "SOCKET_SEND_QUEUE_MAX": str(limit),
        },
        log_path=tmp_path / f"gunicorn-{limit}.log",
    )
    server.migrate()
    server.start()
    readers: list[StalledSocket] = []
    stalled: list[StalledSocket] = []
    try:
        (worker,) = children(server.process.pid)
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            authors = list(pool.map(lambda n: logged_in(server.url, f"author{n}"), range(AUTHORS)))
        arrivals: list[dict[int, float]] = []
        for session in authors[:READERS]:
            reader = StalledSocket(server.url, session.cookie_header())
            seen: dict[int, float] = {}
            reader.keep_reading(seen)
            readers.append(reader)
            arrivals.append(seen)
        staller = logged_in(server.url, "staller")
        stalled = [StalledSocket(server.url, staller.cookie_header()) for _ in range(SLOW)]
        rss_before = rss_kib(worker)
        posted: dict[int, float] = {}
        lock = threading.Lock()

        def post(author) -> None:
            for _ in range(PER_AUTHOR):
                started = time.monotonic()
                response = author.http.post(
                    server.url + "/chat/general/messages",
                    data={"body": BODY},
                    headers={"X-CSRFToken": author.token, "Accept": "application/json"},
                    timeout=30,
                )
                assert response.status_code == 201, response.text
                with lock:
                    posted[response.json()["id"]] = started

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(post, authors))
        burst = time.monotonic() - started
        for seen in arrivals:
            wait(lambda seen=seen: set(posted) <= set(seen), 60, "every reader has every message")
        rss_after = rss_kib(worker)
        latencies = sorted(seen[i] - posted[i] for seen in arrivals for i in posted)
        # The stalled clients read again: what did the server keep for them?
        with concurrent.futures.ThreadPoolExecutor(SLOW) as pool:
            outcomes = list(pool.map(lambda s: s.read_rest(), stalled))
        # A dropped one catches up like realtime.js: what is newer than the last it has.
        caught_up = []
        for data, _closed in outcomes:
            after = max(message_ids(data), default=0)
            answer = staller.http.get(
                f"{server.url}/chat/general/messages",
                params={"after": after},
                headers={"Accept": "application/json"},
                timeout=30,
            )
            caught_up.append({m["id"] for m in answer.json()["messages"]})
        log = (tmp_path / f"gunicorn-{limit}.log").read_text()
        return {
            "posted": set(posted),
            "burst": burst,
            "rss_before": rss_before,
            "rss_after": rss_after,
            "p50": statistics.median(latencies),
            "p99": latencies[int(len(latencies) * 0.99)],
            "max": latencies[-1],
            "outcomes": outcomes,
            "caught_up": caught_up,
            "dropped_logged": log.count("stopped reading"),
            "worker_alive": children(server.process.pid) == {worker},
        }
    finally:
        for s in stalled:
            s.close()
        for reader in readers:
            reader.close()
        server.stop()


def test_a_client_that_stops_reading_is_dropped_and_catches_up_and_the_others_keep_up(tmp_path):
    figures = {}
    for limit in (0, LIMIT):
        figures[limit] = result = run(tmp_path, limit)
        result["closed"] = sum(1 for _data, was_closed in result["outcomes"] if was_closed)
        got = [len(message_ids(data)) for data, _ in result["outcomes"]]
        total = len(result["posted"])
        print(
            f"\n{'bound ' + str(limit) + ' packets' if limit else 'no bound'}: {total} "
            f"messages of 2000 emoji in {result['burst']:.1f} s to {READERS} readers and {SLOW} "
            f"stalled sockets; worker RSS {result['rss_before'] / 1024:.1f} -> "
            f"{result['rss_after'] / 1024:.1f} MiB "
            f"(+{(result['rss_after'] - result['rss_before']) / 1024:.1f}); readers' latency "
            f"p50 {result['p50'] * 1000:.0f} ms, p99 {result['p99'] * 1000:.0f} ms, max "
            f"{result['max'] * 1000:.0f} ms; stalled sockets closed by the server: "
            f"{result['closed']} of {SLOW} (logged {result['dropped_logged']}); messages they "
            f"got before: {min(got)}..{max(got)} of {total}; missing after their catch-up: "
            f"{sum(len(result['posted'] - message_ids(d) - c) for (d, _), c in zip(result['outcomes'], result['caught_up']))}"
        )
        assert result["worker_alive"]
        for (data, _closed), caught_up in zip(result["outcomes"], result["caught_up"]):
            assert message_ids(data) | caught_up >= result["posted"]
    unbounded, bounded = figures[0], figures[LIMIT]
    # Without the bound nothing is dropped: the server keeps queueing for them.
    assert unbounded["closed"] == 0
    # With it every stalled socket is dropped; readers got every message all the same (above).
    assert bounded["closed"] == SLOW and bounded["dropped_logged"] >= SLOW
