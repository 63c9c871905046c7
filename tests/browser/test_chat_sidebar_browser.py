"""The live sidebar as people see it: badges raised live and cleared in every tab, the tab
title's count, "Mark all read", mentions highlighted, counted and completed, and notifications."""

import re

import pytest
from playwright.sync_api import Page, expect

from .chat_fixtures import unique_name
from .chat_pages import ChatPage, register
from .pages import assert_no_console_errors, open_live, set_hidden

pytestmark = pytest.mark.browser

# Every Notification the page constructs, recorded instead of shown; permission as given.
CAPTURE_NOTIFICATIONS = """(() => {
    window.__notes = [];
    window.__permissionAsked = 0;
    class CapturedNotification {
        constructor(title, options) {
            this.title = title;
            this.options = options || {};
            window.__notes.push({title: title, body: this.options.body || ""});
            window.__lastNote = this;
        }
        close() {}
        static get permission() { return window.__permission || "%s"; }
        static requestPermission() {
            window.__permissionAsked += 1;
            window.__permission = "granted";
            return Promise.resolve("granted");
        }
    }
    window.Notification = CapturedNotification;
})();"""


def mentions(chat: ChatPage, room: str):
    return chat.room_link(room).locator('[data-role="mentions"]')


def second_tab(chat: ChatPage, url: str) -> Page:
    page = chat.page.context.new_page()
    page.console = chat.page.console
    open_live(page, url)
    return page


def people_in_a_room(chat_server, new_page, **context):
    """alice in a new room of hers; bob, a member of it, looking at general."""
    url = chat_server.url
    alice = ChatPage(register(new_page(), url, unique_name("alice")))
    room = unique_name("room")
    alice.create_room(room)
    alice.wait_joined()
    permission = context.pop("_permission", None)
    bob_page = new_page(**context)
    if permission:
        bob_page.add_init_script(CAPTURE_NOTIFICATIONS % permission)
    bob = ChatPage.open(register(bob_page, url, unique_name("bob")), url, room)
    bob.switch_to("general")
    bob.wait_joined()
    return alice, bob, room


def test_a_message_elsewhere_raises_the_badge_and_title_live_and_reading_clears_every_tab(
    chat_server, new_page
):
    alice, bob, room = people_in_a_room(chat_server, new_page)
    other = ChatPage(second_tab(bob, f"{chat_server.url}/chat/general"))
    expect(bob.unread(room)).to_have_count(0)

    alice.send("first")
    alice.send("second")
    for tab in (bob, other):
        expect(tab.unread(room)).to_have_text("2")
        expect(tab.page).to_have_title(re.compile(r"^\(2\) # general"))
    expect(bob.unread("general")).to_have_count(0)

    # bob reads the room in one tab: the other tab's badge and title clear.
    bob.switch_to(room)
    bob.wait_count(2)
    expect(other.unread(room)).to_have_count(0)
    expect(other.page).to_have_title(re.compile(r"^# general"))
    expect(bob.room_link(room)).to_have_attribute("aria-current", "page")

    # While its socket is away nothing arrives; once back, the sidebar is read again.
    other.page.evaluate("window.realtime.socket.disconnect()")
    bob.switch_to("general")
    alice.send("while away")
    expect(bob.unread(room)).to_have_text("1")
    expect(other.unread(room)).to_have_count(0)
    other.page.evaluate("window.realtime.socket.connect()")
    expect(other.unread(room)).to_have_text("1")
    expect(other.page).to_have_title(re.compile(r"^\(1\) "))
    assert_no_console_errors(alice.page, bob.page)


def test_mark_all_read_clears_every_badge(chat_server, new_page):
    alice, bob, room = people_in_a_room(chat_server, new_page)
    alice.switch_to("general")
    alice.send("in general")
    alice.switch_to(room)
    alice.send(f"in {room}")
    expect(bob.unread(room)).to_have_text("1")
    bob.page.get_by_role("button", name="Mark all read").click()
    expect(bob.unread(room)).to_have_count(0)
    expect(bob.page).to_have_title(re.compile(r"^# general"))
    bob.page.reload()
    expect(bob.unread(room)).to_have_count(0)
    assert_no_console_errors(alice.page, bob.page)


