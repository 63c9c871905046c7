"""The chat end to end: gunicorn with the gevent websocket worker, real sockets, real users."""

import re
import uuid

import pytest

from ..services import require, unique_channel
from .clients import LiveSocket, logged_in
from .server import LiveServer

pytestmark = pytest.mark.e2e

MESSAGES = re.compile(r'<div id="messages".*?>(.*?)</div>\s*<p class="chat-empty', re.DOTALL)
ARTICLE = re.compile(r'<article id="message-(\d+)".*?</article>', re.DOTALL)


def shown_messages(html: str) -> list[tuple[int, str]]:
    """(id, html) of each message a page or fragment shows, in display order."""
    return [(int(m.group(1)), m.group(0)) for m in ARTICLE.finditer(html)]


def joined(session, room="general") -> LiveSocket:
    sock = LiveSocket(session).connect()
    ack = sock.client.call("chat:join", {"room": room}, timeout=10)
    assert ack["ok"], ack
    return sock


def about(name, user=None, status=None):
    def matches(events):
        return any(
            e == name
            and (user is None or d.get("user") == user or d.get("author") == user)
            and (status is None or d.get("status") == status)
            for e, d in events
        )

    return matches


def test_two_users_talk_see_presence_and_typing_and_others_hear_nothing(live_server):
    alice, bob, carol = (logged_in(live_server.url, name) for name in ("alice", "bob", "carol"))
    assert carol.post("/chat/rooms", {"name": "random"}).status_code == 201
    carol_socket = joined(carol, "random")
    alice_socket, bob_socket = joined(alice), joined(bob)

    # Messages both ways, each received exactly once by everyone in the room.
    assert alice_socket.client.call("chat:send", {"room": "general", "body": "hi bob"})["ok"]
    bob_socket.wait_for(about("chat:message", "alice"))
    assert bob_socket.client.call("chat:send", {"room": "general", "body": "hi <b>alice</b>"})["ok"]
    alice_socket.wait_for(about("chat:message", "bob"))
    for sock in (alice_socket, bob_socket):
        sock.wait_for(lambda events: sum(e == "chat:message" for e, _ in events) >= 2)
        assert [m["body"] for m in sock.of("chat:message")] == ["hi bob", "hi <b>alice</b>"]
    assert "hi &lt;b&gt;alice&lt;/b&gt;" in alice_socket.of("chat:message")[1]["html"]

    # Typing.
    assert bob_socket.client.call("chat:typing", {"room": "general"})["ok"]
    [typing] = [
        d for e, d in alice_socket.wait_for(about("chat:typing", "bob")) if e == "chat:typing"
    ]
    assert typing["room"] == "general" and "bob is typing" in typing["html"]

    # Presence: away, online again, offline when the socket closes.
    assert alice_socket.client.call("presence:set", {"status": "away"})["ok"]
    bob_socket.wait_for(about("chat:presence", "alice", "away"))
    assert alice_socket.client.call("presence:set", {"status": "online"})["ok"]
    bob_socket.wait_for(
        lambda events: (
            [d["status"] for e, d in events if e == "chat:presence" and d["user"] == "alice"][-1:]
            == ["online"]
        )
    )
    alice_socket.disconnect()
    bob_socket.wait_for(about("chat:presence", "alice", "offline"))
    page = bob.load("/chat/general")
    assert 'data-user="alice" data-status="offline"' in page
    assert 'data-user="bob" data-status="online"' in page

    # carol, in another room, heard nothing of general but that something new is there (her
    # sidebar's chat:activity, as a member of general): only her own arrival in random.
    heard = [(e, d) for e, d in carol_socket.events if e != "chat:activity"]
    assert all(d.get("user") == "carol" for _, d in heard), carol_socket.events
    assert all(
        set(d) == {"room", "id", "author"} for e, d in carol_socket.events if e == "chat:activity"
    )
    bob_socket.disconnect()
    carol_socket.disconnect()


