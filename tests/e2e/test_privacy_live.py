"""Privacy end to end: for someone who is not a member, a private room and a direct
conversation are exactly a room that does not exist, on every route and every socket event,
and none of their events reach that person's sockets (gunicorn, real sockets)."""

import time

import pytest

from .clients import CSRF_META, LiveSocket, logged_in

pytestmark = pytest.mark.e2e

JSON = {"Accept": "application/json", "HX-Request": ""}  # session.post says htmx otherwise
HTMX = {"HX-Request": "true"}
PAGE = {"HX-Request": ""}  # what a browser's plain navigation sends: no htmx header


def normalised(text: str, room: str) -> str:
    """A body without what differs between any two answers: the CSRF token and the name."""
    token = CSRF_META.search(text)
    if token:
        text = text.replace(token.group(1), "TOKEN")
    return text.replace(room, "ROOM")


def http_answers(session, room: str) -> list:
    """Every chat route about ``room``, as JSON, htmx and a page would ask."""
    answers = []
    for method, path, form in (
        ("get", f"/chat/{room}", None),
        ("get", f"/chat/{room}/messages", None),
        ("get", f"/chat/{room}/messages?after=0", None),
        ("get", f"/chat/{room}/messages?before=1000&limit=5", None),
        ("get", f"/chat/{room}/members", None),
        ("get", f"/chat/{room}/members?after=0", None),
        ("get", f"/events?stream=room:{room}&after_seq=0", None),
        ("post", f"/chat/{room}/messages", {"body": "let me in"}),
        ("post", f"/chat/{room}/join", {}),
        ("post", f"/chat/{room}/leave", {}),
        ("post", f"/chat/{room}/members", {"username": "carol"}),
        ("post", f"/chat/{room}/members/alice/remove", {}),
        ("post", f"/chat/{room}/members/remove", {"username": "alice"}),
        ("post", f"/chat/{room}/rename", {"name": "mine-now"}),
        ("post", f"/chat/{room}/archive", {}),
    ):
        for headers in (JSON, HTMX, PAGE):
            if method == "get":
                answer = session.http.get(
                    session.base_url + path, headers=headers, timeout=10, allow_redirects=False
                )
            else:
                answer = session.post(path, form, headers=headers, allow_redirects=False)
            answers.append(
                (
                    method,
                    path.replace(room, "ROOM"),
                    headers,
                    answer.status_code,
                    normalised(answer.text, room),
                )
            )
    return answers


def socket_answers(sock: LiveSocket, room: str, message_id: int) -> list:
    """Every chat event about ``room`` (and a message of it), with their acknowledgements."""
    answers = []
    for event, data in (
        ("chat:join", {"room": room}),
        ("chat:typing", {"room": room}),
        ("chat:send", {"room": room, "body": "let me in"}),
        (
            "chat:send",
            {"room": room, "body": "again", "client_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6"},
        ),
        ("chat:leave", {"room": room}),
        ("chat:edit", {"id": message_id, "body": "changed"}),
        ("chat:delete", {"id": message_id}),
    ):
        ack = sock.client.call(event, data, timeout=10)
        answers.append((event, normalised(repr(ack), room)))
    return answers


