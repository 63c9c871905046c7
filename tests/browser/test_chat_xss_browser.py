"""Hostile text in the chat, in a real browser: shown as text, never run, never markup.

The server here sends NO Content-Security-Policy: the strict policy would block inline handlers
and hide a missing escape, and these tests are about the escaping itself. Every payload that
ran would set ``window.__xss`` or open a dialog.
"""

import re
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from .chat_fixtures import unique_name
from .chat_pages import ChatPage, csrf_headers, fill_account_form, register
from .pages import assert_no_console_errors

pytestmark = pytest.mark.browser

SERVER_ENV = {"CONTENT_SECURITY_POLICY": ""}

XSS = [
    "<script>window.__xss = 1; alert(1)</script>",
    '<img src=x onerror="window.__xss = 1; alert(1)">',
    '"><svg onload="window.__xss = 1; alert(1)">',
    '\'><iframe srcdoc="<script>parent.__xss = 1</script>"></iframe>',
    '<a href="javascript:window.__xss = 1; alert(1)">click me</a>',
    "javascript:alert(1)",
    "{{7*7}} {% if true %}49{% endif %} ${7*7} #{7*7}",
    "\u202egnp.exe\u202c and \u200fright-to-left\u200e marks",
    "&lt;b&gt;already escaped&lt;/b&gt; &amp; &#60;i&#62;",
    '<div id="messages" hx-get="/table/rows" hx-trigger="load" hx-swap-oob="true">htmx</div>',
    "<style>body { display: none }</style>",
    '<details open ontoggle="window.__xss = 1">x</details>',
    'https://example.com/"onmouseover="window.__xss = 1" x="',
    "http://evil.test/?q=<img src=x onerror=window.__xss=1>",
    "data:text/html,<script>window.__xss = 1</script>",
    "</textarea><script>window.__xss = 1</script>",
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=1>",
    "first line\n<b>second line</b>",
]
# What the page shows of each: the text as typed, except where it is Markdown (the asterisks
# of "7*7" emphasise what lies between them; nothing is evaluated).
SHOWN = [
    "{{77}} {% if true %}49{% endif %} ${77} #{7*7}" if payload.startswith("{{7*7}}") else payload
    for payload in XSS
]
SHORT = [
    '"><svg onload=window.__xss=1>',
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
]
# Elements and attributes that only an injection would put into the page's content.
INJECTED = (
    "script, img, svg, iframe, math, details, style, object, embed, "
    "[onerror], [onload], [ontoggle], [onmouseover], [srcdoc], [hx-get], [hx-trigger]"
)


def watch(page: Page) -> Page:
    """Record every dialog (alert, confirm, prompt) the page opens, and dismiss it."""
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    return page


def assert_nothing_ran(*pages: Page) -> None:
    for page in pages:
        assert page.dialogs == [], f"a dialog opened on {page.url}: {page.dialogs}"
        assert page.evaluate("window.__xss") is None, f"a payload ran on {page.url}"
        expect(page.locator("#main").locator(INJECTED)).to_have_count(0)
        # Links in messages go to http(s) only, in a new tab that cannot reach back.
        for link in page.locator("#messages a").all():
            assert re.match(r"https?://", link.get_attribute("href")), link.get_attribute("href")
            assert "noopener" in link.get_attribute("rel").split()
            assert link.get_attribute("target") == "_blank"


def test_messages_with_html_and_scripts_are_shown_as_text_and_run_nothing(chat_server, new_page):
    url = chat_server.url
    alice_page = watch(register(new_page(), url, unique_name("alice")))
    room = unique_name("xss")
    ChatPage(alice_page).create_room(room)
    alice = ChatPage(alice_page)
    alice.wait_joined()
    bob = ChatPage.open(watch(register(new_page(), url, unique_name("bob"))), url, room)

    # Flood control allows 10 messages in 10 seconds per person: they take turns.
    for number, payload in enumerate(XSS):
        (alice if number % 2 == 0 else bob).post(payload)
        expect(alice.messages).to_have_count(number + 1)
    bob.wait_count(len(XSS))
    fresh = ChatPage.open(
        watch(new_page(storage_state=bob.page.context.storage_state())), url, room
    )
    for chat in (alice, bob, fresh):  # arrived over the socket, and rendered with the page
        assert chat.bodies() == SHOWN
        # "{{7*7}}" stays itself, and a line break stays a line break.
        assert chat.message_with(XSS[-1]).locator(".chat-body").inner_text() == XSS[-1]
        assert_nothing_ran(chat.page)

    # The only links are the http ones: the quotes that tried to break out of one are part
    # of its address (encoded), and a link ends where markup would begin.
    links = bob.page.locator("#messages a")
    expect(links).to_have_count(2)
    assert [link.get_attribute("href") for link in links.all()] == [
        "https://example.com/%22onmouseover=%22window.__xss",
        "http://evil.test/?q=",
    ]

    # Editing: the composer gets the text back as text; the edited text reaches bob as text.
    target = alice.id_of(XSS[0])
    alice.message(target).hover()
    alice.message(target).get_by_role("button", name="Edit").click()
    expect(alice.composer).to_have_value(XSS[0])
    alice.composer.fill(XSS[1] + " (edited)")
    alice.composer.press("Enter")
    expect(bob.message(target).locator(".chat-body")).to_have_text(XSS[1] + " (edited)")
    expect(bob.message(target).locator('[data-role="edited"]')).to_be_visible()
    assert_nothing_ran(alice.page, bob.page, fresh.page)
    assert_no_console_errors(alice.page, bob.page, fresh.page)


