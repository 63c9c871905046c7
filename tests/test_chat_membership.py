"""Membership, private rooms and direct conversations, over HTTP and the socket test client.

What a user observes: who may read and post where, what the room list shows them, and that a
private room or direct conversation answers a non-member exactly as a room that does not exist.
"""

import re

import pytest

from .conftest import CSRF_META

JSON = {"Accept": "application/json"}


@pytest.fixture
def alice(accounts):
    return accounts("alice")


@pytest.fixture
def bob(accounts):
    return accounts("bob")


@pytest.fixture
def carol(accounts):
    return accounts("carol")


def post_json(account, url, data=None):
    return account.browser.post(url, data or {}, htmx=False, headers=JSON)


def get_json(account, url):
    return account.client.get(url, headers=JSON)


def member_names(account, room) -> list[str]:
    return [m["user"] for m in get_json(account, f"/chat/{room}/members").get_json()["members"]]


def send(account, room, body="hello"):
    return post_json(account, f"/chat/{room}/messages", {"body": body})


def create(account, name, visibility=None):
    form = {"name": name, **({"visibility": visibility} if visibility else {})}
    answer = post_json(account, "/chat/rooms", form)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["room"]


def start_direct(account, other) -> str:
    answer = post_json(account, f"/chat/dm/{other}")
    assert answer.status_code in (200, 201), answer.get_data(as_text=True)
    return answer.get_json()["room"]


def room_list(account) -> str:
    return account.client.get("/chat").get_data(as_text=True)


# General and public rooms --------------------------------------------------------------------


def test_every_account_is_a_member_of_general_and_cannot_leave_it(alice, bob):
    assert member_names(alice, "general") == ["alice", "bob"]
    answer = post_json(alice, "/chat/general/leave")
    assert answer.status_code == 422 and "cannot be left" in answer.get_json()["error"]
    assert send(alice, "general").status_code == 201


def test_viewing_a_public_room_shows_it_without_joining(alice, bob):
    create(bob, "design")
    page = alice.client.get("/chat/design")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-action="join-room"' in html
    assert 'id="composer"' not in html
    assert member_names(alice, "design") == ["bob"]
    # Nor does subscribing a socket to it.
    sock = alice.socket()
    assert sock.emit("chat:join", {"room": "design"}, callback=True)["ok"]
    assert member_names(alice, "design") == ["bob"]


def test_only_members_post_join_and_leave(alice, bob):
    create(bob, "design")
    refused = send(alice, "design")
    assert refused.status_code == 422 and refused.get_json()["error"] == "Join the room to post."
    sock = alice.socket()
    ack = sock.emit("chat:send", {"room": "design", "body": "hi"}, callback=True)
    assert ack == {"ok": False, "error": "Join the room to post."}
    assert sock.emit("chat:typing", {"room": "design"}, callback=True)["ok"] is False

    assert post_json(alice, "/chat/design/join").get_json() == {"ok": True, "room": "design"}
    assert member_names(alice, "design") == ["alice", "bob"]
    page = alice.client.get("/chat/design").get_data(as_text=True)
    assert 'id="composer"' in page and 'data-action="leave-room"' in page
    assert send(alice, "design").status_code == 201

    watcher = bob.socket()
    assert watcher.emit("chat:join", {"room": "design"}, callback=True)["ok"]
    watcher.get_received()
    assert post_json(alice, "/chat/design/leave").get_json()["ok"]
    assert member_names(alice, "design") == ["bob"]
    assert send(alice, "design").status_code == 422
    # The room's member lists drop her at once.
    [left] = [e["args"][0] for e in watcher.get_received() if e["name"] == "chat:member-left"]
    assert (left["room"], left["user"]) == ("design", "alice")
    assert 'hx-swap-oob="delete"' in left["html"]


def test_route_words_are_not_room_names(alice):
    for word in ("rooms", "search", "sidebar", "attachments", "Search"):
        answer = post_json(alice, "/chat/rooms", {"name": word})
        assert answer.status_code == 422 and "choose another name" in answer.get_json()["error"]


