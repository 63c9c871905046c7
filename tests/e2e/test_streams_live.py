"""Numbered streams over a real gunicorn: broadcasts carry ``stream`` and ``seq``, ``GET /events``
answers what a client missed, and ``stream:head`` tells the head after the last event."""

import subprocess
import sys
import time

import pytest

from .clients import BrowserSession, LiveSocket, logged_in
from .cluster import TableClient, spread
from .conftest import sqlite_server
from .server import ROOT

# A process that commits a chat message and is killed (SIGKILL) at the moment it would publish
# its event: a worker killed between commit and publish.
MESSAGE_KILLED_BEFORE_PUBLISH = """
import os, signal, sys
from sqlalchemy import select
from webapp import create_app
from webapp.auth.models import User
from webapp.chat import services
from webapp.extensions import db, socketio

app = create_app()
socketio.emit = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
with app.app_context():
    alice = db.session.scalar(select(User).where(User.username == "alice"))
    services.post_message(alice, services.find_room(sys.argv[1]), sys.argv[2])
"""

pytestmark = pytest.mark.e2e


def joined(session, room="general") -> LiveSocket:
    sock = LiveSocket(session).connect()
    ack = sock.client.call("chat:join", {"room": room}, timeout=10)
    assert ack["ok"], ack
    return sock


def events(session, stream: str, after_seq, **headers):
    return session.http.get(
        f"{session.base_url}/events",
        params={"stream": stream, "after_seq": after_seq},
        headers=headers,
        timeout=10,
    )


def test_a_room_numbers_its_messages_and_a_client_fetches_what_it_missed(tmp_path):
    with sqlite_server(tmp_path, STREAM_HEAD_INTERVAL="0.5") as server:
        alice, bob = logged_in(server.url, "alice"), logged_in(server.url, "bob")
        assert alice.post("/chat/rooms", {"name": "Ops"}).status_code == 201
        watching = joined(bob, "Ops")
        sock = joined(alice, "ops")

        sent = [sock.client.call("chat:send", {"room": "ops", "body": f"m{i}"}) for i in range(3)]
        assert all(ack["ok"] for ack in sent), sent
        watching.wait_for(lambda ev: sum(e == "chat:message" for e, _ in ev) >= 3)
        pushed = watching.of("chat:message")
        # The stream is named by the room's lower-case name, whatever case the room was made in.
        assert [(m["stream"], m["seq"], m["body"]) for m in pushed] == [
            ("room:ops", 1, "m0"),
            ("room:ops", 2, "m1"),
            ("room:ops", 3, "m2"),
        ]
        first = pushed[0]["id"]
        assert sock.client.call("chat:edit", {"id": first, "body": "m0!"})["ok"]
        assert sock.client.call("chat:delete", {"id": pushed[1]["id"]})["ok"]
        watching.wait_for(lambda ev: any(e == "chat:message-deleted" for e, _ in ev))
        assert [(e["seq"]) for e in watching.of("chat:message-edited")] == [4]
        assert [(e["seq"]) for e in watching.of("chat:message-deleted")] == [5]

        # A client that saw up to 1 fetches the rest, in order, as the socket sent them.
        answer = events(bob, "room:ops", 1)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["ok"] and body["last_seq"] == 5 and not body["more"]
        assert [(e["event"], e["seq"]) for e in body["events"]] == [
            ("chat:message", 2),
            ("chat:message", 3),
            ("chat:message-edited", 4),
            ("chat:message-deleted", 5),
        ]
        assert body["events"][0] == {"event": "chat:message", **pushed[1]}
        # htmx: the fragments themselves.
        html = events(bob, "room:ops", 3, **{"HX-Request": "true"})
        assert html.status_code == 200 and html.headers["X-Last-Seq"] == "5"
        assert f'id="message-{first}"' in html.text and 'hx-swap-oob="delete"' in html.text

        # The head follows the last event within a few seconds, to the room's sockets only.
        watching.wait_for(
            lambda ev: any(
                e == "stream:head" and d == {"stream": "room:ops", "seq": 5} for e, d in ev
            )
        )
        names = [e for e, _ in watching.events]
        assert names.index("stream:head") > names.index("chat:message-deleted")
        table = LiveSocket(BrowserSession(server.url)).connect()
        assert (
            BrowserSession(server.url).post("/table/rows", {"a": "1", "b": "2"}).status_code == 201
        )
        table.wait_for(lambda ev: any(e == "stream:head" for e, _ in ev))
        assert [d for e, d in table.events if e == "stream:head"] == [{"stream": "table", "seq": 1}]
        for one in (watching, sock, table):
            one.disconnect()


