"""What the chat remembers for a person across pages, tabs and browsers: what they have read,
the status they chose, and what they were typing when another browser logged them out."""

import re

import pytest
from playwright.sync_api import Page, expect

from .chat_fixtures import unique_name
from .chat_pages import ChatPage, log_in, register
from .pages import assert_no_console_errors, open_live, set_hidden, wait_live

pytestmark = pytest.mark.browser

LOGGED_OUT_NOTE = "You were logged out (in another tab or browser)."


# Records each status a member entry of ``user`` takes on (the entry is swapped, not edited).
WATCH_STATUS = """user => {
    window.__seenStatuses = [];
    new MutationObserver(() => {
        const el = document.querySelector(`#members [data-user="${user}"]`);
        const status = el && el.dataset.status;
        if (status && status !== "away") window.__seenStatuses.push(status);
    }).observe(document.getElementById("members"), {subtree: true, childList: true, attributes: true});
}"""


def second_tab(chat: ChatPage, url: str) -> Page:
    """Another tab of the same browser (same cookies and storage) opened at ``url``."""
    page = chat.page.context.new_page()
    page.console = chat.page.console  # one log for the browser: its errors are checked
    open_live(page, url)
    return page


def test_what_a_visible_page_showed_live_is_read_and_what_a_hidden_one_got_is_not(
    chat_server, new_page
):
    url = chat_server.url
    alice_page = register(new_page(), url, unique_name("alice"))
    room = unique_name("room")
    alice = ChatPage(alice_page)
    alice.create_room(room)
    alice.wait_joined()
    bob = ChatPage.open(register(new_page(), url, unique_name("bob")), url, room)
    expect(alice.member_status(bob.user)).to_have_text("Online")

    # bob reads three messages live, then clicks another room: nothing of the first is unread.
    for number in range(3):
        alice.send(f"live {number}")
    bob.wait_count(3)
    bob.switch_to("general")
    expect(bob.room_link(room)).to_be_visible()
    expect(bob.unread(room)).to_have_count(0)

    # Back in the room, his tab goes to the background; what arrives meanwhile is unread for
    # any other page of his, although that hidden tab received it.
    bob.switch_to(room)
    bob.wait_count(3)
    set_hidden(bob.page)
    expect(alice.member_status(bob.user)).to_have_text("Away")
    alice.send("while hidden 1")
    alice.send("while hidden 2")
    bob.wait_count(5)
    other = ChatPage(second_tab(bob, f"{url}/chat/general"))
    expect(other.unread(room)).to_have_text("2")
    other.page.close()
    expect(alice.member_status(bob.user)).to_have_text("Away")

    # He comes back to the tab: it shows them now, so a page rendered after that counts none.
    set_hidden(bob.page, False)
    expect(alice.member_status(bob.user)).to_have_text("Online")
    other = ChatPage(second_tab(bob, f"{url}/chat/general"))
    expect(other.room_link(room)).to_be_visible()
    expect(other.unread(room)).to_have_count(0)

    # A message that arrives while he is in another room counts, as before.
    other.page.close()
    bob.switch_to("general")
    alice.send("while elsewhere")
    expect(alice.messages).to_have_count(6)
    bob.page.reload()
    wait_live(bob.page)
    expect(bob.unread(room)).to_have_text("1")
    assert_no_console_errors(alice.page, bob.page)


def test_appear_away_holds_for_the_account_in_every_tab_until_switched_back(chat_server, new_page):
    url = chat_server.url
    laptop = ChatPage.open(register(new_page(), url, unique_name("alice")), url, "general")
    alice = laptop.user
    bob = ChatPage.open(register(new_page(), url, unique_name("bob")), url, "general")
    expect(bob.member_status(alice)).to_have_text("Online")
    toggle = laptop.page.get_by_role("switch", name="Appear away")
    expect(toggle).not_to_be_checked()

    toggle.check()
    expect(bob.member_status(alice)).to_have_text("Away")
    expect(laptop.member_status(alice)).to_have_text("Away")

    # Every status bob's page shows for her from now on.
    bob.page.evaluate(WATCH_STATUS, alice)

    # A tab in another browser (her phone): she stays Away, and its switch shows her choice.
    phone_page = new_page()
    phone_page.goto(f"{url}/login")
    log_in(phone_page, alice)
    phone = ChatPage(open_live(phone_page, f"{url}/chat/general"))
    expect(phone.member_status(alice)).to_have_text("Away")
    expect(phone.page.get_by_role("switch", name="Appear away")).to_be_checked()
    # A new tab of the first browser too.
    tab = ChatPage(second_tab(laptop, f"{url}/chat/general"))
    expect(tab.page.get_by_role("switch", name="Appear away")).to_be_checked()
    expect(tab.member_status(alice)).to_have_text("Away")
    # Both joined, and bob's page never showed her Online meanwhile, not even for a moment.
    bob.page.wait_for_timeout(1000)
    expect(bob.member_status(alice)).to_have_text("Away")
    assert bob.page.evaluate("window.__seenStatuses") == []

    # She switches back on the phone: Online for everyone, and every switch follows.
    phone.page.get_by_role("switch", name="Appear away").uncheck()
    expect(bob.member_status(alice)).to_have_text("Online")
    expect(toggle).not_to_be_checked()
    expect(tab.page.get_by_role("switch", name="Appear away")).not_to_be_checked()
    assert_no_console_errors(laptop.page, phone.page, bob.page)


def test_a_logout_elsewhere_says_why_and_keeps_each_rooms_draft(chat_server, new_page):
    url = chat_server.url
    name = unique_name("alice")
    laptop = register(new_page(), url, name)
    room = unique_name("room")
    chat = ChatPage(laptop)
    chat.create_room(room)
    chat.wait_joined()
    chat.composer.fill("half a thought")
    chat.switch_to("general")
    expect(chat.composer).to_have_value("")
    chat.composer.fill("a draft for general\non two lines")

    phone = new_page()
    phone.goto(f"{url}/login")
    log_in(phone, name)
    phone.get_by_role("button", name="Log out").click()
    expect(phone.get_by_text("You are logged out.")).to_be_visible()
    # The browser that logged out is not told it was logged out elsewhere.
    expect(phone.get_by_text(LOGGED_OUT_NOTE)).to_be_hidden()

    # The laptop's tab lands on the login page, which says why.
    expect(laptop).to_have_url(re.compile(r"/login\?next=/chat/general$"), timeout=15_000)
    expect(laptop.get_by_text(LOGGED_OUT_NOTE)).to_be_visible()
    log_in(laptop, name)
    expect(laptop).to_have_url(re.compile(r"/chat/general$"))
    wait_live(laptop)
    chat = ChatPage(laptop)
    expect(chat.composer).to_have_value("a draft for general\non two lines")
    expect(laptop.get_by_text(LOGGED_OUT_NOTE)).to_be_hidden()
    chat.switch_to(room)
    expect(chat.composer).to_have_value("half a thought")

    # A draft that is sent is gone: a reload shows an empty composer.
    chat.composer.press("End")
    chat.page.keyboard.press("Enter")
    expect(chat.message_with("half a thought")).to_have_count(1)
    laptop.reload()
    wait_live(laptop)
    expect(chat.composer).to_have_value("")
    # A login page reached without a logout elsewhere says nothing of the kind.
    fresh = new_page()
    fresh.goto(f"{url}/chat/general")
    expect(fresh.get_by_role("button", name="Log in")).to_be_visible()
    expect(fresh.get_by_text(LOGGED_OUT_NOTE)).to_be_hidden()
    assert_no_console_errors(laptop, phone)