def test_a_new_room_has_its_creator_as_first_member(alice):
    create(alice, "design")
    assert member_names(alice, "design") == ["alice"]
    assert send(alice, "design").status_code == 201


def test_a_bad_visibility_is_refused(alice):
    answer = post_json(alice, "/chat/rooms", {"name": "design", "visibility": "secret"})
    assert answer.status_code == 422 and "'public' or 'private'" in answer.get_json()["error"]


# Private rooms ------------------------------------------------------------------------------


def test_a_private_room_is_for_its_members_only(alice, bob, carol):
    create(alice, "secret", "private")
    assert send(alice, "secret").status_code == 201
    assert "secret" in room_list(alice) and "secret" not in room_list(bob)
    assert post_json(bob, "/chat/secret/join").status_code == 404

    # alice adds bob: he reads, posts and sees it listed; carol still sees nothing.
    answer = post_json(alice, "/chat/secret/members", {"username": "bob"})
    assert answer.get_json() == {"ok": True, "room": "secret"}
    assert member_names(bob, "secret") == ["alice", "bob"]
    assert send(bob, "secret").status_code == 201
    assert "secret" in room_list(bob) and "secret" not in room_list(carol)
    assert get_json(carol, "/chat/secret/messages").status_code == 404


def test_adding_an_unknown_user_or_a_member_is_422(alice, bob):
    create(alice, "secret", "private")
    unknown = post_json(alice, "/chat/secret/members", {"username": "nobody"})
    assert (
        unknown.status_code == 422 and unknown.get_json()["error"] == "There is no user 'nobody'."
    )
    member = post_json(alice, "/chat/secret/members", {"username": "alice"})
    assert member.status_code == 422 and "already a member" in member.get_json()["error"]
    # The form on the page shows why (htmx gets the notice fragment).
    shown = alice.browser.post("/chat/secret/members", {"username": "nobody"})
    assert shown.status_code == 422 and "There is no user &#39;nobody&#39;." in shown.get_data(
        as_text=True
    )


def test_the_creator_renames_archives_and_removes_members(alice, bob):
    create(alice, "secret", "private")
    post_json(alice, "/chat/secret/members", {"username": "bob"})
    # Others may not.
    for url, form in (
        ("/chat/secret/rename", {"name": "other"}),
        ("/chat/secret/archive", {}),
        ("/chat/secret/members/alice/remove", {}),
    ):
        answer = post_json(bob, url, form)
        assert answer.status_code == 403 and "creator" in answer.get_json()["error"]

    assert (
        post_json(alice, "/chat/secret/rename", {"name": "hidden"}).get_json()["room"] == "hidden"
    )
    assert get_json(alice, "/chat/secret/messages").status_code == 404
    assert send(bob, "hidden").status_code == 201

    assert post_json(alice, "/chat/hidden/members/bob/remove").get_json()["ok"]
    assert get_json(bob, "/chat/hidden/messages").status_code == 404
    assert member_names(alice, "hidden") == ["alice"]

    assert post_json(alice, "/chat/hidden/archive").get_json()["ok"]
    archived = send(alice, "hidden")
    assert archived.status_code == 422 and "archived" in archived.get_json()["error"]
    assert get_json(alice, "/chat/hidden/messages").status_code == 200  # still readable


def test_general_cannot_be_renamed_or_archived(alice):
    for url, form in (("/chat/general/rename", {"name": "other"}), ("/chat/general/archive", {})):
        assert post_json(alice, url, form).status_code == 422


def test_leaving_a_private_room_ends_reading_it(alice, bob):
    create(alice, "secret", "private")
    post_json(alice, "/chat/secret/members", {"username": "bob"})
    assert post_json(bob, "/chat/secret/leave").get_json()["ok"]
    assert get_json(bob, "/chat/secret/messages").status_code == 404


# Direct conversations -----------------------------------------------------------------------


