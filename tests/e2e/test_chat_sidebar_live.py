"""The user channel over gunicorn, two workers and Redis, with real sockets: a message raises
the sidebar of a tab on the other worker, reading in one tab clears the others wherever they
are, a mention reaches the one named, and an outsider's socket hears none of it."""

import pytest

from .clients import logged_in
from .test_chat_state_live import call, tab

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def events(sock, name, count=1):
    sock.wait_for(lambda got: sum(event == name for event, _ in got) >= count)
    return sock.of(name)


def test_the_user_channel_reaches_every_tab_on_every_worker_and_nobody_else(cluster):
    web = cluster("redis").start_host(workers=2)
    alice, bob, carol = (logged_in(web.url, name) for name in ("alice", "bob", "carol"))
    assert alice.post("/chat/rooms", {"name": "design"}).status_code == 201
    bob.load("/chat/design")
    assert bob.post("/chat/design/join", {}).ok  # bob is a member of design (and of general)
    bob.load("/chat/general")
    carol.load("/chat/general")  # carol is not

    writer = tab(alice)
    call(writer, "chat:join", {"room": "design"})
    # bob's tabs: one on the writer's worker, one on the other; neither shows design.
    near = tab(bob, worker=writer.worker)
    far = tab(bob, avoid=writer.worker)
    outsider = tab(carol, avoid=writer.worker)
    for sock in (near, far):
        call(sock, "chat:join", {"room": "general"})

    sent = call(writer, "chat:send", {"room": "design", "body": "hello @bob"})
    for sock in (near, far):
        assert events(sock, "chat:activity") == [
            {"room": "design", "id": sent["id"], "author": "alice"}
        ]
        [mention] = events(sock, "chat:mention")
        assert (mention["room"], mention["id"], mention["excerpt"]) == (
            "design",
            sent["id"],
            "hello @bob",
        )
        assert 'data-unread="1" data-mentions="1"' in mention["html"]
        [raised] = events(sock, "chat:unread")
        assert (raised["room"], raised["unread"], raised["mentions"]) == ("design", 1, 1)

    # bob reads design in the near tab: the far one, on the other worker, is told.
    call(near, "chat:join", {"room": "design"})
    call(near, "chat:join", {"room": "general"})  # leaving it (shown) counts it read
    unread = events(far, "chat:unread", 2)[-1]  # the first: the mention raised the counts
    assert (unread["room"], unread["unread"], unread["mentions"]) == ("design", 0, 0)
    sidebar = bob.http.get(web.url + "/chat/sidebar", headers={"Accept": "application/json"})
    assert {"room": "design", "unread": 0, "mentions": 0, "last_id": sent["id"]} in (
        sidebar.json()["rooms"]
    )

    # A new public room appears for every logged-in user, the outsider too.
    assert alice.post("/chat/rooms", {"name": "ops"}).status_code == 201
    for sock in (near, far, outsider):
        assert [room["room"] for room in events(sock, "chat:room")] == ["ops"]

    # Nothing of design ever reached carol.
    names = {event for event, data in outsider.events if data and data.get("room") == "design"}
    assert names == set()
    assert outsider.of("chat:activity") == [] and outsider.of("chat:mention") == []
    for sock in (writer, near, far, outsider):
        sock.disconnect()