def test_resend_with_the_same_client_id_is_stored_once(live_server):
    alice = logged_in(live_server.url, "alice")
    sock = joined(alice)
    data = {"room": "general", "body": "only once", "client_id": str(uuid.uuid4())}
    first = sock.client.call("chat:send", data, timeout=10)
    sock.disconnect()
    sock = joined(alice)  # a dropped connection: the client resends with the same id
    again = sock.client.call("chat:send", data, timeout=10)
    assert first["ok"] and again == first
    assert alice.load("/chat/general").count("<p>only once</p>") == 1
    sock.disconnect()


def test_reconnect_catch_up_equals_a_fresh_load(live_server):
    alice, bob = logged_in(live_server.url, "alice"), logged_in(live_server.url, "bob")
    alice_socket, bob_socket = joined(alice), joined(bob)
    ids = [
        alice_socket.client.call("chat:send", {"room": "general", "body": f"before {i}"})["id"]
        for i in range(3)
    ]
    bob_page = bob.load("/chat/general")
    shown = [i for i, _ in shown_messages(bob_page)]
    assert shown == ids
    bob_socket.disconnect()

    # While bob is away: new messages, an edit and a delete.
    new = [
        alice_socket.client.call("chat:send", {"room": "general", "body": f"missed {i}"})["id"]
        for i in range(3)
    ]
    assert alice_socket.client.call("chat:edit", {"id": ids[1], "body": "before 1, edited"})["ok"]
    assert alice_socket.client.call("chat:delete", {"id": new[0]})["ok"]

    # Back: rejoin, then fetch the shown window again, as realtime.js does after a reconnect.
    bob_socket = joined(bob)
    catchup = bob.http.get(
        f"{live_server.url}/chat/general/messages?after={min(shown) - 1}",
        headers={"HX-Request": "true"},
        timeout=10,
    ).text
    assert catchup.startswith('<div hx-swap-oob="beforeend:#messages">')
    fresh = MESSAGES.search(bob.load("/chat/general")).group(1)
    assert shown_messages(catchup) == shown_messages(fresh)
    assert [i for i, _ in shown_messages(fresh)] == ids + new[1:]
    assert "before 1, edited" in catchup and "(edited)" in catchup
    alice_socket.disconnect()
    bob_socket.disconnect()


def test_users_of_a_dead_worker_go_offline(tmp_path):
    """Presence in Redis: a worker that stops beating is reaped by a live one within 60 s."""
    from webapp.realtime.presence import Connection, RedisPresence

    redis_url = require("TEST_REDIS_URL")
    channel = unique_channel()
    server = LiveServer(
        {
            "SECRET_KEY": "e2e-secret",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'e2e.db'}",
            "MESSAGE_QUEUE_URL": redis_url,
            "SOCKETIO_CHANNEL": channel,
        },
        log_path=tmp_path / "gunicorn.log",
    )
    server.migrate()
    server.start()
    store = RedisPresence(redis_url, prefix=f"{channel}:presence:", worker_id="dead-worker")
    try:
        alice, bob = logged_in(server.url, "alice"), logged_in(server.url, "bob")
        # Opening the room makes alice a member of general.
        alice_id = int(
            re.search(
                r'id="member-(\d+)" class="chat-member" data-user="alice"',
                alice.load("/chat/general"),
            ).group(1)
        )
        # alice's only tab is held by a worker that is about to die: it beats once, for 8 s.
        store.heartbeat(8.0)
        store.add(Connection("dead-sid", alice_id, "alice", "dead-worker"))
        bob_socket = joined(bob)
        ack = bob_socket.client.call("chat:join", {"room": "general"}, timeout=10)
        assert {"user": "alice", "status": "online"} in ack["members"]
        bob_socket.wait_for(about("chat:presence", "alice", "offline"), timeout=60)
        assert 'data-user="alice" data-status="offline"' in bob.load("/chat/general")
        bob_socket.disconnect()
    finally:
        server.stop()
        keys = list(store.redis.scan_iter(f"{channel}:*"))
        if keys:
            store.redis.delete(*keys)
