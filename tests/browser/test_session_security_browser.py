"""Cookies and security headers as Chromium sees them, and a logout that reaches the user's other
browser: its open room page reloads and asks for a login."""

import re

import pytest
from playwright.sync_api import expect

from .chat_pages import ChatPage, log_in, register
from .pages import TablePage, assert_no_console_errors, open_live

pytestmark = pytest.mark.browser


def session_cookie(page):
    [cookie] = [c for c in page.context.cookies() if c["name"] == "session"]
    return cookie


def test_cookies_and_headers_in_the_browser(new_page, live_server):
    page = new_page()
    response = page.goto(live_server.url + "/")
    headers = response.all_headers()
    policy = headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"

    anonymous = session_cookie(page)
    assert anonymous["httpOnly"] is True and anonymous["sameSite"] == "Lax"
    assert anonymous["secure"] is False  # plain HTTP here; see tests/test_security_sessions.py
    # HttpOnly in practice: the page's scripts cannot read it.
    assert "session=" not in page.evaluate("document.cookie")

    register(page, live_server.url, "alice")
    logged_in = session_cookie(page)
    assert logged_in["value"] != anonymous["value"]  # a fresh session on login
    assert logged_in["httpOnly"] is True and logged_in["sameSite"] == "Lax"
    assert "session=" not in page.evaluate("document.cookie")
    # No remember-me cookie: the device cookie only says that this browser logged in as alice
    # before (webapp/auth/devices.py), which logs nobody in (tests/test_security_sessions.py).
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert sorted(cookies) == ["login_device", "session"]
    assert cookies["login_device"]["httpOnly"] is True
    assert "login_device=" not in page.evaluate("document.cookie")

    # frame-ancestors 'none': another page cannot frame the app.
    framer = new_page()
    framer.goto(live_server.url + "/healthz")
    framer.set_content(f'<iframe id="app" src="{live_server.url}/"></iframe>')
    frame = framer.frame_locator("#app")
    framer.wait_for_timeout(1000)
    assert frame.locator("#add-row-form").count() == 0
    assert_no_console_errors(page)


def test_a_logout_reloads_the_users_room_page_in_another_browser(new_page, live_server):
    laptop = register(new_page(), live_server.url, "alice")
    phone = new_page()
    phone.goto(live_server.url + "/login")
    log_in(phone, "alice")
    room = ChatPage.open(phone, live_server.url, "general")
    assert room.user == "alice"

    open_live(laptop, live_server.url + "/")
    laptop.get_by_role("button", name="Log out").click()
    expect(laptop.get_by_text("You are logged out.")).to_be_visible()

    # The phone's socket was closed by the server: the page reloads, which now asks for a login.
    expect(phone).to_have_url(re.compile(r"/login\?next=/chat/general"), timeout=15_000)
    expect(phone.get_by_role("button", name="Log in")).to_be_visible()


def test_a_row_over_the_rate_limit_shows_why_and_when_to_try_again(new_page, start_server):
    server = start_server(RATELIMIT_ROWS_PER_CLIENT="2 per minute")
    table = TablePage.open(new_page(), server.url)
    table.add(1, 2)
    table.add(3, 4)
    table.wait_rows(2)
    table.add(5, 6)
    feedback = table.page.locator("#add-row-feedback [role=alert]")
    expect(feedback).to_have_text(re.compile(r"Too many rows added\. Try again in \d+ seconds?\."))
    table.wait_rows(2)
    # The refusal is an answer the page expects, not an error in its console.
    assert_no_console_errors(table.page, allow=("429",))
