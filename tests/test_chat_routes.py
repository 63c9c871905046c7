import re

import pytest
from sqlalchemy import func, select

from webapp.chat.models import Message, Room
from webapp.extensions import db

from .conftest import CSRF_META


def message_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<article id="message-(\d+)"', html)]


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(model.id)))


@pytest.fixture
def alice(accounts):
    return accounts("alice")


def post(account, body, room="general", **kwargs):
    return account.browser.post(f"/chat/{room}/messages", {"body": body}, **kwargs)


def test_chat_pages_need_a_login(client):
    for path in ("/chat", "/chat/general", "/chat/general/messages", "/chat/general/members"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith(
            "/login?next=/chat"
        )


def test_room_list_shows_general_with_unread_counts(accounts, alice):
    bob = accounts("bob")
    alice.client.get("/chat/general")  # alice has read general up to now
    post(bob, "one")
    post(bob, "two")
    page = alice.client.get("/chat").get_data(as_text=True)
    assert 'href="/chat/general"' in page
    assert 'data-role="unread" title="2 unread">2<' in page
    assert CSRF_META.search(page)


def test_room_page_shows_latest_messages_oldest_first_with_members(app, accounts, alice):
    app.config["CHAT_PAGE_SIZE"] = 3
    bob = accounts("bob")
    for i in range(5):
        post(bob if i % 2 else alice, f"message {i}")
    page = alice.client.get("/chat/general").get_data(as_text=True)
    assert message_ids(page) == [3, 4, 5]
    assert 'data-last-id="5"' in page and 'data-order="asc"' in page
    assert 'data-catchup-url="/chat/general/messages"' in page
    assert "Load older" in page and "before=3" in page
    assert 'data-user="alice" data-status="offline"' in page  # no socket open yet
    assert 'data-user="bob"' in page
    assert "<body hx-headers=" in page and 'hx-history="false"' in page


def test_messages_after_is_an_oob_fragment_in_display_order(accounts, alice):
    for i in range(4):
        post(alice, f"m{i}")
    body = alice.client.get("/chat/general/messages?after=1").get_data(as_text=True)
    assert body.startswith('<div hx-swap-oob="beforeend:#messages">')
    assert message_ids(body) == [2, 3, 4]


def test_messages_before_pages_back(accounts, alice):
    for i in range(5):
        post(alice, f"m{i}")
    older = alice.client.get("/chat/general/messages?before=4&limit=2").get_data(as_text=True)
    assert older.startswith('<div hx-swap-oob="afterbegin:#messages">')
    assert message_ids(older) == [2, 3] and "before=2" in older
    first = alice.client.get("/chat/general/messages?before=2&limit=2").get_data(as_text=True)
    assert message_ids(first) == [1] and "Load older" not in first


def test_catchup_too_far_behind_asks_for_a_reload(app, alice):
    app.config["LIVE_LIST_CATCHUP_MAX"] = 2
    for i in range(3):
        post(alice, f"m{i}")
    assert alice.client.get("/chat/general/messages?after=0").headers.get("HX-Refresh") == "true"
    answer = alice.client.get(
        "/chat/general/messages?after=0", headers={"Accept": "application/json"}
    )
    assert len(answer.get_json()["messages"]) == 2 and answer.get_json()["more"] is True


@pytest.mark.parametrize("query", ["after=x", "before=1.5", "limit=a", "after=1&before=2"])
def test_malformed_query_is_400(alice, query):
    assert alice.client.get(f"/chat/general/messages?{query}").status_code == 400


def test_unknown_room_is_404(alice):
    assert alice.client.get("/chat/nowhere").status_code == 404
    assert alice.client.get("/chat/nowhere/messages").status_code == 404
    assert post(alice, "hi", room="nowhere").status_code == 404
    assert alice.client.get("/chat/%3Cscript%3E").status_code == 404


def test_post_message_over_http(app, alice):
    watcher = alice.socket()
    watcher.emit("chat:join", {"room": "general"}, callback=True)
    watcher.get_received()
    response = post(alice, "<b>bold</b>\nsecond line")
    assert response.status_code == 201
    [event] = [e for e in watcher.get_received() if e["name"] == "chat:message"]
    assert event["args"][0]["body"] == "<b>bold</b>\nsecond line"
    assert "&lt;b&gt;bold&lt;/b&gt;\nsecond line" in event["args"][0]["html"]
    json = alice.browser.post(
        "/chat/general/messages",
        {"body": "api"},
        htmx=False,
        headers={"Accept": "application/json"},
    )
    assert json.status_code == 201 and json.get_json() == {"ok": True, "id": 2}
    plain = alice.browser.post("/chat/general/messages", {"body": "form"}, htmx=False)
    assert plain.status_code == 303 and plain.headers["Location"] == "/chat/general"


@pytest.mark.parametrize(
    "form, message",
    [
        ({}, "must be text"),
        ({"body": ""}, "empty"),
        ({"body": "  \n "}, "empty"),
        ({"body": "x" * 2001}, "too long"),
        ({"body": "nul\x00"}, "cannot be shown"),
        ({"body": "hi", "client_id": "nope"}, "client_id"),
    ],
)
def test_bad_message_is_422_and_stores_nothing(app, alice, form, message):
    watcher = alice.socket()
    watcher.emit("chat:join", {"room": "general"}, callback=True)
    watcher.get_received()
    response = alice.browser.post("/chat/general/messages", form)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    page = alice.browser.post("/chat/general/messages", form, htmx=False)
    assert page.status_code == 422 and "<html" in page.get_data(as_text=True)
    assert count(app, Message) == 0 and watcher.get_received() == []


def test_flood_control_over_http(app, alice):
    for i in range(10):
        assert post(alice, f"m{i}").status_code == 201
    response = post(alice, "one more")
    assert response.status_code == 429 and "Slow down" in response.get_data(as_text=True)
    assert count(app, Message) == 10


def test_post_message_without_csrf_is_400(app, alice):
    response = alice.client.post("/chat/general/messages", data={"body": "hi"})
    assert response.status_code == 400 and count(app, Message) == 0
    response = alice.client.post("/chat/rooms", data={"name": "newroom"})
    assert response.status_code == 400 and count(app, Room) == 1


def test_room_page_tells_the_viewer_what_they_had_read_and_each_message_its_author_and_time(
    accounts, alice
):
    bob = accounts("bob")
    post(bob, "before")
    alice.client.get("/chat/general")  # read up to "before"
    post(bob, "after one")
    post(bob, "after two")
    page = alice.client.get("/chat/general").get_data(as_text=True)
    # The page's "New messages" line goes after message 1: what alice had read when it opened.
    assert 'data-last-read="1"' in page and 'data-last-id="3"' in page
    # Read now: the next page has nothing new.
    assert 'data-last-read="3"' in alice.client.get("/chat/general").get_data(as_text=True)
    # Someone who never opened the room finds nothing new in it.
    assert 'data-last-read="3"' in accounts("carol").client.get("/chat/general").get_data(
        as_text=True
    )
    # The fragment is the viewer's own: author and time for the page, actions named by the text.
    article = re.search(r'<article id="message-2"[^>]*>', page).group(0)
    assert 'data-author="bob"' in article
    assert re.search(r'data-created="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"', article)
    assert 'aria-label="Edit message: after one"' in page
    assert 'id="day-separator-template"' in page and 'id="new-messages-template"' in page


def test_create_room(app, alice):
    response = alice.browser.post("/chat/rooms", {"name": "design"})
    assert (
        response.status_code == 201 and '"path": "/chat/design"' in response.headers["HX-Location"]
    )
    plain = alice.browser.post("/chat/rooms", {"name": "ops"}, htmx=False)
    assert plain.status_code == 303 and plain.headers["Location"] == "/chat/ops"
    assert "# design" in alice.client.get("/chat/design").get_data(as_text=True)
    assert count(app, Room) == 3


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "required"),
        ("ab", "3 to 32"),
        ("a b c", "3 to 32"),
        ("<img src=x>", "3 to 32"),
        ("GENERAL", "already exists"),
    ],
)
def test_bad_room_name_is_422(app, alice, name, message):
    response = alice.browser.post("/chat/rooms", {"name": name})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert message in body and 'id="room-form"' in body and "<img" not in body
    assert count(app, Room) == 1