def test_events_refuses_bad_input_with_400_and_who_may_not_read_a_room(live_server):
    anonymous = BrowserSession(live_server.url)
    for params, words in [
        ({"after_seq": "0"}, "'stream' is required"),
        ({"stream": "table"}, "'after_seq'"),
        ({"stream": "table", "after_seq": "-3"}, "'after_seq'"),
        ({"stream": "table", "after_seq": "abc"}, "'after_seq'"),
        ({"stream": "nothing", "after_seq": "0"}, "There is no stream"),
    ]:
        answer = anonymous.http.get(f"{live_server.url}/events", params=params, timeout=10)
        assert answer.status_code == 400, (params, answer.text)
        assert answer.json()["ok"] is False and words in answer.json()["error"], params
    assert events(anonymous, "room:general", 0).status_code == 401
    alice = logged_in(live_server.url, "alice")
    assert events(alice, "room:general", 0).json()["events"] == []
    assert events(alice, "room:nowhere", 0).status_code == 400


def test_events_older_than_the_retention_answer_410(tmp_path):
    with sqlite_server(tmp_path, OUTBOX_RETENTION_SECONDS="1") as server:
        session = BrowserSession(server.url)
        for a in range(2):
            assert session.post("/table/rows", {"a": str(a), "b": "1"}).status_code == 201
        assert [e["seq"] for e in events(session, "table", 0).json()["events"]] == [1, 2]
        time.sleep(1.5)
        gone = events(session, "table", 0)
        assert gone.status_code == 410 and "no longer kept" in gone.json()["error"]
        # Up to date: nothing is missing, nothing to refuse.
        assert events(session, "table", 2).json()["events"] == []


def test_a_message_whose_writer_was_killed_before_publishing_reaches_its_room(live_server):
    alice, bob = logged_in(live_server.url, "alice"), logged_in(live_server.url, "bob")
    assert alice.post("/chat/general/messages", {"body": "first"}).status_code == 201
    listening = joined(bob)
    result = subprocess.run(
        [sys.executable, "-c", MESSAGE_KILLED_BEFORE_PUBLISH, "general", "lost?"],
        cwd=ROOT,
        env=live_server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == -9, f"expected SIGKILL, got {result.returncode}: {result.stderr}"
    died = time.monotonic()
    listening.wait_for(lambda ev: any(e == "chat:message" for e, _ in ev))
    print(f"\nthe unpublished message reached its room after {time.monotonic() - died:.2f} s")
    [message] = listening.of("chat:message")
    assert (message["body"], message["stream"], message["seq"]) == ("lost?", "room:general", 2)
    time.sleep(1.5)  # several relay rounds: it comes once
    assert len(listening.of("chat:message")) == 1
    listening.disconnect()


def test_every_worker_tells_its_own_sockets_the_head_after_the_last_event(cluster):
    # Two workers on PostgreSQL and Redis: each relay tells the sockets of its own worker, after
    # the events it sent them, so every client hears the head once per move, not once per worker.
    web = cluster("redis").start_host(workers=2, STREAM_HEAD_INTERVAL="0.5")
    clients: list[TableClient] = []
    while len(clients) < 6 or len(spread(clients)) < 2:
        clients.append(TableClient(web.url).connect())
        assert len(clients) < 40, "all clients landed on one worker"
    writer = BrowserSession(web.url)
    for a in range(3):
        assert writer.post("/table/rows", {"a": str(a), "b": "0"}).status_code == 201
    for client in clients:
        client.wait_for(
            lambda ev: any(e == "stream:head" and d["seq"] == 3 for e, d in ev), timeout=10
        )
        # Handled in the order they came: every row was there before the head that covers it.
        assert {row["seq"] for row in client.live} == {1, 2, 3}
    time.sleep(1.5)  # more relay rounds: nothing moved, nothing told again
    for client in clients:
        heads = [d for e, d in client.events if e == "stream:head"]
        assert heads[-1] == {"stream": "table", "seq": 3} and len(heads) <= 3, heads
        client.disconnect()
