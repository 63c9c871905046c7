"""The message view in Chromium: grouping, day separators and times in the viewer's zone and
language, the "New messages" line, "Jump to latest", message actions on hover and focus, the
phone drawer, and text contrast in light and dark mode.

Fragments are the same for every viewer: all of this is the page's work (message-view.js,
message-scroll.js, chat.css). Screenshots go to artifacts/screenshots/ for a person to check.
"""

import re
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.engine import make_url

from ..e2e.clients import LiveSocket, logged_in
from .chat_fixtures import unique_name
from .chat_pages import ChatPage, register
from .conftest import ARTIFACTS
from .pages import assert_no_console_errors, open_live
from .test_table_access_browser import CONTRAST

pytestmark = pytest.mark.browser

JSON = {"Accept": "application/json", "HX-Request": None}  # as a script, not htmx
ZONE = "Asia/Kolkata"  # UTC+5:30: a time shown in UTC would not pass for local
SHOTS = ARTIFACTS / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def post(session, room: str, body: str) -> int:
    """Post as ``session``'s user; flood control's wait is waited out, as a client would."""
    for _ in range(3):
        answer = session.post(f"/chat/{room}/messages", {"body": body}, headers=JSON)
        if answer.status_code != 429:
            break
        time.sleep(answer.json()["retry_after"])
    assert answer.status_code in (200, 201), answer.text
    return answer.json()["id"]


def set_created(server, message_id: int, when: datetime) -> None:
    """Store ``when`` (aware) as the message's creation time, as SQLAlchemy writes it on SQLite."""
    path = make_url(server.env["DATABASE_URL"]).database
    with sqlite3.connect(path) as db:
        naive = when.astimezone(UTC).replace(tzinfo=None)
        db.execute(
            "UPDATE messages SET created_at = ? WHERE id = ?",
            (naive.strftime("%Y-%m-%d %H:%M:%S.%f"), message_id),
        )
    db.close()


def insert_messages(server, like_id: int, bodies_and_times) -> list[int]:
    """Store messages as the author and room of message ``like_id``, straight into the database
    (many, at once, with the times given); they show from the next page load on."""
    path = make_url(server.env["DATABASE_URL"]).database
    ids = []
    with sqlite3.connect(path) as db:
        room_id, author_id = db.execute(
            "SELECT room_id, author_id FROM messages WHERE id = ?", (like_id,)
        ).fetchone()
        for body, when in bodies_and_times:
            naive = when.astimezone(UTC).replace(tzinfo=None)
            cursor = db.execute(
                "INSERT INTO messages (room_id, author_id, body, created_at) VALUES (?, ?, ?, ?)",
                (room_id, author_id, body, naive.strftime("%Y-%m-%d %H:%M:%S.%f")),
            )
            ids.append(cursor.lastrowid)
    db.close()
    return ids


def delete(session, message_id: int) -> None:
    """The author deletes a message, over a socket of their own."""
    socket = LiveSocket(session).connect()
    try:
        ack = socket.client.call("chat:delete", {"id": message_id}, timeout=10)
        assert ack and ack.get("ok"), ack
    finally:
        socket.disconnect()


def talker_in_new_room(server, prefix: str = "view"):
    """Someone over HTTP in a new room of theirs, and the room's name."""
    name = unique_name("talker")
    talker = logged_in(server.url, name)
    room = unique_name(prefix)
    assert talker.post("/chat/rooms", {"name": room}).status_code == 201
    return talker, name, room


def view_items(page: Page) -> list[str]:
    """The message list as read top to bottom: day separators, the "New messages" line, and
    each message as "author: body", with "+" for one grouped under the author line above it."""
    return page.eval_on_selector_all(
        "#messages > *",
        """els => els.map(el => {
            if (el.dataset.role === "day-separator") return "day " + el.textContent.trim();
            if (el.dataset.role === "new-messages") return "new " + el.textContent.trim();
            const body = el.querySelector(".chat-body").textContent.trim();
            return (el.hasAttribute("data-continued") ? "+ " : el.dataset.author + ": ") + body;
        })""",
    )