def test_html_in_a_message_is_shown_as_text(alice):
    post(
        alice, '<script>alert("x")</script> <img src=x onerror=alert(1)> https://ok.example/?q=<b>'
    )
    page = alice.client.get("/chat/general").get_data(as_text=True)
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert '<a href="https://ok.example/?q=" rel="noopener noreferrer nofollow"' in page


def test_navbar_shows_chat_and_login_links(client, alice):
    anonymous = client.get("/").get_data(as_text=True)
    assert (
        'href="/chat"' in anonymous
        and 'href="/login"' in anonymous
        and 'href="/register"' in anonymous
    )
    page = alice.client.get("/").get_data(as_text=True)
    assert 'data-role="nav-user">alice<' in page and 'action="/logout"' in page


def test_members_answer_every_members_status_for_the_live_list(accounts, alice):
    bob = accounts("bob")
    bob.client.get("/chat/general")  # bob becomes a member; no tab open: offline
    page = alice.client.get("/chat/general").get_data(as_text=True)
    assert re.search(
        r'<ul id="members"[^>]*data-live-list[^>]*'
        r'data-catchup-url="/chat/general/members"',
        page,
    )
    sock = alice.socket()  # alice's tab connects: online
    fragment = alice.client.get(
        "/chat/general/members?after=0", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    # Each member is added to a list that lacks them, then set: as a chat:presence event does.
    for user, status in (("alice", "online"), ("bob", "offline")):
        assert re.search(
            rf'<ul hx-swap-oob="beforeend:#members">\s*<li id="member-\d+" '
            rf'class="chat-member" data-user="{user}" data-status="{status}"',
            fragment,
        )
        assert re.search(
            rf'<li id="member-\d+" class="chat-member" data-user="{user}" '
            rf'data-status="{status}" hx-swap-oob="true">',
            fragment,
        )
    answer = alice.client.get("/chat/general/members", headers={"Accept": "application/json"})
    assert answer.get_json() == {
        "ok": True,
        "members": [{"user": "alice", "status": "online"}, {"user": "bob", "status": "offline"}],
    }
    sock.disconnect()
    assert alice.client.get("/chat/nowhere/members").status_code == 404
