"""Messages are rendered before they are stored; one that cannot be rendered breaks nothing else;
flood control says when a refused message will be accepted. Through Flask's test clients (the
same over gunicorn and real sockets: tests/e2e/test_chat_messages_live.py)."""

import logging
import re
import uuid

import pytest
from sqlalchemy import func, select

from webapp.chat import services, text
from webapp.chat.models import EDIT_WINDOW, Message
from webapp.extensions import db
from webapp.realtime.presence import MemoryPresence

from .test_realtime_presence import Clock, redis_stores  # noqa: F401  (a fixture)

JSON = {"Accept": "application/json"}
ARTICLE = re.compile(r'<article id="message-(\d+)".*?</article>', re.DOTALL)


def count_messages(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Message.id)))


@pytest.fixture
def renderer_fails_for(monkeypatch):
    """``renderer_fails_for(body)``: the Markdown renderer raises for that text (a fault of the
    library), and only for it."""
    failing = set()
    real = text._md.render

    def render(source, *args, **kwargs):
        if source in failing:
            raise RecursionError("maximum recursion depth exceeded")
        return real(source, *args, **kwargs)

    def fail_for(body: str) -> None:
        failing.add(body)
        text.render.cache_clear()  # it may have rendered (and been cached) before

    monkeypatch.setattr(text._md, "render", render)
    yield fail_for
    text.render.cache_clear()


@pytest.fixture
def pair(accounts):
    alice, bob = accounts("alice"), accounts("bob")
    sockets = alice.socket(), bob.socket()
    for sock in sockets:
        assert sock.emit("chat:join", {"room": "general"}, callback=True)["ok"]
    for sock in sockets:
        sock.get_received()
    return alice, bob, sockets


def test_a_message_that_cannot_be_rendered_is_refused_not_stored_nor_sent(
    app, pair, renderer_fails_for
):
    alice, _bob, (a, b) = pair
    body = f"breaks the renderer {uuid.uuid4()}"
    renderer_fails_for(body)

    ack = a.emit("chat:send", {"room": "general", "body": body}, callback=True)
    assert ack == {"ok": False, "error": services.UNSHOWABLE}
    response = alice.browser.post(
        "/chat/general/messages", {"body": body}, htmx=False, headers=JSON
    )
    assert response.status_code == 422 and response.json["error"] == services.UNSHOWABLE
    assert count_messages(app) == 0
    assert b.get_received() == [] and a.get_received() == []

    # An edit to such a text is refused the same way and changes nothing.
    ack = a.emit("chat:send", {"room": "general", "body": "fine"}, callback=True)
    assert ack["ok"]
    refused = a.emit("chat:edit", {"id": ack["id"], "body": body}, callback=True)
    assert refused == {"ok": False, "error": services.UNSHOWABLE}
    with app.app_context():
        stored = db.session.get(Message, ack["id"])
        assert (stored.body, stored.edited_at) == ("fine", None)
    assert [e["name"] for e in b.get_received() if e["name"] != "chat:activity"] == ["chat:message"]


def test_a_stored_message_that_cannot_be_rendered_shows_as_a_placeholder_logged_once(
    app, pair, renderer_fails_for, caplog
):
    _alice, bob, (a, _b) = pair
    ids = [
        a.emit("chat:send", {"room": "general", "body": f"message {n}"}, callback=True)["id"]
        for n in range(3)
    ]
    # It rendered when it was stored; now the renderer fails on it (a new library version,
    # a row written around the app): the rest of the room still shows.
    renderer_fails_for("message 1")
    caplog.set_level(logging.ERROR, logger="webapp.chat.text")
    answers = [
        bob.client.get("/chat/general"),
        bob.client.get("/chat/general/messages", headers={"HX-Request": "true"}),
        bob.client.get("/chat/general/messages?after=0", headers={"HX-Request": "true"}),
        bob.client.get(f"/chat/general/messages?before={ids[2] + 1}&limit=10"),
    ]
    for response in answers:
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        shown = {int(m.group(1)): m.group(0) for m in ARTICLE.finditer(html)}
        assert list(shown) == ids
        assert "<p>message 0</p>" in shown[ids[0]] and "<p>message 2</p>" in shown[ids[2]]
        assert "This message cannot be shown." in shown[ids[1]]
        assert "message 1</p>" not in shown[ids[1]]
    logged = [r for r in caplog.records if f"message {ids[1]} cannot be shown" in r.message]
    assert len(logged) == 1
    # JSON clients get the text itself.
    stored = bob.client.get("/chat/general/messages?after=0", headers=JSON).json["messages"]
    assert [m["body"] for m in stored] == ["message 0", "message 1", "message 2"]


