"""Scale-out on real services: several gunicorn workers and hosts sharing one PostgreSQL database
and one message queue, a Redis of the test's own, and nginx as the balancer.

Use from a test (the fixtures are exported by tests/e2e/conftest.py):

    def test_something(cluster):
        web = cluster("redis").start_host(workers=2)  # fresh database, own queue channel
        clients = [TableClient(web.url).connect() for _ in range(10)]
        assert len(spread(clients)) == 2               # worker id -> clients on it

A chat test needs nothing more: connect its own clients to ``web.url`` and use ``spread``.
Workers are told apart by an opaque id: the ``X-Worker`` response header and the
``server:worker`` socket event (its ack carries ``worker``).
"""

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.services import fresh_postgres_database, require, unique_channel

from .clients import BrowserSession, LiveSocket
from .server import ROOT, LiveServer, free_port

QUEUES = {"redis": "TEST_REDIS_URL", "amqp": "TEST_AMQP_URL"}
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class Cluster:
    """App hosts (gunicorn instances) sharing one database, one queue channel and one secret."""

    def __init__(self, tmp_path: Path, database_url: str, queue_url: str, **env: str):
        self.tmp_path = tmp_path
        self.env = {
            "SECRET_KEY": "cluster-secret",
            "DATABASE_URL": database_url,
            "MESSAGE_QUEUE_URL": queue_url,
            "SOCKETIO_CHANNEL": unique_channel(),
            **env,
        }
        self.hosts: list[LiveServer] = []
        self._migrated = False

    def start_host(self, workers: int = 2, **env: str) -> LiveServer:
        """Start one more host; it waits until all of its workers answer."""
        log = self.tmp_path / f"host{len(self.hosts) + 1}.log"
        host = LiveServer({**self.env, **env}, workers=workers, log_path=log)
        if not self._migrated:  # once per release, not per host
            host.migrate()
            self._migrated = True
        self.hosts.append(host)
        host.start()
        host.workers = wait_for_workers(host.url, workers)
        return host

    def flask(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """A command-line process with the hosts' configuration (not a web worker)."""
        return LiveServer(self.env).flask(*args, timeout=timeout)

    def stop(self) -> None:
        stopping = [threading.Thread(target=host.stop) for host in self.hosts]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()
        self.forget_presence()

    def forget_presence(self) -> None:
        """Remove the presence keys the hosts left in Redis (killed workers remove nothing)."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        url = self.env.get("PRESENCE_URL") or self.env["MESSAGE_QUEUE_URL"]
        if not url.startswith("redis"):
            return
        try:
            store = redis.Redis.from_url(url, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))
            keys = list(store.scan_iter(f"{self.env['SOCKETIO_CHANNEL']}:*"))
            if keys:
                store.delete(*keys)
        except redis.RedisError:  # the test's own Redis is already gone
            pass


def wait_for_workers(url: str, count: int, timeout: float = 30) -> set[str]:
    """Ids of the ``count`` workers behind ``url`` once each has answered a request.

    Every request opens a new connection, which the kernel hands to one worker's socket.
    """
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(seen)} of {count} workers answered at {url}")
        response = requests.get(url + "/healthz", timeout=5)  # a new connection each time
        seen.add(response.headers["X-Worker"])
    return seen


def worker_of(sock) -> str:
    """The worker a connected socket is served by (LiveSocket or socketio.Client)."""
    client = getattr(sock, "client", sock)
    ack = client.call("server:worker", {}, timeout=10)
    assert ack["ok"], ack
    return ack["worker"]


def spread(sockets) -> Counter:
    """How many of ``sockets`` each worker serves: worker id -> count."""
    return Counter(worker_of(sock) for sock in sockets)


def post_row(session: BrowserSession, a: int, b: int) -> tuple[int, str]:
    """POST a row on a new connection (so it lands on any worker); (row id, worker id)."""
    response = requests.post(  # not the session's pooled connection: a new one each time
        session.base_url + "/table/rows",
        data={"a": str(a), "b": str(b)},
        headers={"X-CSRFToken": session.token, "Accept": "application/json"},
        cookies=session.http.cookies,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"], response.headers["X-Worker"]


class TableClient(LiveSocket):
    """A table watcher that behaves like realtime.js: it records every ``table:row`` it is sent
    and catches up from the database (``table:catchup``) when the server says ``server:resync``.
    """

    def __init__(self, url: str, session: BrowserSession | None = None):
        super().__init__(session or BrowserSession(url))
        self.live: list[dict] = []  # rows as they were pushed, duplicates included
        self.caught_up: dict[int, dict] = {}  # rows fetched by catch-ups
        self.resyncs = 0
        self.client.on("table:row", self._row)
        self.client.on("server:resync", self._resync)

    def _row(self, data):
        with self.lock:
            self.live.append(data)
            self.lock.notify_all()

    def _resync(self, _data=None):
        # Catching up needs an acknowledgement, which this reader thread must stay free for.
        threading.Thread(target=self.catch_up, daemon=True).start()

    def catch_up(self) -> None:
        # Like realtime.js after a reconnect: fetch the whole window shown, not just what is
        # newer than the newest row, because rows of other workers may be missing in between.
        with self.lock:
            self.resyncs += 1
            after = min(self.ids(), default=1) - 1
        ack = self.client.call("table:catchup", {"after": after}, timeout=10)
        with self.lock:
            for row in ack["rows"]:
                self.caught_up[row["id"]] = row
            self.lock.notify_all()

    def ids(self) -> set[int]:
        """Ids of every row this client has (pushed or caught up), as a page would show."""
        return {row["id"] for row in self.live} | set(self.caught_up)

    def wait_for_rows(self, ids, timeout: float = 20) -> None:
        wanted = set(ids)
        self.wait_for(lambda _events: wanted <= self.ids(), timeout=timeout)

    def duplicates(self) -> int:
        """Rows pushed more than once."""
        return sum(n - 1 for n in Counter(row["id"] for row in self.live).values())


def wait_until_up(process: subprocess.Popen, probe, refused: type[Exception], timeout: float):
    """Call ``probe`` until it stops raising ``refused``; fail if ``process`` dies or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return probe()
        except refused:
            if time.monotonic() > deadline or process.poll() is not None:
                raise
            time.sleep(0.05)


class RedisProcess:
    """A redis-server of the test's own on a free port, which the test may kill and restart."""

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tmp_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10) -> "RedisProcess":
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "/usr/bin/redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        ping = redis.Redis.from_url(self.url, socket_connect_timeout=1).ping
        wait_until_up(self.process, ping, redis.ConnectionError, timeout)
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Nginx:
    """nginx on a free loopback port running deploy/nginx.conf over the given hosts."""

    def __init__(self, tmp_path: Path, upstreams: list[str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.prefix = tmp_path / "nginx"
        self.prefix.mkdir()
        site = (ROOT / "deploy" / "nginx.conf").read_text()
        servers = "".join(
            f"    server {upstream} max_fails=3 fail_timeout=10s;\n" for upstream in upstreams
        )
        site, hosts = re.subn(r"(?m)^    server app\d+:8000 .*\n", "", site)
        assert hosts, "deploy/nginx.conf lists no upstream servers"
        site = site.replace("upstream webapp {\n", "upstream webapp {\n" + servers, 1)
        site, listens = re.subn(r"(?m)^    listen 80;", f"    listen 127.0.0.1:{self.port};", site)
        assert listens == 1, "deploy/nginx.conf has no 'listen 80;'"
        temp = "".join(
            f"    {kind}_temp_path {self.prefix / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        user = "user root root;\n" if os.geteuid() == 0 else ""
        (self.prefix / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {self.prefix / 'nginx.pid'};\n"
            f"error_log {self.prefix / 'error.log'} warn;\n"
            "events { worker_connections 1024; }\n"
            f"http {{\n    access_log {self.prefix / 'access.log'};\n{temp}{site}\n}}\n"
        )
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10) -> "Nginx":
        require_program(NGINX, "nginx")
        conf = str(self.prefix / "nginx.conf")
        check = subprocess.run(
            [NGINX, "-t", "-p", str(self.prefix), "-c", conf, "-e", str(self.prefix / "error.log")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen(
            [
                NGINX,
                "-p",
                str(self.prefix),
                "-c",
                conf,
                "-e",
                str(self.prefix / "error.log"),
                "-g",
                "daemon off;",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        answer = lambda: requests.get(self.url + "/healthz", timeout=2)
        wait_until_up(self.process, answer, requests.RequestException, timeout)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def postgres_url():
    """A fresh, empty PostgreSQL database of this test's own (dropped afterwards)."""
    url, drop = fresh_postgres_database(require("TEST_POSTGRES_URL"))
    yield url
    drop()


@pytest.fixture
def cluster(tmp_path, postgres_url):
    """``cluster(queue)`` -> a Cluster on a fresh database; ``queue`` is "redis", "amqp" or a URL.

    Hosts started from it are stopped afterwards.
    """
    made: list[Cluster] = []

    def make(queue: str = "redis", **env: str) -> Cluster:
        url = require(QUEUES[queue]) if queue in QUEUES else queue
        if not url.startswith("redis") and "PRESENCE_URL" not in env:
            # Several workers keep chat presence in Redis (gunicorn refuses them otherwise).
            env["PRESENCE_URL"] = require("TEST_REDIS_URL")
        made.append(Cluster(tmp_path, postgres_url, url, **env))
        return made[-1]

    yield make
    for each in made:
        each.stop()


def require_program(path: str, package: str) -> None:
    """Skip when the program is missing (fail in CI, which must run every test)."""
    if shutil.which(os.path.basename(path)) or os.path.exists(path):
        return
    message = f"{path} is missing: apt-get install -y {package}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def balancer(tmp_path):
    """``balancer(hosts)`` -> nginx started on deploy/nginx.conf over those LiveServers."""
    started: list[Nginx] = []

    def start(hosts: list[LiveServer]) -> Nginx:
        started.append(Nginx(tmp_path, [f"127.0.0.1:{host.port}" for host in hosts]))
        return started[-1].start()

    yield start
    for nginx in started:
        nginx.stop()


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server started for this test only, free to kill and restart."""
    require_program("/usr/bin/redis-server", "redis-server")
    server = RedisProcess(tmp_path).start()
    yield server
    server.kill()


LIVE_LIST = re.compile(r"<[^>]*\bdata-live-list\b[^>]*>")
CATCHUP_URL = re.compile(r'data-catchup-url="([^"]+)"')
MEMBER_SET = re.compile(
    r'<li id="member-\d+" class="chat-member" data-user="([^"]+)" '
    r'data-status="(\w+)" hx-swap-oob="true">'
)
MESSAGE_ID = re.compile(r'<article id="message-(\d+)"')


class ChatClient(LiveSocket):
    """A room page's socket, as chat.js and realtime.js drive it: it joins the room, keeps the
    member list the page would show (the join's answer, then ``chat:presence`` events) and,
    when the server says ``server:resync``, catches up every live list of the room page from
    its ``data-catchup-url``; socket events arriving meanwhile are applied after, like
    realtime.js does.
    """

    def __init__(self, session: BrowserSession, username: str, room: str = "general"):
        super().__init__(session)
        self.username, self.room = username, room
        page = session.load(f"/chat/{room}")
        self.live_lists = [CATCHUP_URL.search(tag).group(1) for tag in LIVE_LIST.findall(page)]
        self.members: dict[str, str] = {}  # the member list the page would show
        self.message_ids: set[int] = set()  # messages pushed or caught up
        self.arrived: list[tuple[float, str, dict]] = []  # (time.monotonic(), event, data)
        self.catching_up = 0
        self.queued: list[tuple[str, dict]] = []
        self.resyncs = 0
        self.worker = None
        for event in ("chat:presence", "chat:message", "chat:typing"):
            self.client.on(event, lambda data, event=event: self._live(event, data))
        self.client.on("server:resync", self._resync)

    def join(self) -> "ChatClient":
        """Connect (if not yet) and join the room; the join's answer is the member list."""
        if not self.client.connected:
            self.connect()
        ack = self.client.call("chat:join", {"room": self.room}, timeout=10)
        assert ack["ok"], ack
        self.worker = worker_of(self)
        with self.lock:
            self.members = {m["user"]: m["status"] for m in ack["members"]}
        return self

    def _live(self, event: str, data: dict) -> None:
        with self.lock:
            self.events.append((event, data))
            self.arrived.append((time.monotonic(), event, data))
            if self.catching_up:
                self.queued.append((event, data))
            else:
                self._apply(event, data)
            self.lock.notify_all()

    def _apply(self, event: str, data: dict) -> None:
        if event == "chat:presence":
            self.members[data["user"]] = data["status"]
        elif event == "chat:message":
            self.message_ids.add(data["id"])

    def _resync(self, _data=None) -> None:
        with self.lock:
            self.resyncs += 1
            self.catching_up += 1
        threading.Thread(target=self.catch_up, daemon=True).start()

    def catch_up(self) -> None:
        """Fetch every live list of the page (realtime.js after a reconnect or a resync)."""
        answers = []
        try:
            for url in self.live_lists:
                answers.append(
                    self.session.http.get(
                        self.session.base_url + url + "?after=0",
                        headers={"HX-Request": "true"},
                        timeout=10,
                    ).text
                )
        finally:
            with self.lock:
                for html in answers:
                    self.members.update(MEMBER_SET.findall(html))
                    self.message_ids.update(int(i) for i in MESSAGE_ID.findall(html))
                self.catching_up -= 1
                if not self.catching_up:
                    for event, data in self.queued:
                        self._apply(event, data)
                    self.queued = []
                self.lock.notify_all()

    def wait_until(self, predicate, timeout: float = 20) -> None:
        """Wait until ``predicate(self)`` holds (checked whenever an event arrives)."""
        try:
            self.wait_for(lambda _events: predicate(self), timeout=timeout)
        except AssertionError:
            raise AssertionError(
                f"timed out: {self.username} (worker {self.worker}) shows members "
                f"{self.members} and messages {sorted(self.message_ids)}"
            ) from None

    def shows(self, statuses: dict[str, str]) -> bool:
        """The member list has each of these users with that status."""
        return all(self.members.get(user) == status for user, status in statuses.items())
