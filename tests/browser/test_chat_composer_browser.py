"""The composer in a real browser: nothing typed is lost (flood control, a busy server), and
Edit is offered only while the server allows it."""

import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy.engine import make_url

from ..e2e.cluster import postgres_url  # noqa: F401  (a fixture: a fresh database)
from ..e2e.faults import TcpProxy
from ..e2e.server import LiveServer
from .chat_fixtures import unique_name
from .chat_pages import ChatPage, mark_document, register, same_document
from .conftest import artifact_dir, has_failed
from .pages import assert_no_console_errors

pytestmark = pytest.mark.browser

JSON = {"Accept": "application/json"}
TOO_LATE = "Messages can only be edited within 10 minutes of posting."
FLOOD_WAIT_MS = 30_000  # flood control: 10 messages in 10 seconds, then the rest


def chat_pair(server, new_page):
    """alice and bob, registered through the form, both in a new room of alice's."""
    alice_page = register(new_page(), server.url, unique_name("alice"))
    room = unique_name("room")
    ChatPage(alice_page).create_room(room)
    alice = ChatPage(alice_page)
    alice.wait_joined()
    bob = ChatPage.open(register(new_page(), server.url, unique_name("bob")), server.url, room)
    expect(alice.member_status(bob.user)).to_have_text("Online")
    return alice, bob, room


def stored(page, base_url: str, room: str) -> list[dict]:
    """The room's messages as the server keeps them (JSON, as a script reads them)."""
    answer = page.request.get(f"{base_url}/chat/{room}/messages?after=0", headers=JSON)
    assert answer.ok, answer.status
    return answer.json()["messages"]


def test_quick_sends_beyond_flood_control_are_all_stored_once_in_order(chat_server, new_page):
    alice, bob, room = chat_pair(chat_server, new_page)
    mark_document(alice.page)
    typed = [f"quick {n}" for n in range(13)]
    for text in typed:  # as fast as a person can press Enter
        alice.post(text)
    expect(alice.composer).to_have_value("")
    # Ten go at once; the three flood control refused wait, visibly, and go when allowed.
    expect(alice.feedback).to_have_text("3 messages waiting to be sent…")
    for chat in (alice, bob):
        expect(chat.messages).to_have_count(13, timeout=FLOOD_WAIT_MS)
        assert chat.bodies() == typed
    expect(alice.feedback).to_have_text("")
    expect(alice.composer).to_have_value("")
    assert [m["body"] for m in stored(alice.page, chat_server.url, room)] == typed
    assert same_document(alice.page)
    assert_no_console_errors(alice.page, bob.page)


def test_formatting_shows_for_everyone_and_edit_gives_back_the_text_as_typed(chat_server, new_page):
    alice, bob, _room = chat_pair(chat_server, new_page)
    typed = "**bold** _italic_ `code` www.example.com\n> quoted\n- one\n- two"
    alice.post(typed)
    body = bob.messages.first.locator(".chat-body")
    expect(body.locator("strong")).to_have_text("bold")
    expect(body.locator("em")).to_have_text("italic")
    expect(body.locator("code")).to_have_text("code")
    expect(body.locator("blockquote")).to_have_text("quoted")
    expect(body.locator("li")).to_have_text(["one", "two"])
    link = body.get_by_role("link", name="www.example.com")
    expect(link).to_have_attribute("href", "http://www.example.com")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    message_id = int(alice.messages.first.get_attribute("data-id"))
    edit_button(alice, message_id).click()
    expect(alice.composer).to_have_value(typed)
    alice.composer.fill("~~struck~~")
    alice.composer.press("Enter")
    expect(bob.message(message_id).locator(".chat-body s")).to_have_text("struck")
    assert_no_console_errors(alice.page, bob.page)


def set_created_at(server: LiveServer, message_id: int, ago: timedelta) -> None:
    """Make a stored message look posted ``ago`` (the server's own clock decides what it allows)."""
    path = make_url(server.env["DATABASE_URL"]).database
    with sqlite3.connect(path) as db:
        # Stored as naive UTC, as SQLAlchemy writes it on SQLite.
        when = datetime.now(UTC).replace(tzinfo=None) - ago
        db.execute(
            "UPDATE messages SET created_at = ? WHERE id = ?",
            (when.strftime("%Y-%m-%d %H:%M:%S.%f"), message_id),
        )
    db.close()


def edit_button(chat: ChatPage, message_id: int):
    return chat.message(message_id).get_by_role("button", name="Edit")