def test_room_names_and_usernames_refuse_markup_and_show_it_back_as_text(chat_server, new_page):
    url = chat_server.url
    page = watch(register(new_page(), url, unique_name("carol")))
    rooms_before = page.get_by_role("navigation", name="Rooms").locator("[data-room]")
    names_before = [link.get_attribute("data-room") for link in rooms_before.all()]

    # The form: refused with a readable message; the field keeps what was typed, as text.
    # (The fields take 32 characters, so these payloads are short.)
    for payload in SHORT:
        page.get_by_label("New room").fill(payload)
        page.get_by_role("button", name="Create").click()
        expect(page.locator('#room-form [data-role="form-error"]')).to_contain_text(
            "Room name must be 3 to 32 characters"
        )
        expect(page.get_by_label("New room")).to_have_value(payload)
        # The field at fault keeps the focus and says what is wrong with it.
        expect(page.get_by_label("New room")).to_be_focused()
        expect(page.get_by_label("New room")).to_have_attribute("aria-invalid", "true")
        expect(page.get_by_label("New room")).to_have_accessible_description(
            re.compile("Room name must be")
        )
        assert_nothing_ran(page)
    # A script posting straight to the server gets the same answer for every payload.
    for payload in XSS:
        answer = page.request.post(
            f"{url}/chat/rooms", form={"name": payload}, headers=csrf_headers(page)
        )
        assert answer.status == 422, (payload, answer.status)
        assert "Room name must be" in answer.json()["error"]
    page.reload()
    rooms_after = page.get_by_role("navigation", name="Rooms").locator("[data-room]")
    assert [link.get_attribute("data-room") for link in rooms_after.all()] == names_before

    # A room name in the address: "no such room", the name shown as text.
    payload = "<img src=x onerror=window.__xss=1>"
    page.goto(f"{url}/chat/{quote(payload)}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"No room # {payload}")
    expect(page.locator(".chat-main")).to_contain_text(f"There is no room called “{payload}”")
    assert_nothing_ran(page)
    # A login link whose next page is markup: the hidden field keeps it as text.
    stranger = watch(new_page())
    stranger.goto(f"{url}/login?next={quote('/chat/general' + XSS[2])}")
    expect(stranger.locator('input[name="next"]')).to_have_value("/chat/general" + XSS[2])
    assert_nothing_ran(stranger)

    # Usernames: the register form refuses them and shows them back as text.
    stranger.goto(f"{url}/register")
    for payload in SHORT:
        fill_account_form(stranger, payload)
        stranger.get_by_role("button", name="Register").click()
        expect(stranger.get_by_role("alert")).to_contain_text("Username must be 3 to 32")
        expect(stranger.get_by_label("Username")).to_have_value(payload)
        assert_nothing_ran(stranger)
    token = stranger.locator('input[name="csrf_token"]').input_value()
    for payload in XSS:
        answer = stranger.request.post(
            f"{url}/register",
            form={"username": payload, "password": "correct horse battery", "csrf_token": token},
            max_redirects=0,
        )
        assert answer.status == 422, (payload, answer.status)
        assert "Username must be 3 to 32" in answer.text()
        if re.search(r"[<>\"']", payload):
            assert payload not in answer.text(), "the username came back as markup"
    # Nobody got in: the page still offers to log in.
    stranger.goto(f"{url}/chat")
    expect(stranger).to_have_url(re.compile(r"/login\?next="))
    assert_no_console_errors(page, stranger, allow=("status of 422", "status of 404"))
