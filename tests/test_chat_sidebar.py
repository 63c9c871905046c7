"""The live sidebar over the socket test client: chat:activity to members only, chat:unread when
a room is read elsewhere or all is marked read, chat:mention to those named who may read the
room, chat:room for a new room, GET /chat/sidebar and the composer's @ choices."""

import re

from webapp.chat import services

JSON = {"Accept": "application/json"}


def events(sock, name):
    return [e["args"][0] for e in sock.get_received() if e["name"] == name]


def joined(account, room="general"):
    sock = account.socket()
    assert sock.emit("chat:join", {"room": room}, callback=True)["ok"]
    sock.get_received()
    return sock


def send(sock, body, room="general"):
    ack = sock.emit("chat:send", {"room": room, "body": body}, callback=True)
    assert ack["ok"], ack
    return ack["id"]


def test_a_message_reaches_every_member_once_and_no_outsider(accounts):
    """One emit: the sockets of the room's members that do not show the room."""
    alice, bob, carol = accounts("alice"), accounts("bob"), accounts("carol")
    assert alice.browser.post("/chat/rooms", {"name": "design"}).status_code == 201
    writer = joined(alice, "design")
    assert bob.browser.post("/chat/design/join", htmx=False, headers=JSON).json["ok"]
    # bob is a member of design and shows general; two sockets of his, one idle on no room.
    elsewhere, idle = joined(bob, "general"), bob.socket()
    outsider = carol.socket()  # logged in, a member of general only
    for sock in (writer, elsewhere, idle, outsider):
        sock.get_received()

    message_id = send(writer, "in design", room="design")

    for sock in (elsewhere, idle):
        assert events(sock, "chat:activity") == [
            {"room": "design", "id": message_id, "author": "alice"}
        ]
    assert events(outsider, "chat:activity") == []
    # A socket showing the room has the message itself: nothing more.
    assert [e["name"] for e in writer.get_received()] == ["chat:message"]