def test_edit_is_offered_only_while_the_server_allows_it(chat_server, new_page):
    alice, bob, room = chat_pair(chat_server, new_page)
    for text in ("long ago", "closing soon", "just now"):
        alice.send(text)
    alice.wait_count(3)
    old, closing, fresh = (alice.id_of(t) for t in ("long ago", "closing soon", "just now"))
    set_created_at(chat_server, old, timedelta(minutes=11))
    set_created_at(chat_server, closing, timedelta(minutes=10) - timedelta(seconds=15))

    alice = ChatPage.open(alice.page, chat_server.url, room)
    mark_document(alice.page)
    expect(edit_button(alice, old)).to_be_hidden()
    expect(edit_button(alice, fresh)).to_be_visible()
    expect(edit_button(alice, closing)).to_be_visible()
    # Its ten minutes run out while the page is open: Edit goes, without a reload.
    expect(edit_button(alice, closing)).to_be_hidden(timeout=30_000)
    expect(edit_button(alice, fresh)).to_be_visible()
    assert same_document(alice.page)
    # Delete stays; and nobody else is offered either on alice's messages.
    expect(alice.message(old).get_by_role("button", name="Delete")).to_be_visible()
    expect(bob.page.locator("#messages [data-action]:visible")).to_have_count(0)
    assert_no_console_errors(alice.page, bob.page)


def test_an_edit_the_server_refuses_leaves_edit_mode_with_the_reason(chat_server, new_page):
    alice, bob, _room = chat_pair(chat_server, new_page)
    alice.send("typo in here")
    message_id = alice.id_of("typo in here")
    edit_button(alice, message_id).click()
    expect(alice.composer).to_have_value("typo in here")
    expect(alice.page.locator("#composer")).to_have_class(re.compile(r"\bis-editing\b"))
    # The window closes while alice is editing (the page offered Edit in time).
    set_created_at(chat_server, message_id, timedelta(minutes=11))
    alice.composer.fill("no typo in here")
    alice.composer.press("Enter")

    expect(alice.feedback).to_have_text(TOO_LATE)
    expect(alice.page.locator("#composer")).not_to_have_class(re.compile(r"\bis-editing\b"))
    expect(alice.page.get_by_role("button", name="Cancel edit")).to_be_hidden()
    expect(alice.composer).to_have_value("no typo in here")  # what was typed is kept
    for chat in (alice, bob):
        expect(chat.message(message_id).locator(".chat-body")).to_have_text("typo in here")
    # The composer sends again, as a new message (not another edit).
    alice.composer.press("Enter")
    expect(bob.message_with("no typo in here")).to_have_count(1)
    assert bob.bodies() == ["typo in here", "no typo in here"]
    assert_no_console_errors(alice.page, bob.page)


class RecordAcks:
    """Routes a page's socket and keeps every acknowledgement the server sent it."""

    ACK = re.compile(r"^43\d+(\[.*\])$", re.DOTALL)

    def __init__(self):
        self.acks: list[dict] = []

    def __call__(self, ws) -> None:
        server = ws.connect_to_server()

        def from_server(message):
            found = self.ACK.match(message) if isinstance(message, str) else None
            if found:
                self.acks.extend(a for a in json.loads(found.group(1)) if isinstance(a, dict))
            ws.send(message)

        ws.on_message(lambda message: server.send(message))
        server.on_message(from_server)


@pytest.fixture
def postgres_behind_proxy(tmp_path, postgres_url, request):  # noqa: F811  (the fixture)
    """(gunicorn on PostgreSQL reached through a TCP proxy the test can cut, the proxy)."""
    url = make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    server = LiveServer(
        {
            "SECRET_KEY": "browser-secret",
            "DATABASE_URL": url.set(host="127.0.0.1", port=proxy.port).render_as_string(
                hide_password=False
            ),
            "MESSAGE_QUEUE_URL": "",
        },
        log_path=tmp_path / "gunicorn-postgres.log",
    )
    server.migrate()
    server.start()
    yield server, proxy
    server.stop()
    proxy.stop()
    if has_failed(request.node) and server.log_path.exists():
        (artifact_dir(request.node) / server.log_path.name).write_bytes(
            server.log_path.read_bytes()
        )


def test_a_send_the_server_could_not_do_just_now_is_sent_again_and_stored_once(
    postgres_behind_proxy, new_page
):
    server, proxy = postgres_behind_proxy
    acks = RecordAcks()
    page = register(new_page(), server.url, unique_name("alice"))
    page.route_web_socket(re.compile(r"/socket\.io/"), acks)
    alice = ChatPage.open(page, server.url, "general")
    mark_document(alice.page)
    alice.send("before")
    expect(alice.message_with("before")).to_have_count(1)

    proxy.cut("refuse")  # the database is down for a moment
    alice.send("while the database was down")
    expect(alice.feedback).to_have_text("1 message waiting to be sent…")
    expect(alice.composer).to_have_value("")
    # The server said: try again (its answer may come after the page shows the send waiting).
    for _ in range(100):
        if any(a.get("retry") for a in acks.acks):
            break
        alice.page.wait_for_timeout(100)  # Playwright delivers the frames meanwhile
    assert any(a.get("retry") for a in acks.acks), acks.acks
    proxy.restore()

    expect(alice.message_with("while the database was down")).to_have_count(1, timeout=30_000)
    expect(alice.feedback).to_have_text("")
    assert [m["body"] for m in stored(alice.page, server.url, "general")] == [
        "before",
        "while the database was down",
    ]
    assert same_document(alice.page)
