"""The chat pages at phone and desktop width, in light and dark mode.

Screenshots of every page and look are written to artifacts/screenshots/ for a person to check.
"""

import re

import pytest
from playwright.sync_api import Page, expect

from ..e2e.clients import logged_in
from .chat_fixtures import unique_name
from .chat_pages import ChatPage, register
from .conftest import ARTIFACTS
from .pages import assert_no_console_errors, open_live

pytestmark = pytest.mark.browser

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
LOOKS = [(size, scheme) for size in SIZES for scheme in ("light", "dark")]


def assert_fits(page: Page, width: int) -> None:
    """Nothing sticks out sideways: the page never scrolls horizontally."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_chat_pages_fit_phone_and_desktop_in_both_colour_modes(chat_server, new_page):
    url = chat_server.url
    shots = ARTIFACTS / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    room = unique_name("looks")
    # Someone with a long name who writes long words and links, and the viewer.
    talker_name = unique_name("a_rather_long_user_name_")
    talker = logged_in(url, talker_name)
    assert talker.post("/chat/rooms", {"name": room}).status_code == 201
    for body in (
        "Hello! Has anyone seen the build logs from last night?",
        "x" * 150,
        "https://example.com/a/very/long/path/that/never/seems/to/end/at/all?with=query&and=more",
        "Line one\nLine two\nLine three",
    ):
        answer = talker.post(
            f"/chat/{room}/messages", {"body": body}, headers={"Accept": "application/json"}
        )
        assert answer.status_code in (200, 201), answer.text
    viewer = register(new_page(), url, unique_name("viewer"))
    state = viewer.context.storage_state()
    ChatPage.open(viewer, url, room).send("Mine, with the Edit and Delete links.")

    pages, shown = [], 5
    for size, scheme in LOOKS:
        look = {"viewport": SIZES[size], "color_scheme": scheme}
        width = SIZES[size]["width"]
        page = new_page(**look)
        for form in ("login", "register"):
            page.goto(f"{url}/{form}")
            page.screenshot(path=shots / f"chat-{form}-{size}-{scheme}.png", full_page=True)
            expect(page.get_by_label("Username")).to_be_in_viewport()
            expect(page.get_by_label("Password")).to_be_in_viewport()
            # The rules under each field are read out with it.
            expect(page.get_by_label("Username")).to_have_accessible_description(
                re.compile("3–32 letters")
            )
            expect(page.get_by_label("Password")).to_have_accessible_description(
                "At least 8 characters."
            )
            assert_fits(page, width)
        pages.append(page)

        page = new_page(storage_state=state, **look)
        open_live(page, f"{url}/chat")
        page.screenshot(path=shots / f"chat-rooms-{size}-{scheme}.png", full_page=True)
        expect(page.get_by_label("New room")).to_be_in_viewport()
        expect(page.get_by_role("navigation", name="Rooms")).to_be_in_viewport()
        assert_fits(page, width)

        chat = ChatPage(page)
        chat.switch_to(room)
        chat.wait_joined()
        chat.wait_count(shown)
        expect(chat.member_status(talker_name)).to_have_text("Offline")
        page.screenshot(path=shots / f"chat-room-{size}-{scheme}.png")
        page.screenshot(path=shots / f"chat-room-full-{size}-{scheme}.png", full_page=True)
        assert page.locator("html").get_attribute("data-bs-theme") == scheme
        assert_fits(page, width)
        # On load: the room's name, who is here, the newest message and the composer are all
        # in view, on a phone too.
        expect(page.get_by_role("heading", level=1)).to_be_in_viewport()
        # On a phone the members are one line that scrolls sideways (general has everyone):
        # each is in view once that line is scrolled to it.
        for member in page.locator("#members > li").all():
            member.scroll_into_view_if_needed()
            expect(member).to_be_in_viewport()
        expect(page.get_by_role("heading", level=1)).to_be_in_viewport()
        expect(chat.messages.last).to_be_in_viewport()
        expect(chat.composer).to_be_in_viewport()
        expect(page.get_by_role("button", name="Send")).to_be_in_viewport()
        # Long names and words wrap inside their boxes.
        for box in (".chat-people", "#message-scroller")[1 if size == "phone" else 0 :]:
            right = page.eval_on_selector(box, "el => el.getBoundingClientRect().right")
            inner = page.eval_on_selector_all(
                f"{box} .chat-member-name, {box} .chat-author, {box} .chat-body",
                "els => Math.max(0, ...els.map(el => el.getBoundingClientRect().right))",
            )
            assert inner <= right + 1, f"{box} content sticks out on {size}"
        # New messages are announced; the composer has a label and keeps the focus.
        log = page.get_by_role("log")
        expect(log).to_have_attribute("aria-live", "polite")
        expect(log.locator(".chat-message")).to_have_count(shown)
        chat.send(f"Sent from a {size} in {scheme} mode")
        shown += 1
        expect(chat.message_with(f"Sent from a {size} in {scheme} mode")).to_be_in_viewport()
        expect(chat.composer).to_be_focused()
        expect(chat.composer).to_be_in_viewport()
        pages.append(page)
    assert_no_console_errors(*pages)