def test_groups_day_separators_and_local_times_stay_right_live(chat_server, new_page):
    talker, name, room = talker_in_new_room(chat_server)
    zone = ZoneInfo(ZONE)
    now = datetime.now(UTC)
    # Three days ago at 10:00 and 10:02 UTC (15:30 and 15:32 in Kolkata), yesterday, and today:
    # a first message, one two minutes later (same group), one eight minutes after the first
    # (a new group: more than five minutes after its group's first message).
    old_day = (now - timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)
    plan = [
        ("three days ago", old_day),
        ("same group", old_day + timedelta(minutes=2)),
        ("yesterday", now - timedelta(days=1)),
        ("today first", now - timedelta(minutes=30)),
        ("today second", now - timedelta(minutes=28)),
        ("today later", now - timedelta(minutes=22)),
    ]
    ids = {}
    for body, when in plan:
        ids[body] = post(talker, room, body)
        set_created(chat_server, ids[body], when)

    page = register(
        new_page(timezone_id=ZONE, locale="en-GB"), chat_server.url, unique_name("viewer")
    )
    chat = ChatPage.open(page, chat_server.url, room)
    old_local = old_day.astimezone(zone)
    # "Saturday 5 December" (ICU puts a comma after the weekday in some versions).
    old_label = re.compile(rf"day {old_local:%A},? {old_local.day} {old_local:%B}$")
    items = view_items(page)
    assert old_label.match(items[0]), items
    assert items[1:] == [
        f"{name}: three days ago",
        "+ same group",
        "day Yesterday",
        f"{name}: yesterday",
        "day Today",
        f"{name}: today first",
        "+ today second",
        f"{name}: today later",
    ]
    # Times in the viewer's zone, 24-hour as en-GB writes them; the full date in the title.
    old = chat.message(ids["three days ago"]).locator("time")
    expect(old).to_have_text("15:30")
    expect(old).to_have_attribute(
        "title",
        re.compile(rf"^{old_local:%A},? {old_local.day} {old_local:%B %Y}.* 15:30:00 GMT\+5:30$"),
    )
    recent = chat.message(ids["today later"]).locator("time")
    expect(recent).to_have_text("22 min ago")
    # A grouped message shows no author line; its time appears on hover.
    grouped = chat.message(ids["same group"])
    expect(grouped.locator(".chat-author")).not_to_be_in_viewport()
    expect(grouped.locator("time")).to_have_css("opacity", "0")
    grouped.hover()
    expect(grouped.locator("time")).to_have_css("opacity", "1")
    expect(grouped.locator("time")).to_have_text("15:32")

    # Live: the talker's next message joins their group ("today later" was 22 minutes ago:
    # no), then one of the viewer's own starts a group, and the talker's next starts another.
    chat.send("mine")
    post(talker, room, "answer")
    post(talker, room, "answer again")
    expect(chat.messages).to_have_count(9)
    assert view_items(page)[-4:] == [
        f"{name}: today later",
        f"{chat.user}: mine",
        f"{name}: answer",
        "+ answer again",
    ]
    expect(chat.message_with("mine").locator("time")).to_have_text("Now")
    # Deleted: yesterday's only message takes its separator with it; the first message of a
    # group leaves the next one to carry the author line.
    delete(talker, ids["yesterday"])
    delete(talker, ids["three days ago"])
    expect(chat.messages).to_have_count(7)
    items = view_items(page)
    assert old_label.match(items[0]), items
    assert items[1:4] == [f"{name}: same group", "day Today", f"{name}: today first"]
    assert_no_console_errors(page)