def test_an_outsider_learns_nothing_of_a_private_room_or_a_direct_conversation(live_server):
    url = live_server.url
    alice, bob, carol = (logged_in(url, name) for name in ("alice", "bob", "carol"))
    json = {"headers": JSON}
    assert alice.post("/chat/rooms", {"name": "secret", "visibility": "private"}, **json).ok
    assert alice.post("/chat/secret/members", {"username": "bob"}, **json).ok
    secret_id = alice.post("/chat/secret/messages", {"body": "the plan"}, **json).json()["id"]
    direct = alice.post("/chat/dm/bob", {}, **json).json()["room"]
    direct_id = bob.post(f"/chat/{direct}/messages", {"body": "between us"}, **json).json()["id"]

    # The members talk on sockets; carol's socket watches general, and probes as it likes.
    talkers = {}
    for session, name in ((alice, "alice"), (bob, "bob")):
        talkers[name] = LiveSocket(session).connect()
    outsider = LiveSocket(carol).connect()
    assert outsider.client.call("chat:join", {"room": "general"}, timeout=10)["ok"]

    # Identical answers to a room that does not exist, of each kind of name; the message
    # ids compared are one of the room's and one that was never given out.
    missing_id = 10_000
    for room, missing in (("secret", "sekret"), (direct, "dm.900.901")):
        answers = http_answers(carol, room)
        assert answers == http_answers(carol, missing)
        # Refused as missing, not for some other reason (a missing CSRF token, say).
        assert {a[3] for a in answers if not a[1].startswith("/events")} == {404}
    assert socket_answers(outsider, "secret", secret_id) == socket_answers(
        outsider, "sekret", missing_id
    )
    assert socket_answers(outsider, direct, direct_id) == socket_answers(
        outsider, "dm.900.901", missing_id
    )
    # No conversation of carol's with either of them was started by looking.
    assert carol.http.get(f"{url}/chat/dm/alice", headers=JSON, timeout=10).status_code == 404

    # The members talk and type; a marker in general tells when carol has heard all there is.
    for room in ("secret", direct):
        talkers["alice"].client.call("chat:join", {"room": room}, timeout=10)
        talkers["bob"].client.call("chat:join", {"room": room}, timeout=10)
        assert talkers["alice"].client.call(
            "chat:send", {"room": room, "body": "psst"}, timeout=10
        )["ok"]
        talkers["bob"].client.call("chat:typing", {"room": room}, timeout=10)
    assert talkers["alice"].client.call(
        "chat:send", {"room": "general", "body": "marker"}, timeout=10
    )["ok"]
    outsider.wait_for(lambda events: any(d.get("body") == "marker" for _e, d in events))
    for event, data in outsider.events:
        text = repr(data)
        assert "secret" not in text and direct not in text, (event, data)
        assert "psst" not in text and "the plan" not in text and "between us" not in text

    # Nothing she sent was stored: the members see only their own messages.
    bodies = [
        m["body"]
        for m in alice.http.get(f"{url}/chat/secret/messages", headers=JSON, timeout=10).json()[
            "messages"
        ]
    ]
    assert bodies == ["the plan", "psst"]
    bodies = [
        m["body"]
        for m in bob.http.get(f"{url}/chat/{direct}/messages", headers=JSON, timeout=10).json()[
            "messages"
        ]
    ]
    assert bodies == ["between us", "psst"]
    # And neither is in her room lists.
    for path in ("/chat", "/chat?all=1", "/chat/general"):
        page = carol.load(path)
        assert "secret" not in page and direct not in page
    for sock in (*talkers.values(), outsider):
        sock.disconnect()


def test_a_removed_member_stops_hearing_the_room(live_server):
    url = live_server.url
    alice, bob = logged_in(url, "alice"), logged_in(url, "bob")
    json = {"headers": JSON}
    assert alice.post("/chat/rooms", {"name": "secret", "visibility": "private"}, **json).ok
    assert alice.post("/chat/secret/members", {"username": "bob"}, **json).ok
    speaker, listener = LiveSocket(alice).connect(), LiveSocket(bob).connect()
    for sock in (speaker, listener):
        assert sock.client.call("chat:join", {"room": "secret"}, timeout=10)["ok"]
    assert speaker.client.call("chat:send", {"room": "secret", "body": "one"}, timeout=10)["ok"]
    listener.wait_for(lambda events: any(d.get("body") == "one" for _e, d in events))

    assert alice.post("/chat/secret/members/bob/remove", {}, **json).json()["ok"]
    # His socket that showed the room was closed (the page reloads and finds nothing there).
    deadline = time.monotonic() + 10
    while listener.client.connected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not listener.client.connected
    again = LiveSocket(bob).connect()
    ack = again.client.call("chat:join", {"room": "secret"}, timeout=10)
    assert ack == {"ok": False, "error": "There is no room 'secret'."}
    assert again.client.call("chat:join", {"room": "general"}, timeout=10)["ok"]
    assert speaker.client.call("chat:send", {"room": "secret", "body": "two"}, timeout=10)["ok"]
    assert speaker.client.call("chat:send", {"room": "general", "body": "marker"}, timeout=10)["ok"]
    again.wait_for(lambda events: any(d.get("body") == "marker" for _e, d in events))
    assert not any(d.get("body") == "two" for _e, d in again.events)
    for sock in (speaker, again):
        sock.disconnect()
