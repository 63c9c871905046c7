"""The outbox over real sockets: an event committed by a process that cannot or did not publish
it still reaches every open socket, once, through the server workers' relay."""

import subprocess
import sys
import time

import pytest

from .clients import BrowserSession, LiveSocket
from .cluster import TableClient, spread
from .server import ROOT, LiveServer

pytestmark = pytest.mark.e2e

# A process that commits a row and is killed (SIGKILL) at the moment it would publish its
# event: a worker killed between commit and publish, as seen from every other process.
KILLED_BEFORE_PUBLISH = """
import os, signal, sys
from webapp import create_app
from webapp.extensions import socketio
from webapp.table import services

app = create_app()
socketio.emit = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
with app.app_context():
    services.add_row(sys.argv[1], sys.argv[2])
"""


def add_row_killed_before_publish(env: dict, a: int, b: int) -> float:
    """Run KILLED_BEFORE_PUBLISH with a server's environment; when it died (time.monotonic())."""
    result = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_PUBLISH, str(a), str(b)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == -9, f"expected SIGKILL, got {result.returncode}: {result.stderr}"
    return time.monotonic()


def rows_pushed(events) -> int:
    return sum(event == "table:row" for event, _ in events)


def wait_for_rows(sockets, count: int, timeout: float = 10) -> None:
    for sock in sockets:
        sock.wait_for(lambda events: rows_pushed(events) >= count, timeout=timeout)


def arrival_seconds(sockets: list[LiveSocket], since: float) -> str:
    return ", ".join(f"{sock.arrived - since:.2f} s" for sock in sockets)


class TimedSocket(LiveSocket):
    """A LiveSocket that remembers when its first ``table:row`` arrived."""

    arrived: float | None = None

    def _record(self, event, data):
        if event == "table:row" and self.arrived is None:
            self.arrived = time.monotonic()
        super()._record(event, data)


def test_a_row_added_on_the_command_line_reaches_every_socket_without_a_queue(live_server):
    # `make run`: SQLite, one worker, no message queue. The command line is another process,
    # which no socket is connected to; before the outbox its row showed only after a reload.
    sockets = [TimedSocket(BrowserSession(live_server.url)).connect() for _ in range(3)]
    result = live_server.flask("table", "add-row", "40", "2")
    committed = time.monotonic()
    assert result.returncode == 0, result.stderr
    assert "Added row 1: 40 + 2 = 42" in result.stdout

    wait_for_rows(sockets, 1)
    print(
        f"\nthe command line's row reached the sockets after {arrival_seconds(sockets, committed)}"
    )
    for sock in sockets:
        [row] = sock.of("table:row")
        assert (row["id"], row["a"], row["b"], row["sum"]) == (1, 40, 2, 42)
        assert (row["stream"], row["seq"]) == ("table", 1)
        assert 'id="row-1"' in row["html"] and 'data-role="row-count">1<' in row["html"]

    # A row added over HTTP right after: published by the worker itself, numbered next, and
    # the relay sends neither of the two again.
    alice = BrowserSession(live_server.url)
    assert alice.post("/table/rows", {"a": "1", "b": "2"}).status_code == 201
    wait_for_rows(sockets, 2)
    time.sleep(2)  # several relay rounds
    for sock in sockets:
        assert [(r["id"], r["seq"]) for r in sock.of("table:row")] == [(1, 1), (2, 2)]
        sock.disconnect()


def test_a_row_whose_writer_was_killed_before_publishing_reaches_every_socket(live_server):
    sockets = [TimedSocket(BrowserSession(live_server.url)).connect() for _ in range(2)]
    died = add_row_killed_before_publish(live_server.env, 5, 6)
    wait_for_rows(sockets, 1)
    print(f"\nthe unpublished row reached the sockets after {arrival_seconds(sockets, died)}")
    for sock in sockets:
        [row] = sock.of("table:row")
        assert (row["id"], row["sum"], row["seq"]) == (1, 11, 1)
        sock.disconnect()


def two_workers(cluster, queue: str = "redis") -> tuple[LiveServer, list[TableClient]]:
    web = cluster(queue).start_host(workers=2)
    clients: list[TableClient] = []
    while len(clients) < 10 or len(spread(clients)) < 2:
        clients.append(TableClient(web.url).connect())
        assert len(clients) < 40, "all clients landed on one worker"
    return web, clients


def assert_each_client_got_once(clients: list[TableClient], row_ids: set[int]) -> None:
    for client in clients:
        client.wait_for_rows(row_ids)
    time.sleep(2)  # several relay rounds: nothing may come again
    for client in clients:
        assert client.duplicates() == 0, [r["id"] for r in client.live]
        assert {row["id"] for row in client.live} == row_ids
        client.disconnect()


def test_command_line_rows_reach_both_workers_once_through_the_queue(cluster):
    # With a queue the command line publishes its event itself; the workers see it go by, so
    # their relays do not send it again.
    web, clients = two_workers(cluster)
    result = web.flask("table", "add-row", "2", "3")
    assert result.returncode == 0, result.stderr
    assert_each_client_got_once(clients, {1})


@pytest.mark.parametrize("queue", ["redis", "amqp"])
def test_a_killed_writers_row_is_relayed_once_to_both_workers(cluster, queue):
    # Both workers find the event unpublished; one claims it and publishes it through the queue.
    web, clients = two_workers(cluster, queue)
    died = add_row_killed_before_publish(web.env, 7, 8)
    for client in clients:
        client.wait_for_rows({1})
    print(
        f"\n{queue}: the unpublished row reached all {len(clients)} clients {time.monotonic() - died:.2f} s after"
    )
    assert all(row["sum"] == 15 and row["seq"] == 1 for c in clients for row in c.live)
    assert_each_client_got_once(clients, {1})