def test_load_older_and_catch_up_keep_separators_and_groups(chat_server, new_page):
    talker, name, room = talker_in_new_room(chat_server)
    first = post(talker, room, "old 0")
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    set_created(chat_server, first, two_days_ago)
    # 55 messages within a minute: one group, more than the 50 a page shows.
    insert_messages(
        chat_server,
        first,
        [(f"old {n}", two_days_ago + timedelta(seconds=n)) for n in range(1, 55)],
    )
    page = register(
        new_page(timezone_id="UTC", locale="en-US"), chat_server.url, unique_name("viewer")
    )
    chat = ChatPage.open(page, chat_server.url, room)
    chat.wait_count(50)
    items = view_items(page)
    assert items[0].startswith("day ") and items[1] == f"{name}: old 5", items[:3]
    assert items[2:] == [f"+ old {n}" for n in range(6, 55)]
    # "Load older" prepends the rest: the separator and the author line move up to them.
    chat.messages.nth(10).scroll_into_view_if_needed()
    page.get_by_role("button", name="Load older").click()
    chat.wait_count(55)
    items = view_items(page)
    assert items[0].startswith("day ") and items[1] == f"{name}: old 0", items[:3]
    assert items[2:] == [f"+ old {n}" for n in range(1, 55)]
    # Offline, then back: the list is caught up; the view is rebuilt the same.
    page.context.set_offline(True)
    expect(page.locator("#connection-status")).not_to_have_attribute("data-state", "connected")
    post(talker, room, "while away")
    page.context.set_offline(False)
    chat.wait_count(56)
    assert view_items(page) == items + ["day Today", f"{name}: while away"]
    assert_no_console_errors(page, allow=("ERR_INTERNET_DISCONNECTED", "WebSocket"))


def test_new_messages_line_and_jump_to_latest(chat_server, new_page):
    talker, name, room = talker_in_new_room(chat_server)
    for number in range(3):
        post(talker, room, f"read {number}")
    page = register(
        new_page(viewport={"width": 1280, "height": 700}), chat_server.url, unique_name("viewer")
    )
    chat = ChatPage.open(page, chat_server.url, room)
    # Everything there when one first comes is not "new".
    expect(page.locator('[data-role="new-messages"]')).to_have_count(0)
    chat.send("my own")
    expect(chat.messages).to_have_count(4)
    # Away in another room, then back: the line is above the first message posted meanwhile.
    open_live(page, f"{chat_server.url}/chat/general")
    tall = "\n".join(f"line {n}" for n in range(8))
    for number in range(6):
        post(talker, room, f"unread {number}\n{tall}")
    # Back through the room list: only the chat part of the page changes.
    chat = ChatPage(page)
    chat.switch_to(room)
    chat.wait_joined()
    line = page.locator('[data-role="new-messages"]')
    expect(line).to_have_text("New messages")
    items = view_items(page)
    assert items[items.index("new New messages") + 1].startswith(f"{name}: unread 0")
    # More unread than fits: the view opens at the line, not at the bottom, and offers a way
    # down; reaching the bottom by hand takes it away.
    expect(line).to_be_in_viewport()
    expect(chat.messages.last).not_to_be_in_viewport()
    jump = page.get_by_role("button", name="Jump to latest")
    expect(jump).to_be_visible()
    page.eval_on_selector("#message-scroller", "el => { el.scrollTop = el.scrollHeight; }")
    expect(jump).to_be_hidden()
    page.eval_on_selector("#message-scroller", "el => { el.scrollTop = 0; }")
    # Scrolled up, something new arrives: "Jump to latest" appears and takes the view down.
    post(talker, room, "while scrolled up")
    expect(chat.messages).to_have_count(11)
    expect(jump).to_be_visible()
    expect(chat.message_with("while scrolled up")).not_to_be_in_viewport()
    jump.click()
    expect(chat.message_with("while scrolled up")).to_be_in_viewport()
    expect(jump).to_be_hidden()
    # At the bottom, the view follows what arrives, without the button.
    post(talker, room, "followed")
    expect(chat.message_with("followed")).to_be_in_viewport()
    expect(jump).to_be_hidden()
    # Scrolled up again, something arrives, then the reader scrolls down by hand: it goes.
    page.eval_on_selector("#message-scroller", "el => { el.scrollTop = 0; }")
    post(talker, room, "one more")
    expect(jump).to_be_visible()
    page.eval_on_selector("#message-scroller", "el => { el.scrollTop = el.scrollHeight; }")
    expect(jump).to_be_hidden()
    # One's own message always brings the view down.
    page.eval_on_selector("#message-scroller", "el => { el.scrollTop = 0; }")
    chat.send("mine brings me down")
    expect(chat.message_with("mine brings me down")).to_be_in_viewport()
    # From the keyboard: Jump to latest, then the composer has the focus.
    page.eval_on_selector("#message-scroller", "el => { el.scrollTop = 0; }")
    post(talker, room, "by keyboard")
    expect(jump).to_be_visible()
    jump.focus()
    page.keyboard.press("Enter")
    expect(chat.message_with("by keyboard")).to_be_in_viewport()
    expect(chat.composer).to_be_focused()
    # The line stays where it was while one reads.
    expect(line).to_have_count(1)
    assert_no_console_errors(page)


