"""Tools to break the real processes in fault tests: a TCP proxy that can be cut, gunicorn
workers to kill, and the memory and timing figures the tests print.

    proxy = TcpProxy("127.0.0.1", 5432).start()   # DATABASE_URL points at proxy.port
    proxy.cut("refuse")   # the database is down: open connections close, new ones are refused
    proxy.cut("hang")     # the host stopped answering: new connections are accepted, never served
    proxy.restore()       # the database is back

A Redis of the test's own that can be killed and restarted is ``RedisProcess`` in cluster.py
(fixture ``own_redis``).
"""

import os
import select
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import NamedTuple

import requests

from .clients import BrowserSession
from .server import free_port

JSON = {"Accept": "application/json"}


class TcpProxy:
    """Forwards 127.0.0.1:<port> to an upstream address until it is cut."""

    def __init__(self, upstream_host: str, upstream_port: int, port: int | None = None):
        self.upstream = (upstream_host, upstream_port)
        self.port = port or free_port()
        self.mode = "up"  # "up", "refuse" or "hang"
        self.lock = threading.Lock()
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.held: list[socket.socket] = []  # accepted in "hang" mode, never answered
        self.listener: socket.socket | None = None
        self.accepted = 0
        self.stopped = False

    # Life cycle -----------------------------------------------------------------------------
    def start(self) -> "TcpProxy":
        self._listen()
        return self

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.listener = listener
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True).start()

    def cut(self, mode: str = "refuse") -> None:
        """Close every open connection; then refuse new ones, or accept and never answer them."""
        assert mode in ("refuse", "hang"), mode
        with self.lock:
            self.mode = mode
            listener = self.listener
            if mode == "refuse":
                self.listener = None
        if mode == "refuse" and listener is not None:
            _close(listener)  # connect() now gets ECONNREFUSED
        elif mode == "hang" and listener is None:
            self._listen()
        self._close_all()

    def restore(self) -> None:
        """Forward again, on the same port."""
        with self.lock:
            self.mode = "up"
            held, self.held = self.held, []
        for sock in held:
            _close(sock)
        if self.listener is None:
            self._listen()

    def stop(self) -> None:
        self.stopped = True
        with self.lock:
            listener, self.listener = self.listener, None
        if listener is not None:
            _close(listener)
        self._close_all()
        for sock in self.held:
            _close(sock)

    def open_connections(self) -> int:
        with self.lock:
            return len(self.pairs)

    # Forwarding -----------------------------------------------------------------------------
    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _address = listener.accept()
            except OSError:  # closed by cut() or stop()
                return
            with self.lock:
                mode = self.mode
                self.accepted += 1
            if mode == "hang":
                with self.lock:
                    self.held.append(client)
                continue
            if mode != "up" or self.stopped:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self.lock:
                self.pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        sockets = [a, b]
        try:
            while True:
                readable, _, _ = select.select(sockets, [], [], 1.0)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (b if sock is a else a).sendall(data)
        except (OSError, ValueError):  # closed by cut() from another thread
            return
        finally:
            _close(a)
            _close(b)
            with self.lock:
                if (a, b) in self.pairs:
                    self.pairs.remove((a, b))

    def _close_all(self) -> None:
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for a, b in pairs:
            _close(a)
            _close(b)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


# Processes ----------------------------------------------------------------------------------


def children(parent_pid: int) -> set[int]:
    """Pids of the direct children of ``parent_pid`` (gunicorn's workers of its master)."""
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == parent_pid:
            pids.add(int(stat.parent.name))
    return pids


def pid_of_connection(local_port: int, pids) -> int | None:
    """Which of ``pids`` holds the TCP socket bound to 127.0.0.1:``local_port`` (the client end
    of a connection), by the socket's inode in /proc/net/tcp and the processes' descriptors."""
    from bench.soak import tcp_sockets

    inodes = {
        f"socket:[{inode}]" for inode, (port, _, _) in tcp_sockets().items() if port == local_port
    }
    for pid in pids:
        try:
            descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:  # ended meanwhile
            continue
        for descriptor in descriptors:
            try:
                if os.readlink(descriptor) in inodes:
                    return pid
            except OSError:
                continue
    return None


def rss_kib(pid: int) -> int:
    """Resident memory of a process in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def wait(predicate, timeout: float, what: str, interval: float = 0.05):
    """Wait until ``predicate()`` is truthy (and return it); fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting until {what}")
        time.sleep(interval)


def timed_request(method: str, url: str, **kwargs) -> tuple[requests.Response | None, float]:
    """(response or None on a transport error, seconds taken) for one request on a new connection."""
    kwargs.setdefault("timeout", 30)
    started = time.monotonic()
    try:
        response = requests.request(method, url, **kwargs)
    except requests.RequestException:
        response = None
    return response, time.monotonic() - started


def wait_healthy(url: str, timeout: float) -> float:
    """Seconds until GET /healthz answers 200."""
    started = time.monotonic()

    def healthy():
        response, _ = timed_request("GET", url + "/healthz", timeout=5)
        return response is not None and response.status_code == 200

    wait(healthy, timeout, f"{url}/healthz answers 200", interval=0.2)
    return time.monotonic() - started


# Steady writes ---------------------------------------------------------------------------------


