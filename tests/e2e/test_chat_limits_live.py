"""Limits against amplification on a real gunicorn server, with python-socketio clients: edits,
presence changes and new rooms per user; a chat page's size does not grow with the rooms."""

import re
import sqlite3
import time
from pathlib import Path

import pytest
import requests

from .clients import LiveSocket, logged_in
from .conftest import sqlite_server

pytestmark = pytest.mark.e2e

EDITS, TOGGLES, ROOMS = 5, 4, 3


@pytest.fixture
def server(tmp_path):
    with sqlite_server(
        tmp_path,
        RATELIMIT_EDITS_PER_USER=f"{EDITS} per minute",
        RATELIMIT_PRESENCE_PER_USER=f"{TOGGLES} per minute",
        RATELIMIT_ROOMS_PER_USER=f"{ROOMS} per minute",
    ) as server:
        yield server


def joined(session, room="general") -> LiveSocket:
    sock = LiveSocket(session).connect()
    assert sock.client.call("chat:join", {"room": room}, timeout=10)["ok"]
    return sock


def assert_refused(ack: dict, reason: str) -> None:
    assert ack["ok"] is False and reason in ack["error"], ack
    assert isinstance(ack["retry_after"], int) and 1 <= ack["retry_after"] <= 60, ack
    assert f"Try again in {ack['retry_after']} second" in ack["error"]


def test_edits_over_the_limit_are_refused_and_not_broadcast(server):
    alice, bob = logged_in(server.url, "alice"), logged_in(server.url, "bob")
    author, watcher = joined(alice), joined(bob)
    message_id = author.client.call("chat:send", {"room": "general", "body": "v0"}, timeout=10)[
        "id"
    ]
    for i in range(1, EDITS + 1):
        ack = author.client.call("chat:edit", {"id": message_id, "body": f"v{i}"}, timeout=10)
        assert ack["ok"], ack
    watcher.wait_for(lambda events: len(watcher.of("chat:message-edited")) == EDITS)
    refused = author.client.call("chat:edit", {"id": message_id, "body": "too many"}, timeout=10)
    assert_refused(refused, "Too many edits.")
    time.sleep(1.5)  # time for a broadcast that should not happen
    assert [e["body"] for e in watcher.of("chat:message-edited")] == [
        f"v{i}" for i in range(1, EDITS + 1)
    ]
    stored = requests.get(
        f"{server.url}/chat/general/messages",
        headers={"Accept": "application/json"},
        cookies=bob.http.cookies,
        timeout=10,
    ).json()["messages"]
    assert [m["body"] for m in stored if m["id"] == message_id] == [f"v{EDITS}"]
    # Another user's edits are counted on their own.
    own = watcher.client.call("chat:send", {"room": "general", "body": "b0"}, timeout=10)["id"]
    assert watcher.client.call("chat:edit", {"id": own, "body": "b1"}, timeout=10)["ok"]
    author.disconnect()
    watcher.disconnect()


def test_presence_toggles_over_the_limit_are_refused_and_not_broadcast(server):
    alice, bob = logged_in(server.url, "alice"), logged_in(server.url, "bob")
    toggler, watcher = joined(alice), joined(bob)
    statuses = ["away", "online"] * TOGGLES
    for status in statuses[:TOGGLES]:
        ack = toggler.client.call("presence:set", {"status": status}, timeout=10)
        assert ack["ok"] and ack["status"] == status, ack
    last = statuses[TOGGLES - 1]

    def alices(events):
        return [d["status"] for e, d in events if e == "chat:presence" and d["user"] == "alice"]

    watcher.wait_for(lambda events: alices(events)[-1:] == [last])
    seen = len(alices(watcher.events))
    refused = toggler.client.call("presence:set", {"status": statuses[TOGGLES]}, timeout=10)
    assert_refused(refused, "Too many status changes.")
    time.sleep(1.5)  # time for a broadcast that should not happen
    assert len(alices(watcher.events)) == seen and alices(watcher.events)[-1] == last
    members = requests.get(
        f"{server.url}/chat/general/members",
        headers={"Accept": "application/json"},
        cookies=bob.http.cookies,
        timeout=10,
    ).json()["members"]
    assert {"user": "alice", "status": last} in members
    toggler.disconnect()
    watcher.disconnect()