def test_a_short_conversation_sits_next_to_the_composer(chat_server, new_page):
    talker, _name, room = talker_in_new_room(chat_server)
    post(talker, room, "only one")
    page = register(new_page(), chat_server.url, unique_name("viewer"))
    chat = ChatPage.open(page, chat_server.url, room)
    message = chat.message_with("only one").bounding_box()
    composer = chat.composer.bounding_box()
    assert composer["y"] - (message["y"] + message["height"]) < 80


def test_actions_show_on_hover_and_focus_named_by_their_message(chat_server, new_page):
    talker, _name, room = talker_in_new_room(chat_server)
    post(talker, room, "not mine to edit")
    page = register(new_page(), chat_server.url, unique_name("viewer"))
    chat = ChatPage.open(page, chat_server.url, room)
    chat.send("Let us meet at the station at nine tomorrow morning, shall we?")
    own = chat.message_with("Let us meet at the station at nine tomorrow morning, shall we?")
    edit = own.get_by_role("button", name="Edit message: Let us meet at the station at nine…")
    delete = own.get_by_role("button", name="Delete message: Let us meet at the station at nine…")
    expect(edit).to_have_count(1)
    expect(delete).to_have_count(1)
    # Not mine: no actions at all.
    expect(chat.message_with("not mine to edit").get_by_role("button")).to_have_count(0)
    # Out of sight until the pointer is on the message...
    page.mouse.move(0, 0)
    actions = own.locator(".chat-actions")
    expect(actions).to_have_css("opacity", "0")
    own.hover()
    expect(actions).to_have_css("opacity", "1")
    # ...or the keyboard is in its actions: reachable with Tab from the message before.
    page.mouse.move(0, 0)
    chat.composer.focus()
    found = False
    for _ in range(12):
        page.keyboard.press("Shift+Tab")
        if page.evaluate("document.activeElement.dataset.action") == "edit":
            found = True
            break
    assert found, "Edit is not reachable with the keyboard"
    expect(edit).to_be_focused()
    expect(actions).to_have_css("opacity", "1")
    page.keyboard.press("Enter")
    expect(chat.composer).to_be_focused()
    expect(chat.composer).to_have_value(
        "Let us meet at the station at nine tomorrow morning, shall we?"
    )
    assert_no_console_errors(page)