class Writers:
    """Rows and chat messages posted at a steady rate over new connections (any worker)."""

    def __init__(
        self,
        url: str,
        authors: list[BrowserSession],
        rate: float = 4.0,
        row_threads: int = 1,
        message_threads: int = 1,
    ):
        self.url, self.authors, self.interval = url, authors, 1 / rate
        self.anon = BrowserSession(url)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.row_attempts: dict[int, int | None] = {}  # a -> id acknowledged, None if failed
        self.message_attempts: dict[str, dict] = {}  # client_id -> figures
        self.row_statuses: list = []
        self.row_times: list[tuple[float, float, object]] = []  # (started, ended, status)
        self.row_counter = iter(range(1, 10**9))  # a, unique per attempt: found in the database
        self.message_counter = iter(range(1, 10**9))  # n of body "m{n}": found in the database
        self.threads = [
            threading.Thread(target=self._rows, daemon=True) for _ in range(row_threads)
        ] + [threading.Thread(target=self._messages, daemon=True) for _ in range(message_threads)]

    def start(self) -> "Writers":
        for thread in self.threads:
            thread.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def burst(self, count: int) -> None:
        """Post ``count`` rows at the same moment (their commits may land out of id order)."""
        together = threading.Barrier(count)
        posts = [
            threading.Thread(target=self._post_row, args=(together.wait,), daemon=True)
            for _ in range(count)
        ]
        for thread in posts:
            thread.start()
        for thread in posts:
            thread.join(30)

    def _rows(self) -> None:
        while not self.stop.wait(self.interval):
            self._post_row()

    def _post_row(self, ready=None) -> None:
        with self.lock:
            a = next(self.row_counter)
        if ready is not None:
            ready()
        started = time.monotonic()
        try:
            response = requests.post(
                self.url + "/table/rows",
                data={"a": str(a), "b": "0"},
                headers={"X-CSRFToken": self.anon.token, **JSON},
                cookies=self.anon.http.cookies,
                timeout=15,
            )
            status = response.status_code
            row_id = response.json()["id"] if status == 201 else None
        except (requests.RequestException, ValueError) as error:
            status, row_id = type(error).__name__, None
        with self.lock:
            self.row_attempts[a] = row_id
            self.row_statuses.append(status)
            self.row_times.append((started, time.monotonic(), status))

    def _messages(self) -> None:
        while not self.stop.wait(self.interval):
            with self.lock:
                n = next(self.message_counter)
            author = self.authors[n % len(self.authors)]
            client_id = str(uuid.uuid4())
            record = {"body": f"m{n}", "tries": 0, "id": None, "statuses": []}
            # Like chat.js: a send whose answer was lost is sent again with the same client id.
            while record["id"] is None and record["tries"] < 40:  # about 20 s
                record["tries"] += 1
                try:
                    response = requests.post(
                        self.url + "/chat/general/messages",
                        data={"body": record["body"], "client_id": client_id},
                        headers={"X-CSRFToken": author.token, **JSON},
                        cookies=author.http.cookies,
                        timeout=15,
                    )
                    record["statuses"].append(response.status_code)
                    if response.status_code in (200, 201):
                        record["id"] = response.json()["id"]
                except (requests.RequestException, ValueError) as error:
                    record["statuses"].append(type(error).__name__)
                if record["id"] is None:
                    time.sleep(0.5)
            with self.lock:
                self.message_attempts[client_id] = record


class Accounted(NamedTuple):
    """The writers' attempts against what the database holds (ids, and ``a`` of failed rows)."""

    acked_rows: set[int]
    failed_rows: list[int]
    failed_but_stored: set[int]  # row POSTs that failed to answer but were stored
    acked_messages: set[int]
    unacked_messages: list[dict]


def accounted(writers: Writers, db_rows: dict[int, int]) -> Accounted:
    """Which attempts were acknowledged, which failed, and which failed but were stored."""
    failed_rows = [a for a, row_id in writers.row_attempts.items() if row_id is None]
    return Accounted(
        acked_rows={row_id for row_id in writers.row_attempts.values() if row_id},
        failed_rows=failed_rows,
        failed_but_stored={db_rows[a] for a in failed_rows if a in db_rows},
        acked_messages={r["id"] for r in writers.message_attempts.values() if r["id"]},
        unacked_messages=[r for r in writers.message_attempts.values() if r["id"] is None],
    )


def query(database_url: str, *statements: str) -> list[list[tuple]]:
    """The rows each SQL statement answers, on a PostgreSQL database of the app's."""
    import psycopg
    from sqlalchemy.engine import make_url

    plain = (
        make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    with psycopg.connect(plain) as conn:
        return [conn.execute(statement).fetchall() for statement in statements]


def stored(database_url: str) -> tuple[dict[int, int], dict[str, int]]:
    """What the database holds: row a -> id, message body -> id."""
    rows, messages = query(
        database_url, "SELECT a, id FROM table_rows", "SELECT body, id FROM messages"
    )
    return dict(rows), dict(messages)


def slow_post(
    base_url: str, path: str, fields: dict, session: BrowserSession, seconds: float
) -> tuple[int | None, bytes]:
    """POST a form whose body trickles in over ``seconds`` (a slow client upload), so the
    request is in flight for that long; (status or None if the connection broke, response)."""
    from urllib.parse import urlencode

    host, port = base_url.removeprefix("http://").split(":")
    body = urlencode(fields).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\n"
        f"X-CSRFToken: {session.token}\r\nCookie: {session.cookie_header()}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    try:
        with socket.create_connection((host, int(port)), timeout=60) as sock:
            sock.sendall(head)
            pieces = [body[i : i + 1] for i in range(len(body))]
            for piece in pieces:
                sock.sendall(piece)
                time.sleep(seconds / len(pieces))
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    except OSError:
        return None, b""
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else None
    return status, answer.split(b"\r\n\r\n", 1)[-1]