def test_rooms_over_the_limit_get_429_with_retry_after(server):
    alice = logged_in(server.url, "alice")
    # A refused name costs nothing.
    assert alice.post("/chat/rooms", {"name": "no good"}).status_code == 422
    for i in range(ROOMS):
        assert alice.post("/chat/rooms", {"name": f"room{i}"}).status_code == 201
    refused = alice.post("/chat/rooms", {"name": "onetoomany"})
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
    # htmx gets the form back, with the reason, so the user can try again later.
    assert 'id="room-form"' in refused.text and "Too many new rooms." in refused.text
    api = alice.http.post(
        f"{server.url}/chat/rooms",
        data={"name": "onetoomany"},
        headers={"X-CSRFToken": alice.token, "Accept": "application/json"},
        timeout=10,
    )
    assert api.status_code == 429 and api.headers["Retry-After"]
    assert api.json()["ok"] is False and "Too many new rooms." in api.json()["error"]
    assert alice.http.get(f"{server.url}/chat/onetoomany", timeout=10).status_code == 404
    # Another user is not affected.
    bob = logged_in(server.url, "bob")
    assert bob.post("/chat/rooms", {"name": "bobs"}).status_code == 201


ROOM_LINK = re.compile(r'<a id="room-link-\d+" href="/chat/([\w-]+)"')


def add_rooms(database: Path, count: int) -> None:
    """Rooms straight into the database, as 1,500 creations by many accounts would leave them."""
    with sqlite3.connect(database) as connection:
        connection.executemany(
            "INSERT INTO rooms (name, name_key, created_at) VALUES (?, ?, CURRENT_TIMESTAMP)",
            [(f"Spam{i:05d}", f"spam{i:05d}") for i in range(count)],
        )


def test_the_room_list_does_not_grow_with_the_number_of_rooms(tmp_path):
    with sqlite_server(tmp_path) as server:
        alice, bob = logged_in(server.url, "alice"), logged_in(server.url, "bob")
        for name in ("design", "ops"):
            assert bob.post("/chat/rooms", {"name": name}).status_code == 201
        assert bob.post("/chat/ops/messages", {"body": "busy here"}).status_code == 201
        assert alice.post("/chat/design/join", {}).status_code == 200
        small = {path: alice.load(path) for path in ("/chat", "/chat/general")}
        assert set(ROOM_LINK.findall(small["/chat"])) == {"general", "design", "ops"}

        add_rooms(tmp_path / "e2e.db", 1500)
        big = {path: alice.load(path) for path in ("/chat", "/chat/general")}
        for path, page in big.items():
            print(f"\n{path}: {len(small[path])} bytes with 3 rooms, {len(page)} with 1503")
            # At most the 20 others a page lists: a few KB, not the 450 KB of every room.
            assert len(page) < len(small[path]) + 20 * 400, path
            listed = ROOM_LINK.findall(page)
            # Their own rooms and the active one first, then the newest; and a way to the rest.
            assert {"general", "design", "ops"} <= set(listed) and len(listed) <= 3 + 20
            assert 'data-role="all-rooms"' in page

        # "All rooms" pages through every room by name, a bounded page at a time.
        seen, path = [], "/chat?all=1"
        while path:
            page = alice.load(path)
            assert len(page) < len(small["/chat"]) + 50 * 400
            seen += ROOM_LINK.findall(page)
            after = re.search(r'href="(/chat\?all=1&amp;after=[\w-]+)"', page)
            path = after.group(1).replace("&amp;", "&") if after else None
        assert len(seen) == len(set(seen)) == 1503
        assert [name.lower() for name in seen] == sorted(name.lower() for name in seen)
