"""Message text over gunicorn, real sockets and HTTP: no message breaks its room for anyone.

A body such as ``look http://[x`` used to be stored and then make every render of its room
(the page, the message fragments, the catch-up) answer 500, for every user.
"""

import re
import sqlite3
import time

import pytest

from .clients import LiveSocket, logged_in

pytestmark = pytest.mark.e2e

ARTICLE = re.compile(r'<article id="message-(\d+)".*?</article>', re.DOTALL)
HTMX = {"HX-Request": "true"}
JSON = {"Accept": "application/json"}
UNSHOWN = "This message cannot be shown."

HOSTILE = [
    "look http://[x",
    "http://[abc]",
    "http://a＃b",
    "www.[x and mailto:[y",
    "[click](javascript:alert(1)) <script>alert(1)</script>",
    "**unclosed _emphasis `code\n```\nfence that never ends",
]


def post(session, body: str):
    """POST a message as a script does (JSON answer)."""
    return session.http.post(
        f"{session.base_url}/chat/general/messages",
        data={"body": body},
        headers={"X-CSRFToken": session.token, **JSON},
        timeout=10,
    )


def shown(html: str) -> dict[int, str]:
    """id -> the article of each message a page or fragment shows."""
    return {int(m.group(1)): m.group(0) for m in ARTICLE.finditer(html)}


def renders_of_the_room(session, room: str) -> dict[str, dict[int, str]]:
    """Every way a browser renders the room: what each shows, after asserting it answered 200."""
    answers = {
        "page": session.http.get(f"{session.base_url}/chat/{room}", timeout=10),
        "fragments": session.http.get(
            f"{session.base_url}/chat/{room}/messages", headers=HTMX, timeout=10
        ),
        "older": session.http.get(
            f"{session.base_url}/chat/{room}/messages?before=1000000&limit=50",
            headers=HTMX,
            timeout=10,
        ),
        "catch-up": session.http.get(
            f"{session.base_url}/chat/{room}/messages?after=0", headers=HTMX, timeout=10
        ),
    }
    for name, response in answers.items():
        assert response.status_code == 200, (name, response.status_code, response.text[:300])
    return {name: shown(response.text) for name, response in answers.items()}


def test_hostile_bodies_are_shown_and_every_render_of_the_room_still_works(live_server):
    url = live_server.url
    alice, mallory, bob = (logged_in(url, name) for name in ("alice", "mallory", "bob"))
    bob_socket = LiveSocket(bob).connect()
    assert bob_socket.client.call("chat:join", {"room": "general"}, timeout=10)["ok"]
    mallory_socket = LiveSocket(mallory).connect()

    before = post(alice, "before")
    assert before.status_code == 201, before.text
    ids = {}
    for number, body in enumerate(HOSTILE):
        if number % 2:  # over the socket, and over HTTP
            ack = mallory_socket.client.call(
                "chat:send", {"room": "general", "body": body}, timeout=10
            )
            assert ack["ok"], (body, ack)
            ids[ack["id"]] = body
        else:
            response = post(mallory, body)
            assert response.status_code == 201, (body, response.status_code, response.text)
            ids[response.json()["id"]] = body
    after = post(alice, "after")
    assert after.status_code == 201, after.text
    expected = [before.json()["id"], *ids, after.json()["id"]]

    # bob's socket got every one of them, rendered.
    bob_socket.wait_for(lambda events: sum(e == "chat:message" for e, _ in events) == 8)
    live = bob_socket.of("chat:message")
    assert [m["id"] for m in live] == expected
    assert all(f'id="message-{m["id"]}"' in m["html"] for m in live)

    # Every render of the room, as bob: all 200, every message there, none a placeholder.
    for name, messages in renders_of_the_room(bob, "general").items():
        assert list(messages) == expected, name
        assert "<p>before</p>" in messages[expected[0]] and "<p>after</p>" in messages[expected[-1]]
        assert not any(UNSHOWN in article for article in messages.values()), name
        assert "<script" not in "".join(messages.values()), name
    # The text itself is kept as typed.
    stored = bob.http.get(f"{url}/chat/general/messages?after=0", headers=JSON, timeout=10)
    assert [m["body"] for m in stored.json()["messages"]] == ["before", *HOSTILE, "after"]
    for sock in (bob_socket, mallory_socket):
        sock.disconnect()


def test_a_stored_message_that_cannot_be_rendered_leaves_the_rest_of_the_room_shown(
    live_server, tmp_path
):
    url = live_server.url
    alice, bob = logged_in(url, "alice"), logged_in(url, "bob")
    first = post(alice, "first").json()["id"]

    # Rows written around the app (an older version, a script): one the old link parser
    # raised on, and one the renderer refuses (longer than any message: rendering time grows
    # with length, and a worker renders while all of its sockets wait).
    with sqlite3.connect(tmp_path / "e2e.db") as db:
        copy = (
            "INSERT INTO messages (room_id, author_id, body, created_at)"
            " SELECT room_id, author_id, ?, created_at FROM messages WHERE id = ?"
        )
        broke_the_old_parser = db.execute(copy, ("look http://[x", first)).lastrowid
        unrenderable = db.execute(copy, ("too long " * 300, first)).lastrowid
    last = post(alice, "last").json()["id"]
    expected = [first, broke_the_old_parser, unrenderable, last]

    for _ in range(2):
        for name, messages in renders_of_the_room(bob, "general").items():
            assert list(messages) == expected, name
            assert "<p>first</p>" in messages[first] and "<p>last</p>" in messages[last]
            assert "<p>look http://[x</p>" in messages[broke_the_old_parser], name
            assert UNSHOWN in messages[unrenderable], name
            assert "<p>too long" not in messages[unrenderable], name

    # Logged once, however often it was asked for (eight renders above).
    time.sleep(0.5)  # the worker's log lines reach the file
    log = live_server.log_path.read_text()
    assert log.count(f"message {unrenderable} cannot be shown") == 1, log[-3000:]
