from datetime import timedelta

import pytest
from sqlalchemy import func, select

from webapp.chat.models import Message
from webapp.clock import utcnow
from webapp.extensions import db


def events(sock, name=None):
    received = sock.get_received()
    return [e["args"][0] for e in received if name is None or e["name"] == name]


def count_messages(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Message.id)))


@pytest.fixture
def pair(accounts):
    """alice and bob, each with a socket that has joined general; their queues emptied."""
    alice, bob = accounts("alice"), accounts("bob")
    sockets = alice.socket(), bob.socket()
    for sock in sockets:
        assert sock.emit("chat:join", {"room": "general"}, callback=True)["ok"]
    for sock in sockets:
        sock.get_received()
    return sockets


def test_join_answers_the_last_id_and_members(pair, accounts):
    a, b = pair
    a.emit("chat:send", {"room": "general", "body": "hi"}, callback=True)
    ack = b.emit("chat:join", {"room": "GENERAL"}, callback=True)
    assert ack["ok"] and ack["last_id"] == 1 and ack["room"] == "general"
    assert ack["members"] == [
        {"user": "alice", "status": "online"},
        {"user": "bob", "status": "online"},
    ]


def test_messages_reach_everyone_in_the_room_once(pair):
    a, b = pair
    ack = a.emit("chat:send", {"room": "general", "body": "hello bob"}, callback=True)
    assert ack == {"ok": True, "id": 1}
    for sock in (a, b):
        [message] = events(sock, "chat:message")
        assert (message["id"], message["author"], message["body"]) == (1, "alice", "hello bob")
        assert 'id="message-1"' in message["html"]


def test_resend_with_same_client_id_answers_the_same_id(app, pair):
    a, b = pair
    data = {"room": "general", "body": "once", "client_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6"}
    first = a.emit("chat:send", data, callback=True)
    again = a.emit("chat:send", data, callback=True)
    assert first == again == {"ok": True, "id": 1}
    assert count_messages(app) == 1 and len(events(b, "chat:message")) == 1


def test_user_in_another_room_receives_nothing_from_this_one(pair, accounts):
    a, _ = pair
    carol = accounts("carol")
    assert carol.browser.post("/chat/rooms", {"name": "random"}).status_code == 201
    c = carol.socket()
    assert c.emit("chat:join", {"room": "random"}, callback=True)["ok"]
    c.get_received()
    a.emit("chat:send", {"room": "general", "body": "general only"}, callback=True)
    a.emit("chat:typing", {"room": "general"}, callback=True)
    a.emit("presence:set", {"status": "away"}, callback=True)
    # As a member of general she hears that something new is there (her sidebar), not what.
    heard = c.get_received()
    assert [e["name"] for e in heard] == ["chat:activity"]
    assert set(heard[0]["args"][0]) == {"room", "id", "author"}


def test_joining_another_room_leaves_the_first(pair, accounts):
    a, b = pair
    accounts("carol").browser.post("/chat/rooms", {"name": "random"})
    assert b.emit("chat:join", {"room": "random"}, callback=True)["ok"]
    b.get_received()
    a.emit("chat:send", {"room": "general", "body": "bob left"}, callback=True)
    assert events(b, "chat:message") == []
    assert b.emit("chat:leave", {"room": "random"}, callback=True) == {"ok": True}


def test_typing_reaches_the_room(pair):
    a, b = pair
    assert a.emit("chat:typing", {"room": "general"}, callback=True) == {"ok": True}
    [typing] = events(b, "chat:typing")
    assert typing["room"] == "general" and typing["user"] == "alice"
    assert "alice is typing" in typing["html"]
    # A second keystroke within the second is acknowledged but not sent again.
    assert a.emit("chat:typing", {"room": "general"}, callback=True) == {"ok": True}
    assert events(b, "chat:typing") == []


def test_presence_online_away_offline(pair, accounts):
    a, b = pair
    assert a.emit("presence:set", {"status": "away"}, callback=True) == {
        "ok": True,
        "status": "away",
    }
    [change] = events(b, "chat:presence")
    assert change["user"] == "alice" and change["status"] == "away"
    assert 'id="member-1"' in change["html"] and 'data-status="away"' in change["html"]
    a.emit("presence:set", {"status": "online"}, callback=True)
    assert [p["status"] for p in events(b, "chat:presence")] == ["online"]
    a.disconnect()
    [change] = events(b, "chat:presence")
    assert (change["user"], change["status"]) == ("alice", "offline")


def test_edit_and_delete_own_message(app, pair):
    a, b = pair
    message_id = a.emit("chat:send", {"room": "general", "body": "helo"}, callback=True)["id"]
    b.get_received()
    assert a.emit("chat:edit", {"id": message_id, "body": "hello"}, callback=True)["ok"]
    [edited] = events(b, "chat:message-edited")
    assert edited["body"] == "hello" and edited["id"] == message_id and edited["edited_at"]
    assert b.emit("chat:edit", {"id": message_id, "body": "mine now"}, callback=True) == {
        "ok": False,
        "error": "You can only change your own messages.",
    }
    assert b.emit("chat:delete", {"id": message_id}, callback=True)["ok"] is False
    assert a.emit("chat:delete", {"id": message_id}, callback=True) == {
        "ok": True,
        "id": message_id,
    }
    [deleted] = events(b, "chat:message-deleted")
    assert deleted["id"] == message_id and 'hx-swap-oob="delete"' in deleted["html"]