def test_a_direct_conversation_is_started_by_a_post_only(alice, bob):
    assert get_json(alice, "/chat/dm/bob").status_code == 404
    offer = alice.client.get("/chat/dm/bob")
    assert offer.status_code == 200 and 'data-action="start-direct"' in offer.get_data(as_text=True)
    assert get_json(alice, "/chat/dm/bob").status_code == 404  # the GETs started nothing

    answer = post_json(alice, "/chat/dm/bob")
    assert answer.status_code == 201
    name = answer.get_json()["room"]
    assert re.fullmatch(r"dm\.\d+\.\d+", name)
    # Opening it again, from either side, is the same conversation.
    assert post_json(alice, "/chat/dm/bob").status_code == 200
    assert start_direct(bob, "alice") == name
    assert get_json(bob, "/chat/dm/ALICE").get_json() == {"ok": True, "room": name}
    # Browsers go to its page.
    assert alice.client.get("/chat/dm/bob").headers["Location"] == f"/chat/{name}"


def test_a_direct_conversation_with_oneself_or_nobody_is_404(alice):
    for who in ("alice", "Alice", "nobody", "x"):
        assert post_json(alice, f"/chat/dm/{who}").status_code == 404
        assert get_json(alice, f"/chat/dm/{who}").status_code == 404


def test_a_direct_conversation_is_listed_for_both_under_direct_messages(alice, bob, carol):
    name = start_direct(alice, "bob")
    assert send(bob, name, "hi alice").status_code == 201
    for account, partner in ((alice, "bob"), (bob, "alice")):
        page = room_list(account)
        directs = page.split('data-role="direct-messages"')[1]
        assert f'href="/chat/{name}"' in directs and f"@ {partner}" in directs
    assert name not in room_list(carol)
    page = alice.client.get(f"/chat/{name}").get_data(as_text=True)
    assert '<h1 id="room-heading" class="chat-title h4">@ bob</h1>' in page
    # Exactly two members: nobody is added, nobody joins.
    assert post_json(alice, f"/chat/{name}/members", {"username": "carol"}).status_code == 422
    assert post_json(carol, f"/chat/{name}/join").status_code == 404


def test_a_closed_direct_conversation_comes_back_with_a_new_message(alice, bob):
    name = start_direct(alice, "bob")
    assert post_json(alice, f"/chat/{name}/leave").get_json()["ok"]  # closes it
    assert name not in room_list(alice) and name in room_list(bob)
    assert get_json(alice, f"/chat/{name}/messages").status_code == 200  # still hers
    assert send(bob, name, "still there?").status_code == 201
    assert name in room_list(alice)
    # Closing and opening again from the button.
    post_json(alice, f"/chat/{name}/leave")
    assert start_direct(alice, "bob") == name and name in room_list(alice)


def test_the_member_list_offers_a_direct_message(alice, bob):
    page = alice.client.get("/chat/general").get_data(as_text=True)
    assert 'hx-post="/chat/dm/bob"' in page and 'data-action="direct-message"' in page
    started = alice.browser.post("/chat/dm/bob")  # the button is an htmx POST
    assert started.status_code == 201 and "/chat/dm." in started.headers["HX-Location"]


# Privacy: a private room or direct conversation is a room that does not exist -------------------


def answers(account, room) -> list:
    """What every HTTP route and socket event answers ``account`` about ``room``."""
    account.client.get("/")  # shows (and so ends) the welcome message of a new account
    sock = account.socket()
    seen = []
    for method, url, form in (
        ("get", f"/chat/{room}", None),
        ("get", f"/chat/{room}/messages", None),
        ("get", f"/chat/{room}/messages?after=0", None),
        ("get", f"/chat/{room}/messages?before=100", None),
        ("get", f"/chat/{room}/members", None),
        ("post", f"/chat/{room}/messages", {"body": "hi"}),
        ("post", f"/chat/{room}/join", {}),
        ("post", f"/chat/{room}/leave", {}),
        ("post", f"/chat/{room}/members", {"username": "carol"}),
        ("post", f"/chat/{room}/members/alice/remove", {}),
        ("post", f"/chat/{room}/rename", {"name": "taken"}),
        ("post", f"/chat/{room}/archive", {}),
        ("get", f"/events?stream=room:{room}&after_seq=0", None),
    ):
        for headers in (JSON, {"HX-Request": "true"}, {}):
            if method == "get":
                answer = account.client.get(url, headers=headers)
            else:
                answer = account.browser.post(url, form, htmx=False, headers=headers)
            body = answer.get_data(as_text=True)
            token = CSRF_META.search(body)  # signed with the time: it differs from second to second
            body = (body.replace(token.group(1), "TOKEN") if token else body).replace(room, "ROOM")
            seen.append((method, url.replace(room, "ROOM"), answer.status_code, body))
    for event in ("chat:join", "chat:leave", "chat:typing"):
        ack = sock.emit(event, {"room": room}, callback=True)
        seen.append((event, str(ack).replace(room, "ROOM")))
    ack = sock.emit("chat:send", {"room": room, "body": "hi"}, callback=True)
    seen.append(("chat:send", str(ack).replace(room, "ROOM")))
    return seen