def test_reading_a_room_in_one_tab_clears_it_in_the_others(accounts):
    alice, bob = accounts("alice"), accounts("bob")
    writer = joined(alice)
    assert bob.client.get("/chat/general").status_code == 200  # a member
    other_tab = bob.socket()
    send(writer, "one")
    send(writer, "two")
    other_tab.get_received()
    page = bob.client.get("/chat/sidebar", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'data-role="unread" title="2 unread">2<' in page

    # bob opens general in a tab: it is read, and his other tab hears so.
    assert bob.client.get("/chat/general").status_code == 200
    [unread] = events(other_tab, "chat:unread")
    assert (unread["room"], unread["unread"], unread["mentions"]) == ("general", 0, 0)
    assert 'hx-swap-oob="true"' in unread["html"] and 'id="room-badges-1"' in unread["html"]
    assert 'data-role="unread"' not in unread["html"]
    # Opening it again reads nothing new: nothing is sent.
    assert bob.client.get("/chat/general").status_code == 200
    assert events(other_tab, "chat:unread") == []


def test_a_mention_notifies_who_may_read_the_room_and_is_counted_apart(accounts):
    alice, bob, carol = accounts("alice"), accounts("bob"), accounts("carol")
    writer = joined(alice)
    bob_tab, carol_tab = bob.socket(), carol.socket()
    assert bob.client.get("/chat/general").status_code == 200

    message_id = send(writer, "hello @BOB and @nobody-here, see `@carol`")

    received = bob_tab.get_received()
    [mention] = [e["args"][0] for e in received if e["name"] == "chat:mention"]
    [counts] = [e["args"][0] for e in received if e["name"] == "chat:unread"]
    assert (counts["room"], counts["unread"], counts["mentions"]) == ("general", 1, 1)
    assert mention["room"] == "general" and mention["id"] == message_id
    assert mention["author"] == "alice"
    assert mention["excerpt"] == "hello @BOB and @nobody-here, see `@carol`"
    assert 'data-mentions="1"' in mention["html"] and 'data-unread="1"' in mention["html"]
    assert events(carol_tab, "chat:mention") == []  # in code: no mention
    entries = bob.client.get("/chat/sidebar", headers=JSON).json["rooms"]
    assert {"room": "general", "unread": 1, "mentions": 1, "last_id": message_id} in entries
    # Everyone gets the same highlighted fragment.
    html = bob.client.get("/chat/general/messages?after=0").get_data(as_text=True)
    assert '<span class="mention" data-mention="BOB">@BOB</span>' in html
    # Naming oneself notifies nobody.
    send(writer, "note to @alice")
    assert events(writer, "chat:mention") == []


def test_a_mention_of_someone_who_cannot_read_the_room_notifies_nobody(accounts, monkeypatch):
    alice, bob = accounts("alice"), accounts("bob")
    writer = joined(alice)
    bob_tab = bob.socket()
    monkeypatch.setattr(services, "can_read_room", lambda user, room: user.username != "bob")
    send(writer, "hey @bob")
    assert events(bob_tab, "chat:mention") == []
    entries = bob.client.get("/chat/sidebar", headers=JSON).json["rooms"]
    assert [e["mentions"] for e in entries if e["room"] == "general"] == [0]


def test_mark_all_read_clears_every_room_in_every_tab(accounts):
    alice, bob = accounts("alice"), accounts("bob")
    writer = joined(alice)
    assert alice.browser.post("/chat/rooms", {"name": "design"}).status_code == 201
    assert bob.browser.post("/chat/design/join", htmx=False, headers=JSON).json["ok"]
    assert bob.client.get("/chat/general").status_code == 200
    send(writer, "in general @bob")
    send(writer, "in design", room="design")
    tab = bob.socket()

    response = bob.browser.post("/chat/read-all", htmx=False, headers=JSON)
    assert response.status_code == 200 and sorted(response.json["rooms"]) == ["design", "general"]
    cleared = {e["room"]: (e["unread"], e["mentions"]) for e in events(tab, "chat:unread")}
    assert cleared == {"design": (0, 0), "general": (0, 0)}
    entries = bob.client.get("/chat/sidebar", headers=JSON).json["rooms"]
    assert all(e["unread"] == 0 and e["mentions"] == 0 for e in entries)
    # Nothing left: nothing sent; without the CSRF token nothing happens at all.
    assert bob.browser.post("/chat/read-all").status_code == 204
    assert events(tab, "chat:unread") == []
    assert bob.client.post("/chat/read-all").status_code == 400


def test_a_new_room_appears_in_every_logged_in_sidebar(accounts, socket_client):
    alice, bob = accounts("alice"), accounts("bob")
    bob_tab = bob.socket()
    anonymous = socket_client()
    assert alice.browser.post("/chat/rooms", {"name": "design"}).status_code == 201
    [added] = events(bob_tab, "chat:room")
    assert added["room"] == "design"
    assert 'hx-swap-oob="beforeend:#room-list-rooms"' in added["html"]
    assert 'data-room="design"' in added["html"]
    assert events(anonymous, "chat:room") == []


def test_show_room_tells_only_the_users_named(app, accounts):
    alice, bob, carol = accounts("alice"), accounts("bob"), accounts("carol")
    bob_tab, carol_tab = bob.socket(), carol.socket()
    assert alice.browser.post("/chat/rooms", {"name": "secret"}).status_code == 201
    for sock in (bob_tab, carol_tab):
        sock.get_received()
    with app.test_request_context():
        room = services.find_room("secret")
        bob_id = services.db.session.scalar(
            services.select(services.User.id).where(services.User.username == "bob")
        )
        services.show_room(room, [bob_id])
        services.show_room(room, [])
    assert [e["room"] for e in events(bob_tab, "chat:room")] == ["secret"]
    assert events(carol_tab, "chat:room") == []


def test_the_sidebar_fragment_lists_rooms_with_counts(accounts, client):
    alice, bob = accounts("alice"), accounts("bob")
    assert bob.client.get("/chat/general").status_code == 200  # a member
    send(joined(alice), "hi")
    page = bob.client.get("/chat/sidebar", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert page.lstrip().startswith('<div id="room-list"')
    assert '<nav class="list-group mb-3" aria-label="Rooms" id="room-list-rooms">' in page
    assert re.search(
        r'data-room="general"[^<]*>\s*<span[^>]*>[^<]*</span>\s*<span id="room-badges-1" '
        r'class="chat-room-badges" data-unread="1" data-mentions="0"',
        page,
    )
    assert client.get("/chat/sidebar").status_code == 302  # logged out: to the login page


def test_mention_choices_are_the_rooms_members_by_prefix(accounts):
    alice = accounts("alice")
    for name in ("bob", "bobby", "bo_b", "carol"):
        assert accounts(name).client.get("/chat/general").status_code == 200
    assert alice.client.get("/chat/general").status_code == 200

    def choices(q):
        response = alice.client.get(f"/chat/general/mentions?q={q}", headers=JSON)
        assert response.status_code == 200
        return response.json["users"]

    assert choices("bo") == ["bo_b", "bob", "bobby"]
    assert choices("BOB") == ["bob", "bobby"]
    assert choices("bo_") == ["bo_b"]  # "_" is not a wildcard
    assert choices("") == ["bo_b", "bob", "bobby", "carol"]  # never the viewer
    assert choices("%") == []
    assert alice.client.get("/chat/nowhere/mentions?q=a", headers=JSON).status_code == 404