def test_editing_after_ten_minutes_is_refused(app, pair):
    a, b = pair
    message_id = a.emit("chat:send", {"room": "general", "body": "old"}, callback=True)["id"]
    with app.app_context():
        db.session.get(Message, message_id).created_at = utcnow() - timedelta(minutes=10, seconds=1)
        db.session.commit()
    b.get_received()
    ack = a.emit("chat:edit", {"id": message_id, "body": "new"}, callback=True)
    assert ack["ok"] is False and "10 minutes" in ack["error"]
    assert events(b) == []


def test_flood_control(app, pair):
    a, _ = pair
    for i in range(10):
        assert a.emit("chat:send", {"room": "general", "body": str(i)}, callback=True)["ok"]
    ack = a.emit("chat:send", {"room": "general", "body": "11th"}, callback=True)
    assert ack["ok"] is False and "Slow down" in ack["error"]
    assert count_messages(app) == 10


CHAT_EVENTS = [
    "chat:join",
    "chat:leave",
    "chat:send",
    "chat:edit",
    "chat:delete",
    "chat:typing",
    "presence:set",
]


@pytest.mark.parametrize("event", CHAT_EVENTS)
def test_anonymous_socket_cannot_use_chat_events(app, socket_client, event):
    sock = socket_client()
    data = {"room": "general", "body": "hi", "id": 1, "status": "away"}
    assert sock.emit(event, data, callback=True) == {"ok": False, "error": "Log in to chat."}
    assert count_messages(app) == 0


MALFORMED = [
    ("chat:join", None, "JSON object"),
    ("chat:join", "general", "JSON object"),
    ("chat:join", ["general"], "JSON object"),
    ("chat:join", {}, "room"),
    ("chat:join", {"room": 5}, "room"),
    ("chat:join", {"room": "nowhere"}, "no room"),
    ("chat:join", {"room": "../etc"}, "Room name"),
    ("chat:leave", {"room": None}, "room"),
    ("chat:leave", {"room": "nowhere"}, "no room"),
    ("chat:send", {"room": "general"}, "must be text"),
    ("chat:send", {"body": "hi"}, "room"),
    ("chat:send", {"room": "nowhere", "body": "hi"}, "no room"),
    ("chat:send", {"room": "general", "body": ""}, "empty"),
    ("chat:send", {"room": "general", "body": "   "}, "empty"),
    ("chat:send", {"room": "general", "body": "x" * 2001}, "too long"),
    ("chat:send", {"room": "general", "body": 42}, "must be text"),
    ("chat:send", {"room": "general", "body": {"x": 1}}, "must be text"),
    ("chat:send", {"room": "general", "body": "hi", "client_id": 7}, "client_id"),
    ("chat:send", {"room": "general", "body": "hi", "client_id": "abc"}, "client_id"),
    ("chat:edit", {"body": "x"}, "'id'"),
    ("chat:edit", {"id": "1", "body": "x"}, "'id'"),
    ("chat:edit", {"id": True, "body": "x"}, "'id'"),
    ("chat:edit", {"id": 999, "body": "x"}, "no such message"),
    ("chat:edit", {"id": 1}, "must be text"),
    ("chat:delete", {}, "'id'"),
    ("chat:delete", {"id": -1}, "'id'"),
    ("chat:delete", {"id": 2**70}, "'id'"),
    ("chat:delete", {"id": 999}, "no such message"),
    ("chat:typing", {}, "room"),
    ("chat:typing", {"room": "nowhere"}, "no room"),
    ("presence:set", {}, "status"),
    ("presence:set", {"status": "offline"}, "status"),
    ("presence:set", {"status": ["away"]}, "status"),
]


def test_malformed_data_is_refused_and_changes_nothing(app, pair):
    # One app for all cases keeps this fast; each case names itself when it fails.
    a, b = pair
    for event, data, error in MALFORMED:
        ack = a.emit(event, data, callback=True)
        assert ack["ok"] is False, (event, data, ack)
        assert error.lower() in ack["error"].lower(), (event, data, ack)
        assert count_messages(app) == 0, (event, data)
        assert events(b) == [], (event, data)


def test_extra_arguments_are_refused(pair):
    a, _ = pair
    assert (
        a.emit("chat:send", {"room": "general", "body": "x"}, "extra", callback=True)["ok"] is False
    )
    assert a.emit("chat:send", callback=True)["ok"] is False


def test_away_only_when_every_tab_is_away(accounts):
    alice, bob = accounts("alice"), accounts("bob")
    watcher = bob.socket()
    watcher.emit("chat:join", {"room": "general"}, callback=True)
    first, second = alice.socket(), alice.socket()
    first.emit("chat:join", {"room": "general"}, callback=True)
    watcher.get_received()
    assert first.emit("presence:set", {"status": "away"}, callback=True)["status"] == "online"
    assert events(watcher, "chat:presence") == []
    assert second.emit("presence:set", {"status": "away"}, callback=True)["status"] == "away"
    assert [p["status"] for p in events(watcher, "chat:presence")] == ["away"]
    first.disconnect()
    assert events(watcher, "chat:presence") == []  # still away: the other tab is open
    second.disconnect()
    assert [p["status"] for p in events(watcher, "chat:presence")] == ["offline"]


def test_join_answers_every_members_status(pair):
    """A page missed the presence changes between its render and its join (its own user going
    Online too), or while it was disconnected: the join's answer tells it what is true now."""
    a, b = pair
    a.emit("presence:set", {"status": "away"}, callback=True)
    a.get_received()
    b.get_received()
    ack = b.emit("chat:join", {"room": "general"}, callback=True)  # as after a reconnect
    assert ack["ok"]
    assert {m["user"]: m["status"] for m in ack["members"]} == {"alice": "away", "bob": "online"}
    assert events(a) == []  # nobody else is told anything