def test_a_mention_is_completed_highlighted_and_counted_apart(chat_server, new_page):
    alice, bob, room = people_in_a_room(chat_server, new_page)
    choices = alice.page.get_by_role("listbox", name="People to mention")

    alice.composer.click()
    alice.page.keyboard.type("hi @" + bob.user[:2])
    expect(alice.composer).to_have_attribute("aria-expanded", "true")
    option = choices.get_by_role("option", name=f"@{bob.user}")
    expect(option).to_have_attribute("aria-selected", "true")
    # Esc closes the list and leaves the text; typing again opens it; Enter picks.
    alice.page.keyboard.press("Escape")
    expect(choices).to_be_hidden()
    alice.page.keyboard.type(bob.user[2:])
    expect(option).to_be_visible()
    alice.page.keyboard.press("ArrowDown")  # the only choice: it stays chosen
    expect(option).to_have_attribute("aria-selected", "true")
    alice.page.keyboard.press("Enter")
    expect(choices).to_be_hidden()
    expect(alice.composer).to_have_value(f"hi @{bob.user} ")
    alice.page.keyboard.type("look")
    alice.page.keyboard.press("Enter")
    alice.wait_count(1)

    expect(mentions(bob, room)).to_have_text("@1")
    expect(bob.unread(room)).to_have_text("1")
    bob.switch_to(room)
    highlighted = bob.message_with(f"hi @{bob.user} look").locator(".mention")
    expect(highlighted).to_have_text(f"@{bob.user}")
    expect(highlighted).to_have_css("font-weight", "600")  # his own name, marked for him
    expect(alice.message_with(f"hi @{bob.user} look").locator(".mention")).not_to_have_css(
        "font-weight", "600"
    )
    expect(mentions(bob, room)).to_have_count(0)
    assert_no_console_errors(alice.page, bob.page)


def test_a_mention_raises_a_notification_while_hidden_that_opens_the_room(chat_server, new_page):
    alice, bob, room = people_in_a_room(
        chat_server, new_page, permissions=["notifications"], _permission="granted"
    )
    expect(bob.page.get_by_role("switch", name="Notifications")).to_be_checked()

    alice.send(f"not hidden yet @{bob.user}")
    expect(mentions(bob, room)).to_have_text("@1")
    set_hidden(bob.page)
    alice.send(f"are you there @{bob.user}?")
    expect(mentions(bob, room)).to_have_text("@2")
    notes = bob.page.evaluate("window.__notes")
    assert notes == [
        {"title": f"{alice.user} mentioned you in #{room}", "body": f"are you there @{bob.user}?"}
    ]
    bob.page.evaluate("window.__lastNote.onclick()")
    expect(bob.page.locator("#chat-page")).to_have_attribute("data-room", room)

    # Turned off in this browser: nothing more.
    set_hidden(bob.page, False)
    bob.switch_to("general")
    bob.page.get_by_role("switch", name="Notifications").uncheck()
    set_hidden(bob.page)
    alice.send(f"still @{bob.user}?")
    expect(mentions(bob, room)).to_have_text("@1")
    assert len(bob.page.evaluate("window.__notes")) == 1
    assert bob.page.evaluate("window.__permissionAsked") == 0
    assert_no_console_errors(alice.page, bob.page)


def test_permission_is_asked_only_from_a_click(chat_server, new_page):
    _alice, bob, _room = people_in_a_room(
        chat_server, new_page, permissions=[], _permission="default"
    )
    assert bob.page.evaluate("window.__permissionAsked") == 0
    bob.page.get_by_role("button", name="Turn on notifications").click()
    expect(bob.page.get_by_role("switch", name="Notifications")).to_be_checked()
    assert bob.page.evaluate("window.__permissionAsked") == 1
