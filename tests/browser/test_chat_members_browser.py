"""The room page's member list stays true: it catches up after the socket was away."""

import pytest
from playwright.sync_api import expect

from ..e2e.clients import logged_in
from ..e2e.cluster import ChatClient
from .pages import assert_no_console_errors, open_live

pytestmark = pytest.mark.browser


def signed_in_page(new_page, base_url: str, username: str):
    """A browser page with the session of a newly registered ``username``."""
    session = logged_in(base_url, username)
    page = new_page()
    page.context.add_cookies(
        [{"name": c.name, "value": c.value, "url": base_url} for c in session.http.cookies]
    )
    return page


def members_shown(page) -> dict[str, str]:
    return dict(
        page.eval_on_selector_all(
            "#members .chat-member", "els => els.map(el => [el.dataset.user, el.dataset.status])"
        )
    )


def test_a_page_that_was_offline_shows_the_member_list_of_a_fresh_load(live_server, new_page):
    bob = ChatClient(logged_in(live_server.url, "bob"), "bob").join()
    alice = open_live(
        signed_in_page(new_page, live_server.url, "alice"), live_server.url + "/chat/general"
    )
    member = alice.locator("#members .chat-member")
    # alice's own socket connected after the page was rendered: she is shown online.
    expect(member).to_have_count(2)
    expect(alice.locator('#members [data-user="alice"]')).to_have_attribute("data-status", "online")
    expect(alice.locator('#members [data-user="bob"]')).to_have_attribute("data-status", "online")

    alice.context.set_offline(True)
    expect(alice.locator("#connection-status")).not_to_have_attribute("data-state", "connected")
    bob.disconnect()  # bob leaves and carol arrives while alice's page hears nothing
    carol = ChatClient(logged_in(live_server.url, "carol"), "carol").join()
    expect(alice.locator('#members [data-user="bob"]')).to_have_attribute("data-status", "online")

    alice.context.set_offline(False)
    expect(alice.locator('#members [data-user="bob"]')).to_have_attribute("data-status", "offline")
    expect(member).to_have_count(3)
    assert members_shown(alice) == {"alice": "online", "bob": "offline", "carol": "online"}
    fresh = open_live(
        signed_in_page(new_page, live_server.url, "dave"), live_server.url + "/chat/general"
    )
    for page in (alice, fresh):  # dave arrived: alice's page is live again
        expect(page.locator('#members [data-user="dave"]')).to_have_attribute(
            "data-status", "online"
        )
    expect(fresh.locator("#members .chat-member")).to_have_count(4)
    assert members_shown(alice) == members_shown(fresh)
    assert all("WebSocket connection" in error for error in alice.console.errors)
    assert_no_console_errors(fresh)
    carol.disconnect()