def test_an_outsider_gets_the_same_answers_as_for_a_room_that_does_not_exist(alice, bob, carol):
    create(alice, "secret", "private")
    post_json(alice, "/chat/secret/members", {"username": "bob"})
    send(alice, "secret", "the plan")
    direct = start_direct(alice, "bob")
    send(alice, direct, "between us")

    watcher = carol.socket()
    watcher.emit("chat:join", {"room": "general"}, callback=True)
    watcher.get_received()
    # A nonexistent room of each kind of name, spelled like the real one.
    assert answers(carol, "secret") == answers(carol, "sekret")
    missing = "dm.900.901"
    assert answers(carol, direct) == answers(carol, missing)
    # Nothing was stored by her, and her sockets heard nothing of either room.
    send(alice, "secret", "more")
    send(bob, direct, "more")
    heard = watcher.get_received()
    assert all(e["name"] not in ("chat:message", "chat:typing") for e in heard), heard
    assert get_json(alice, "/chat/secret/messages").get_json()["messages"][-1]["body"] == "more"
    assert len(get_json(alice, "/chat/secret/messages").get_json()["messages"]) == 2
    assert "secret" not in room_list(carol) and direct not in room_list(carol)
    all_rooms = carol.client.get("/chat?all=1").get_data(as_text=True)
    assert "secret" not in all_rooms and direct not in all_rooms


def test_an_outsider_cannot_edit_or_delete_in_a_room_they_left(alice, bob):
    create(alice, "secret", "private")
    post_json(alice, "/chat/secret/members", {"username": "bob"})
    message_id = send(bob, "secret").get_json()["id"]
    post_json(bob, "/chat/secret/leave")
    sock = bob.socket()
    for event, data in (
        ("chat:edit", {"id": message_id, "body": "changed"}),
        ("chat:delete", {"id": message_id}),
    ):
        assert sock.emit(event, data, callback=True) == {
            "ok": False,
            "error": "There is no such message.",
        }


def test_a_renamed_private_rooms_old_name_keeps_none_of_its_events(alice, bob):
    """Whoever creates a room under the old name later reads nothing of the private room's
    stream (its events left with it), and its numbers go on from where it stopped."""
    create(alice, "secret", "private")
    send(alice, "secret", "the plan")
    assert post_json(alice, "/chat/secret/rename", {"name": "hidden"}).get_json()["ok"]
    create(bob, "secret")
    # Event 1 is gone: a client that asks for it is told to reload its list (410).
    gone = get_json(bob, "/events?stream=room:secret&after_seq=0")
    assert gone.status_code == 410 and "the plan" not in gone.get_data(as_text=True)
    sent = send(bob, "secret", "a fresh start")
    assert sent.status_code == 201
    stream = get_json(bob, "/events?stream=room:secret&after_seq=1").get_json()
    assert [e["body"] for e in stream["events"]] == ["a fresh start"]
    assert stream["events"][0]["seq"] == 2  # never the number of an event of the old room
    # The renamed room goes on in a stream of its new name.
    assert send(alice, "hidden", "still ours").status_code == 201
    assert [m["body"] for m in get_json(alice, "/chat/hidden/messages").get_json()["messages"]] == [
        "the plan",
        "still ours",
    ]
