"""The chat in a real browser: two people talk, see each other, switch rooms and page back."""

import json
import re

import pytest
from playwright.sync_api import expect

from ..e2e.clients import LiveSocket, logged_in
from .chat_fixtures import unique_name
from .chat_pages import ChatPage, log_in, mark_document, register, same_document
from .pages import add_rows_over_http, assert_no_console_errors, set_hidden, wait_live

pytestmark = pytest.mark.browser


def test_two_people_talk_type_edit_delete_and_see_each_others_presence(chat_server, new_page):
    url = chat_server.url
    alice_name, bob_name, room = unique_name("alice"), unique_name("bob"), unique_name("team")

    # alice registers, creates a room from the room list, logs out and logs in again.
    page = register(new_page(), url, alice_name)
    expect(page).to_have_url(re.compile(r"/chat$"))
    expect(page.get_by_role("alert")).to_contain_text(f"Welcome, {alice_name}!")
    wait_live(page)
    mark_document(page)
    ChatPage(page).create_room(room)
    expect(page).to_have_url(re.compile(rf"/chat/{room}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"# {room}")
    assert same_document(page), "creating a room reloaded the page"
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("alert")).to_contain_text("You are logged out.")
    page.goto(f"{url}/chat/{room}")
    expect(page).to_have_url(re.compile(rf"/login\?next=(/|%2F)chat(/|%2F){room}$"))
    log_in(page, alice_name)
    expect(page).to_have_url(re.compile(rf"/chat/{room}$"))
    alice = ChatPage(page)
    alice.wait_joined()

    # bob follows a link to the room, is asked to log in, and registers from there.
    page = new_page()
    page.goto(f"{url}/chat/{room}")
    page.get_by_role("link", name="Register").last.click()
    register(page, url, bob_name, next_path=f"/chat/{room}")
    expect(page).to_have_url(re.compile(rf"/chat/{room}$"))
    bob = ChatPage(page)
    wait_live(page)
    bob.join()  # following a link shows the room; Join makes him a member
    bob.wait_joined()
    expect(alice.member_status(bob_name)).to_have_text("Online")
    expect(bob.member_status(alice_name)).to_have_text("Online")
    for chat in (alice, bob):
        mark_document(chat.page)

    # Typing shows for the other person and goes when the message arrives; Enter sends.
    alice.composer.click()
    alice.page.keyboard.type("hello bob")
    expect(bob.typing(alice_name)).to_be_visible()
    expect(bob.typing(alice_name)).to_have_text(f"{alice_name} is typing…")
    expect(alice.typing(alice_name)).to_be_hidden()  # one's own typing is not shown
    alice.page.keyboard.press("Enter")
    expect(bob.message_with("hello bob")).to_have_count(1)
    expect(bob.typing(alice_name)).to_be_hidden()
    # The composer is empty and keeps the focus for the next message.
    expect(alice.composer).to_have_value("")
    expect(alice.composer).to_be_focused()

    # Shift+Enter is a new line, kept in the message everyone sees.
    alice.send("line one\nline two")
    for chat in (alice, bob):
        expect(chat.message_with("line one\nline two")).to_have_count(1)
    shown = bob.message_with("line one\nline two").locator(".chat-body")
    assert shown.inner_text() == "line one\nline two"  # rendered on two lines, not one
    bob.send("hi alice")
    expect(alice.message_with("hi alice")).to_have_count(1)
    for chat in (alice, bob):
        assert chat.bodies() == ["hello bob", "line one\nline two", "hi alice"]
        assert [row[1] for row in chat.snapshot()] == [alice_name, alice_name, bob_name]

    # A typist who stops: the line goes about 5 seconds after the last keystroke.
    bob.composer.click()
    bob.page.keyboard.type("still th")
    expect(alice.typing(bob_name)).to_be_visible()
    expect(alice.typing(bob_name)).to_be_hidden(timeout=20_000)
    bob.composer.fill("")

    # alice edits her first message: bob sees the new text and the "edited" mark.
    first = alice.id_of("hello bob")
    alice.edit(first, "hello bob, again")
    expect(bob.message(first).locator(".chat-body")).to_have_text("hello bob, again")
    expect(bob.message(first).locator('[data-role="edited"]')).to_be_visible()
    expect(alice.composer).to_have_value("")
    # Only one's own messages offer Edit and Delete.
    bob.message(first).hover()
    expect(bob.message(first).get_by_role("button", name="Edit")).to_be_hidden()

    # ... and deletes her second one: gone in both browsers.
    second = alice.id_of("line one\nline two")
    alice.delete(second)
    for chat in (alice, bob):
        expect(chat.message(second)).to_have_count(0)
        assert chat.bodies() == ["hello bob, again", "hi alice"]
    expect(alice.composer).to_be_focused()  # not lost with the button that went away

    # Presence: Away while alice's tab is hidden, Online when she is back, Offline when closed.
    set_hidden(alice.page)
    expect(bob.member_status(alice_name)).to_have_text("Away")
    set_hidden(alice.page, False)
    expect(bob.member_status(alice_name)).to_have_text("Online")
    alice_console = alice.page
    alice.page.close()
    expect(bob.member_status(alice_name)).to_have_text("Offline")
    expect(bob.member_status(bob_name)).to_have_text("Online")

    assert same_document(bob.page), "bob's page was reloaded"
    assert_no_console_errors(alice_console, bob.page)


def chat_pair(server, new_page, room: str | None = None):
    """alice and bob, registered through the form, both in a new room of alice's."""
    url = server.url
    alice_page = register(new_page(), url, unique_name("alice"))
    room = room or unique_name("room")
    ChatPage(alice_page).create_room(room)
    alice = ChatPage(alice_page)
    alice.wait_joined()
    bob = ChatPage.open(register(new_page(), url, unique_name("bob")), url, room)
    expect(alice.member_status(bob.user)).to_have_text("Online")
    return alice, bob, room


def test_switching_rooms_keeps_the_page_and_the_room_list_counts_unread(chat_server, new_page):
    alice, bob, first = chat_pair(chat_server, new_page)
    second = unique_name("room")
    bob.create_room(second)
    expect(bob.page).to_have_url(re.compile(rf"/chat/{second}$"))
    bob.wait_joined()
    mark_document(bob.page)

    # alice writes in the first room while bob is in the second: nothing shows for him there.
    alice.send("one for later")
    alice.send("and another")
    alice.wait_count(2)
    bob.send("alone here")
    bob.wait_count(1)
    assert bob.bodies() == ["alone here"]
    # The room list counts what bob has not read (drawn with the chat part of the page).
    # A script styled the room field (as libraries and browser extensions do): htmx must not
    # copy that style attribute over when it swaps the page part (the CSP forbids it).
    bob.page.eval_on_selector("#room-name", "el => { el.style.color = 'red'; }")
    bob.switch_to(second)
    expect(bob.unread(first)).to_have_text("2")
    expect(bob.unread(second)).to_have_count(0)

    bob.switch_to(first)
    bob.wait_count(2)
    assert bob.bodies() == ["one for later", "and another"]
    expect(bob.unread(first)).to_have_count(0)
    expect(bob.room_link(first)).to_have_attribute("aria-current", "page")
    # bob now hears the first room, and not the second any more.
    alice.send("welcome back")
    expect(bob.message_with("welcome back")).to_have_count(1)
    bob.send("thanks")
    expect(alice.message_with("thanks")).to_have_count(1)

    # Back to the second room with the browser's Back button: still no reload, and live.
    bob.page.go_back()
    expect(bob.page).to_have_url(re.compile(rf"/chat/{second}$"))
    expect(bob.page.get_by_role("heading", level=1)).to_have_text(f"# {second}")
    bob.wait_count(1)
    expect(bob.member_status(bob.user)).to_have_text("Online")
    ChatPage.open(alice.page, chat_server.url, second).send("found you")  # joins it
    expect(bob.message_with("found you")).to_have_count(1)
    assert bob.bodies() == ["alone here", "found you"]
    assert same_document(bob.page), "switching rooms reloaded the page"
    assert_no_console_errors(alice.page, bob.page)


def test_load_older_pages_back_through_a_long_history(chat_server, new_page):
    room = unique_name("history")
    # 60 messages from six people (flood control allows each 10 in 10 seconds), over HTTP.
    posters = [logged_in(chat_server.url, unique_name("poster")) for _ in range(6)]
    assert posters[0].post("/chat/rooms", {"name": room}).status_code == 201
    for poster in posters[1:]:
        assert poster.post(f"/chat/{room}/join", {}).status_code == 200  # members post
    sent = []
    for number in range(60):
        body = f"history {number + 1}"
        answer = posters[number // 10].post(
            f"/chat/{room}/messages",
            {"body": body},
            headers={"Accept": "application/json", "HX-Request": ""},
        )
        assert answer.status_code == 201, answer.text
        sent.append((answer.json()["id"], body))

    chat = ChatPage.open(
        register(new_page(), chat_server.url, unique_name("reader")), chat_server.url, room
    )
    chat.wait_count(50)
    assert chat.bodies() == [body for _id, body in sent[10:]]
    # The newest message is in view; the oldest shown is above, scrolled away.
    expect(chat.message_with("history 60")).to_be_in_viewport()
    expect(chat.message_with("history 12")).not_to_be_in_viewport()

    # Events about what this page does not show change nothing on it and log no error: an
    # edit of a message not loaded yet, a row added to the table.
    editor = LiveSocket(posters[0]).connect()
    edited = editor.client.call("chat:edit", {"id": sent[0][0], "body": "history 1, edited"})
    assert edited["ok"], edited
    add_rows_over_http(chat_server.url, [(1, 2)])
    editor.disconnect()
    # Someone writes while the reader is at the bottom: the view follows.
    late = logged_in(chat_server.url, unique_name("late"))
    late.post(f"/chat/{room}/join", {})
    late.post(f"/chat/{room}/messages", {"body": "not alone"})
    chat.wait_count(51)
    assert chat.bodies()[-1] == "not alone"
    expect(chat.message_with("not alone")).to_be_in_viewport()
    sent[0] = (sent[0][0], "history 1, edited")
    sent.append((chat.id_of("not alone"), "not alone"))
    assert_no_console_errors(chat.page)

    older = chat.page.get_by_role("button", name="Load older")
    older.click()
    chat.wait_count(61)
    expect(older).to_have_count(0)
    assert [(row[0], row[2]) for row in chat.snapshot()] == sent
    # What the reader looked at stays where it was: older messages go above it.
    expect(chat.message_with("history 12")).to_be_in_viewport()
    expect(chat.message_with("history 1, edited")).not_to_be_in_viewport()
    # Someone writes while the reader reads up there: the view stays where it is.
    late.post(f"/chat/{room}/messages", {"body": "while you read"})
    chat.wait_count(62)
    expect(chat.message_with("history 12")).to_be_in_viewport()
    expect(chat.message_with("while you read")).not_to_be_in_viewport()

    # One's own new message goes at the bottom of the long list, and into view.
    chat.send("the newest")
    chat.wait_count(63)
    assert chat.bodies()[-1] == "the newest"
    expect(chat.message_with("the newest")).to_be_in_viewport()
    assert_no_console_errors(chat.page)


def test_a_page_that_was_offline_catches_up_and_delivers_what_was_typed_once(chat_server, new_page):
    alice, bob, room = chat_pair(chat_server, new_page)
    for text in ("first", "second", "third"):
        bob.send(text)
    alice.wait_count(3)
    first, second = bob.id_of("first"), bob.id_of("second")
    mark_document(alice.page)

    alice.page.context.set_offline(True)
    expect(alice.page.locator("#connection-status")).not_to_have_attribute(
        "data-state", "connected"
    )
    # While alice is away bob writes, edits and deletes.
    bob.send("fourth")
    bob.edit(second, "second, corrected")
    bob.delete(first)
    bob.send("fifth")
    bob.wait_count(4)
    set_hidden(bob.page)  # and goes Away
    expect(bob.message(second).locator('[data-role="edited"]')).to_be_visible()
    # alice writes too: the message waits, the composer is free again.
    alice.send("written offline")
    expect(alice.composer).to_have_value("")
    expect(alice.feedback).to_contain_text("1 message waiting to be sent")
    assert alice.bodies() == ["first", "second", "third"]

    alice.page.context.set_offline(False)
    wait_live(alice.page)
    for chat in (alice, bob):
        expect(chat.message_with("written offline")).to_have_count(1)
    expect(alice.feedback).to_have_text("")
    # Presence too: bob went Away while alice was not listening.
    expect(alice.member_status(bob.user)).to_have_text("Away")
    expect(alice.member_status(alice.user)).to_have_text("Online")
    set_hidden(bob.page, False)
    expect(alice.member_status(bob.user)).to_have_text("Online")
    fresh_page = new_page(storage_state=bob.page.context.storage_state())
    fresh = ChatPage.open(fresh_page, chat_server.url, room)
    expected = ["second, corrected", "third", "fourth", "fifth", "written offline"]
    for chat in (alice, bob, fresh):
        chat.wait_count(5)
    assert fresh.bodies() == expected
    assert alice.snapshot() == bob.snapshot() == fresh.snapshot()
    assert [row[3] for row in fresh.snapshot()] == [True, False, False, False, False]
    # Stored once: the server's own list (JSON, as a script reads it) agrees.
    stored = fresh_page.request.get(
        f"{chat_server.url}/chat/{room}/messages?after=0", headers={"Accept": "application/json"}
    ).json()["messages"]
    assert [(m["id"], m["body"]) for m in stored] == [(r[0], r[2]) for r in fresh.snapshot()]
    assert same_document(alice.page), "the page was reloaded"
    # Only the socket's own connection failures may be logged while the network was down.
    assert all("WebSocket connection" in error for error in alice.page.console.errors)
    assert_no_console_errors(bob.page, fresh.page)


class LoseFirstSendAnswer:
    """Routes a page's socket: the server's answer to the first ``chat:send`` never arrives,
    because the connection breaks just before it (the message itself was stored)."""

    SEND = re.compile(r'^42(\d+)\["chat:send",(.*)\]$', re.DOTALL)
    ACK = re.compile(r"^43(\d+)\[")

    def __init__(self):
        self.sends: list[dict] = []  # every chat:send the page made, in order
        self.lost: list[str] = []

    def __call__(self, ws) -> None:
        server = ws.connect_to_server()
        first_send: list[str] = []

        def from_page(message):
            found = self.SEND.match(message) if isinstance(message, str) else None
            if found:
                self.sends.append(json.loads(found.group(2)))
                first_send.append(found.group(1))
            server.send(message)

        def from_server(message):
            found = self.ACK.match(message) if isinstance(message, str) else None
            if found and not self.lost and first_send and found.group(1) == first_send[0]:
                self.lost.append(message)
                ws.close()
                return
            ws.send(message)

        ws.on_message(from_page)
        server.on_message(from_server)


def test_a_send_whose_answer_was_lost_is_resent_with_its_client_id_and_stored_once(
    chat_server, new_page
):
    alice, bob, room = chat_pair(chat_server, new_page)
    lose = LoseFirstSendAnswer()
    alice.page.route_web_socket(re.compile(r"/socket\.io/"), lose)
    alice = ChatPage.open(alice.page, chat_server.url, room)

    alice.send("are you there?")
    for chat in (alice, bob):
        expect(chat.message_with("are you there?")).to_have_count(1)
    expect(alice.feedback).to_have_text("")  # the resend was answered
    wait_live(alice.page)
    assert len(lose.lost) == 1, "the answer was not lost: the test proves nothing"
    # Sent twice with one client id, stored and shown once.
    assert [s["body"] for s in lose.sends] == ["are you there?", "are you there?"]
    assert lose.sends[0]["client_id"] == lose.sends[1]["client_id"]
    stored = alice.page.request.get(
        f"{chat_server.url}/chat/{room}/messages?after=0", headers={"Accept": "application/json"}
    ).json()["messages"]
    assert [m["body"] for m in stored] == ["are you there?"]
    alice.send("and again")
    expect(bob.message_with("and again")).to_have_count(1)
    for chat in (alice, bob):
        assert chat.bodies() == ["are you there?", "and again"]
    assert all("WebSocket" in error for error in alice.page.console.errors)
    assert_no_console_errors(bob.page)


class HoldJoins:
    """Routes a page's socket: while ``holding``, its ``chat:join`` waits (a slow network or
    server), so the page shows the new room while the server still sends it the old room's
    events. ``heard`` lists every frame the server sent."""

    def __init__(self):
        self.holding = False
        self.held: list = []
        self.heard: list[str] = []

    def __call__(self, ws) -> None:
        server = ws.connect_to_server()

        def from_page(message):
            if self.holding and isinstance(message, str) and '"chat:join"' in message:
                self.held.append((server, message))
                return
            server.send(message)

        def from_server(message):
            if isinstance(message, str):
                self.heard.append(message)
            ws.send(message)

        ws.on_message(from_page)
        server.on_message(from_server)

    def wait_heard(self, page, text: str) -> None:
        """Wait until the server has sent the page a frame containing ``text``."""
        for _ in range(300):
            if any(text in frame for frame in self.heard):
                return
            page.wait_for_timeout(50)
        raise AssertionError(f"the server never sent {text!r}")

    def release(self) -> None:
        self.holding = False
        for server, message in self.held:
            server.send(message)
        self.held.clear()


def test_events_of_the_room_just_left_do_not_show_in_the_next_one(chat_server, new_page):
    alice, bob, first = chat_pair(chat_server, new_page)
    second = unique_name("room")
    alice.create_room(second)
    alice.page.goto(f"{chat_server.url}/chat/{first}")
    alice = ChatPage(alice.page)
    alice.wait_joined()
    hold = HoldJoins()
    bob.page.route_web_socket(re.compile(r"/socket\.io/"), hold)
    bob = ChatPage.open(bob.page, chat_server.url, first)

    hold.holding = True
    bob.switch_to(second)
    expect(bob.page.locator("#members-heading")).to_be_visible()
    alice.composer.click()
    alice.page.keyboard.type("typing in the old room")
    hold.wait_heard(bob.page, '"chat:typing"')
    expect(bob.typing(alice.user)).to_be_hidden()
    alice.page.keyboard.press("Enter")
    hold.wait_heard(bob.page, "typing in the old room")
    expect(alice.message_with("typing in the old room")).to_have_count(1)
    assert bob.bodies() == [], "a message of the room bob left shows in the next one"

    hold.release()
    bob.join()  # he looked at the second room; now he joins it
    bob.wait_joined()
    ChatPage.open(alice.page, chat_server.url, second).send("now in the second room")
    expect(bob.message_with("now in the second room")).to_have_count(1)
    assert bob.bodies() == ["now in the second room"]
    assert_no_console_errors(alice.page, bob.page)
