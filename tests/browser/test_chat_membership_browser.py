"""Membership in a real browser: Join and Leave a public room, and a direct conversation
started from a person's name in the member list."""

import re

from playwright.sync_api import expect

from .chat_fixtures import unique_name
from .chat_pages import ChatPage, register
from .pages import assert_no_console_errors, wait_live


def test_opening_a_room_shows_it_join_lets_one_post_and_leave_ends_it(chat_server, new_page):
    url = chat_server.url
    alice = ChatPage(register(new_page(), url, unique_name("alice")))
    room = unique_name("team")
    alice.create_room(room)
    alice.wait_joined()
    alice.send("welcome, whoever joins")

    # bob opens the room: he reads it, but is no member, so Join replaces the composer.
    bob = ChatPage.open(register(new_page(), url, unique_name("bob")), url, room, join=False)
    wait_live(bob.page)
    expect(bob.message_with("welcome, whoever joins")).to_have_count(1)
    expect(bob.composer).to_have_count(0)
    expect(bob.page.locator(f'#members [data-user="{bob.user}"]')).to_have_count(0)
    expect(alice.page.locator(f'#members [data-user="{bob.user}"]')).to_have_count(0)

    bob.join()
    bob.wait_joined()
    expect(alice.member_status(bob.user)).to_have_text("Online")
    bob.send("glad to be here")
    expect(alice.message_with("glad to be here")).to_have_count(1)

    # Leave: back in general; the room offers Join again.
    bob.page.get_by_role("button", name="Leave").click()
    expect(bob.page).to_have_url(re.compile(r"/chat/general$"))
    expect(alice.page.locator(f'#members [data-user="{bob.user}"]')).to_have_count(0)
    bob = ChatPage.open(bob.page, url, room, join=False)
    expect(bob.page.locator('[data-action="join-room"]')).to_be_visible()
    # general itself cannot be left: it offers no Leave.
    general = ChatPage.open(bob.page, url, "general")
    expect(general.page.get_by_role("button", name="Leave")).to_have_count(0)
    assert_no_console_errors(alice.page, bob.page)


def test_a_direct_conversation_starts_from_a_name_and_is_listed_for_both(chat_server, new_page):
    url = chat_server.url
    alice = ChatPage.open(register(new_page(), url, unique_name("alice")), url, "general")
    bob = ChatPage.open(register(new_page(), url, unique_name("bob")), url, "general")
    expect(alice.member_status(bob.user)).to_have_text("Online")
    # Each entry offers a direct message, except one's own.
    own = alice.page.locator(f'#members [data-user="{alice.user}"] [data-action="direct-message"]')
    expect(own).to_be_hidden()

    alice.page.get_by_role("button", name=f"Message {bob.user} directly").click()
    expect(alice.page).to_have_url(re.compile(r"/chat/dm\.\d+\.\d+$"))
    expect(alice.page.get_by_role("heading", level=1)).to_have_text(f"@ {bob.user}")
    alice = ChatPage(alice.page)
    alice.wait_joined()
    alice.send("just between us")

    # bob finds it under "Direct messages", named after alice.
    bob.page.reload()
    directs = bob.page.get_by_role("navigation", name="Direct messages")
    expect(directs.get_by_role("link", name=f"@ {alice.user}")).to_be_visible()
    directs.get_by_role("link", name=f"@ {alice.user}").click()
    expect(bob.page.get_by_role("heading", level=1)).to_have_text(f"@ {alice.user}")
    bob = ChatPage(bob.page)
    expect(bob.message_with("just between us")).to_have_count(1)
    bob.send("indeed")
    expect(alice.message_with("indeed")).to_have_count(1)
    assert_no_console_errors(alice.page, bob.page)