def test_phone_rooms_drawer_and_touch_composer(chat_server, new_page):
    talker, _name, room = talker_in_new_room(chat_server, "phone")
    post(talker, room, "hello phone")
    page = register(
        new_page(viewport=PHONE, has_touch=True, is_mobile=True),
        chat_server.url,
        unique_name("viewer"),
    )
    chat = ChatPage.open(page, chat_server.url, room)
    rooms = page.get_by_role("navigation", name="Rooms")
    # The room list is not under the composer: it opens from the header.
    expect(rooms).to_be_hidden()
    expect(chat.composer).to_have_attribute("enterkeyhint", "send")
    expect(page.locator(".chat-hint")).to_be_hidden()
    open_button = page.get_by_role("button", name="Rooms")
    expect(open_button).to_be_in_viewport()
    open_button.click()
    expect(rooms).to_be_visible()
    expect(rooms).to_be_in_viewport()
    # Slid in (Bootstrap marks the drawer "showing" while it moves).
    expect(page.locator("#chat-rooms")).not_to_have_class(re.compile(r"\bshowing\b"))
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / "chat-view-drawer-phone.png")
    page.get_by_role("button", name="Close rooms").click()
    expect(rooms).to_be_hidden()
    # A room picked in the drawer: the drawer closes, the room opens, nothing is left over it.
    open_button.click()
    rooms.locator('[data-room="general"]').click()
    expect(page.locator("#chat-page")).to_have_attribute("data-room", "general")
    expect(page.locator(".offcanvas-backdrop")).to_have_count(0)
    expect(rooms).to_be_hidden()
    chat.wait_joined()
    ChatPage(page).send("typed on a phone")
    mine = ChatPage(page).message_with("typed on a phone")
    expect(mine).to_be_in_viewport()
    # No hover on a touch screen: one's own message shows its actions.
    expect(mine.locator(".chat-actions")).to_have_css("opacity", "1")
    expect(mine.get_by_role("button", name="Edit message: typed on a phone")).to_be_in_viewport()
    page.screenshot(path=SHOTS / "chat-view-touch-phone.png")
    # The page of a room that does not exist has the same drawer.
    page.goto(f"{chat_server.url}/chat/{unique_name('nosuch')}")
    expect(rooms).to_be_hidden()
    page.get_by_role("button", name="Rooms").click()
    expect(rooms.locator('[data-room="general"]')).to_be_in_viewport()
    assert_no_console_errors(page, allow=("404 (NOT FOUND)",))


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_view_contrast_and_screenshots(chat_server, new_page, scheme):
    talker, _name, room = talker_in_new_room(chat_server, "looks")
    now = datetime.now(UTC)
    for body, ago in [
        (
            "Release notes for Tuesday:\n- faster search\n- fewer emails\n- dark mode",
            timedelta(days=2),
        ),
        (
            "Plan for the week:\n1. tests\n2. docs\n3. the demo on Friday",
            timedelta(days=1, hours=2),
        ),
        ("Morning! Did the deploy go through?", timedelta(days=1, minutes=5)),
        ("It did, after one retry.", timedelta(days=1, minutes=4)),
        ("Anyone up for lunch at noon?", timedelta(minutes=50)),
    ]:
        set_created(chat_server, post(talker, room, body), now - ago)
    viewer = register(new_page(), chat_server.url, unique_name("viewer"))
    mine = ChatPage.open(viewer, chat_server.url, room)
    mine.send("Count me in. Where?")
    mine.send("Any time after twelve works for me.")
    mine.wait_count(7)
    state = viewer.context.storage_state()
    open_live(viewer, f"{chat_server.url}/chat/general")
    post(talker, room, "The usual place, **by the river**.")
    post(talker, room, "I booked a table for six.")
    SHOTS.mkdir(parents=True, exist_ok=True)
    for size, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        page = new_page(storage_state=state, viewport=viewport, color_scheme=scheme)
        chat = ChatPage.open(page, chat_server.url, room)
        expect(page.locator('[data-role="new-messages"]')).to_be_visible()
        assert page.locator("html").get_attribute("data-bs-theme") == scheme
        # One's own second message, grouped: its time and actions show on hover.
        own = chat.message_with("Any time after twelve works for me.")
        expect(own).to_have_attribute("data-continued", "")
        own.hover()
        page.screenshot(path=SHOTS / f"chat-view-{size}-{scheme}.png")
        page.evaluate("Promise.all(document.getAnimations().map((a) => a.finished))")
        measured = page.evaluate(CONTRAST, page.locator("#main").element_handle())
        texts = {m["text"] for m in measured}
        assert {"New messages", "Today", "Yesterday", "Edit", "Delete"} <= texts, texts
        too_low = [m for m in measured if m["ratio"] < m["needed"]]
        assert too_low == [], "\n".join(map(str, too_low))
        # "Jump to latest" over the messages.
        page.eval_on_selector("#message-scroller", "el => { el.scrollTop = 0; }")
        post(talker, room, f"something new for {size}")
        jump = page.get_by_role("button", name="Jump to latest")
        expect(jump).to_be_visible()
        measured = page.evaluate(CONTRAST, jump.element_handle())
        assert all(m["ratio"] >= m["needed"] for m in measured), measured
        page.screenshot(path=SHOTS / f"chat-view-jump-{size}-{scheme}.png")
        assert_no_console_errors(page)