def test_a_message_edited_later_re_renders_for_everyone(app, pair):
    _alice, _bob, (a, b) = pair
    ack = a.emit("chat:send", {"room": "general", "body": "plain"}, callback=True)
    b.get_received()
    assert a.emit("chat:edit", {"id": ack["id"], "body": "now **bold**"}, callback=True)["ok"]
    [edited] = [e["args"][0] for e in b.get_received() if e["name"] == "chat:message-edited"]
    assert (
        "<strong>bold</strong>" in edited["html"] and 'data-body="now **bold**"' in edited["html"]
    )


def test_every_message_carries_the_time_its_edit_window_ends(app, pair):
    alice, _bob, (a, _b) = pair
    a.emit("chat:send", {"room": "general", "body": "hi"}, callback=True)
    [event] = [e["args"][0] for e in a.get_received() if e["name"] == "chat:message"]
    with app.app_context():
        message = db.session.get(Message, event["id"])
        until = message.editable_until
        assert until - message.created_at.replace(tzinfo=until.tzinfo) == EDIT_WINDOW
    iso = until.isoformat().replace("+00:00", "Z")
    assert f'data-editable-until="{iso}"' in event["html"]
    assert f'data-editable-until="{iso}"' in alice.client.get("/chat/general").get_data(True)


def test_flood_control_tells_when_the_message_would_be_accepted(app, pair):
    alice, _bob, (a, _b) = pair
    for n in range(services.FLOOD_LIMIT):
        assert a.emit("chat:send", {"room": "general", "body": str(n)}, callback=True)["ok"]
    ack = a.emit("chat:send", {"room": "general", "body": "one too many"}, callback=True)
    assert ack["ok"] is False and "Slow down" in ack["error"]
    assert 1 <= ack["retry_after"] <= services.FLOOD_WINDOW
    response = alice.browser.post(
        "/chat/general/messages", {"body": "again"}, htmx=False, headers=JSON
    )
    assert response.status_code == 429
    assert 1 <= response.json["retry_after"] <= services.FLOOD_WINDOW
    assert response.headers["Retry-After"] == str(response.json["retry_after"])
    htmx = alice.browser.post("/chat/general/messages", {"body": "and again"})
    assert htmx.status_code == 429 and "Retry-After" in htmx.headers
    assert count_messages(app) == services.FLOOD_LIMIT


def test_the_wait_is_until_the_oldest_counted_message_leaves_the_window():
    clock = Clock()
    store = MemoryPresence(clock=clock)
    assert store.retry_after("k", 3, 10) == 0
    for step in (0, 2, 2):
        clock.now += step
        assert store.allow("k", 3, 10)
    assert not store.allow("k", 3, 10)
    assert store.retry_after("k", 3, 10) == pytest.approx(6)  # the first, at 1000, goes at 1010
    clock.now += 6.01
    assert store.retry_after("k", 3, 10) == 0 and store.allow("k", 3, 10)
    assert store.retry_after("k", 3, 10) == pytest.approx(2 - 0.01)


def test_the_wait_in_redis_agrees(redis_stores):  # noqa: F811  (the fixture)
    store = redis_stores("worker")
    key = f"send:{uuid.uuid4().hex}"
    assert store.retry_after(key, 3, 10) == 0
    for _ in range(3):
        assert store.allow(key, 3, 10)
    assert not store.allow(key, 3, 10)
    assert 9 < store.retry_after(key, 3, 10) <= 10
