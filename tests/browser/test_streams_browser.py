"""Numbered streams in a real browser (static/js/streams.js): a page that misses an event the
server sent repairs the gap at once from GET /events, without a reconnect or a reload, and a
page whose socket was down catches up by replaying its stream's events (edits and deletions
too) instead of fetching its whole window again.

An event is made to go missing on its way: the page's socket runs through Playwright's
WebSocket routing, which forwards every frame between the server and the page except the one
event a test leaves out. The server sent it and counts it as delivered; only this page lacks it.
"""

import json
import re
import time

import pytest
from playwright.sync_api import expect

from .chat_fixtures import unique_name
from .chat_pages import ChatPage, mark_document, register, same_document
from .pages import TablePage, add_rows_over_http, assert_no_console_errors

pytestmark = pytest.mark.browser

HEAD_TIMEOUT_MS = 15_000  # stream:head comes a few seconds after a stream's last event


def socket_event(frame) -> tuple[str, dict] | None:
    """The (name, data) of a Socket.IO event frame (Engine.IO "4", Socket.IO EVENT "2")."""
    if not isinstance(frame, str):
        return None
    match = re.match(r"42\d*(\[.*)", frame, re.DOTALL)
    if not match:
        return None
    name, *args = json.loads(match[1])
    return name, (args[0] if args and isinstance(args[0], dict) else {})


def leave_out(page, which, heads: bool = True) -> list:
    """Route the page's socket so that the first server event ``which(name, data)`` accepts
    never reaches it; returns the list that holds the frame once it was left out. Without
    ``heads`` no stream:head reaches the page either, so that only the next event can show it
    the gap."""
    left_out = []

    def route(ws):
        server = ws.connect_to_server()

        def from_server(frame):
            event = socket_event(frame)
            if event and not heads and event[0] == "stream:head":
                return
            if not left_out and event and which(*event):
                left_out.append(frame)
                return
            ws.send(frame)

        server.on_message(from_server)  # the page's own frames still go to the server as sent

    page.route_web_socket(re.compile(r"/socket\.io/"), route)
    return left_out


def watch(page) -> list[str]:
    """Count the page's socket connects (window.__connects) and record the URLs it fetches."""
    urls = []
    page.on("request", lambda request: urls.append(request.url))
    page.evaluate(
        "window.__connects = 0;"
        " window.realtime.socket.on('connect', () => { window.__connects += 1; })"
    )
    mark_document(page)
    return urls


def wait_for(page, condition, timeout: float = 10.0) -> None:
    """Wait for ``condition()``, letting Playwright run the page's routes meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(50)


def events_fetched(urls: list[str], stream: str) -> list[str]:
    return [
        url for url in urls if "/events?" in url and f"stream={stream}" in url.replace("%3A", ":")
    ]


def shown_seq(page, selector: str) -> int:
    return int(page.locator(selector).get_attribute("data-seq"))


def test_a_page_repairs_a_gap_at_once_without_a_reconnect(live_server, new_page):
    url = live_server.url
    add_rows_over_http(url, [(1, 1)])
    page = new_page()
    left_out = leave_out(
        page, lambda name, data: name == "table:row" and data.get("id") == 2, heads=False
    )
    table = TablePage.open(page, url)
    table.wait_rows(1)
    expect(page.locator("#rows")).to_have_attribute("data-stream", "table")
    urls = watch(page)
    seq = shown_seq(page, "#rows")

    add_rows_over_http(url, [(2, 2)])
    wait_for(page, lambda: left_out)
    assert table.row(2).count() == 0, "row 2 reached the page: the test proves nothing"

    # The next event is one further than the page expects: the page fetches the one between.
    add_rows_over_http(url, [(3, 3)])
    sent = time.monotonic()
    expect(table.row(2)).to_have_count(1)
    print(f"\nthe gap was repaired {time.monotonic() - sent:.2f} s after the next event was sent")
    table.wait_rows(3)
    assert [row[0] for row in table.snapshot()["rows"]] == [3, 2, 1]
    assert events_fetched(urls, "table"), "the gap was not fetched from /events"
    assert f"after_seq={seq}" in events_fetched(urls, "table")[0]
    assert page.evaluate("window.__connects") == 0, "the page reconnected"
    assert same_document(page), "the page reloaded"
    expect(page.locator("#rows")).to_have_attribute("data-seq", str(seq + 2))
    fresh = TablePage.open(new_page(), url)
    assert table.snapshot() == fresh.snapshot()
    assert_no_console_errors(page, fresh.page)


def test_stream_head_reveals_a_lost_last_event(live_server, new_page):
    url = live_server.url
    page = new_page()
    left_out = leave_out(page, lambda name, data: name == "table:row" and data.get("id") == 1)
    table = TablePage.open(page, url)
    urls = watch(page)

    add_rows_over_http(url, [(5, 5)])  # no event follows it: only stream:head tells
    wait_for(page, lambda: left_out)
    expect(table.row(1)).to_have_count(1, timeout=HEAD_TIMEOUT_MS)
    expect(table.row(1)).to_contain_text("10")
    assert events_fetched(urls, "table")
    assert page.evaluate("window.__connects") == 0, "the page reconnected"
    assert same_document(page), "the page reloaded"
    assert_no_console_errors(page)


def test_a_reconnect_replays_the_stream_instead_of_fetching_the_window(live_server, new_page):
    url = live_server.url
    add_rows_over_http(url, [(1, 1), (2, 2), (3, 3), (4, 4)])
    away = TablePage.open(new_page(), url)
    here = TablePage.open(new_page(), url)
    away.wait_rows(4)
    urls = watch(away.page)
    seq = shown_seq(away.page, "#rows")

    away.page.context.set_offline(True)
    expect(away.page.locator("#connection-status")).not_to_have_attribute("data-state", "connected")
    add_rows_over_http(url, [(10, 20), (30, 40)])  # rows 5 and 6
    for row_id in (2, 5):
        here.delete(row_id)
        expect(here.row(row_id)).to_have_count(0)
    expect(away.row(2)).to_have_count(1)

    away.page.context.set_offline(False)
    expect(away.row(2)).to_have_count(0)
    expect(away.row(6)).to_have_count(1)
    away.wait_rows(4)
    fresh = TablePage.open(new_page(), url)
    assert away.snapshot() == fresh.snapshot() == here.snapshot()
    assert [row[0] for row in away.snapshot()["rows"]] == [6, 4, 3, 1]
    replays = events_fetched(urls, "table")
    assert replays and f"after_seq={seq}" in replays[0], urls
    assert not [u for u in urls if "/table/rows?after=" in u], "the window was fetched again"
    assert same_document(away.page)
    expect(away.page.locator("#rows")).to_have_attribute("data-seq", str(seq + 4))
    assert all("WebSocket connection" in error for error in away.page.console.errors)
    assert_no_console_errors(here.page, fresh.page)


def test_a_room_repairs_a_lost_message_and_replays_edits_and_deletions(chat_server, new_page):
    url = chat_server.url
    ann_name, bob_name = unique_name("ann"), unique_name("bob")
    room = "general"
    ann = ChatPage.open(register(new_page(), url, ann_name), url, room)
    for text in ("one", "two", "three"):
        ann.send(text)
        expect(ann.message_with(text)).to_have_count(1)

    page = register(new_page(), url, bob_name)
    left_out = leave_out(
        page, lambda name, data: name == "chat:message" and data.get("body") == "lost", heads=False
    )
    bob = ChatPage.open(page, url, room)
    expect(page.locator("#messages")).to_have_attribute("data-stream", f"room:{room}")
    urls = watch(page)

    # A message the page never gets, then one that shows the gap.
    ann.send("lost")
    wait_for(page, lambda: left_out)
    assert bob.message_with("lost").count() == 0, "the message reached the page anyway"
    ann.send("after")
    expect(bob.message_with("lost")).to_have_count(1)
    expect(bob.message_with("after")).to_have_count(1)
    assert bob.bodies()[-2:] == ["lost", "after"]
    assert events_fetched(urls, f"room:{room}")
    assert page.evaluate("window.__connects") == 0, "the page reconnected"

    # Offline, ann edits one message and deletes another: the reconnect replays both.
    page.context.set_offline(True)
    expect(page.locator("#connection-status")).not_to_have_attribute("data-state", "connected")
    ann.edit(ann.id_of("two"), "two, edited")
    expect(ann.message_with("two, edited")).to_have_count(1)
    deleted = ann.id_of("three")
    ann.delete(deleted)
    expect(ann.message(deleted)).to_have_count(0)
    ann.send("while away")
    expect(ann.message_with("while away")).to_have_count(1)
    fetched_before = len(events_fetched(urls, f"room:{room}"))

    page.context.set_offline(False)
    expect(bob.message_with("two, edited")).to_have_count(1)
    expect(bob.message(deleted)).to_have_count(0)
    expect(bob.message_with("while away")).to_have_count(1)
    assert len(events_fetched(urls, f"room:{room}")) > fetched_before
    assert not [u for u in urls if "/messages?after=" in u], "the window was fetched again"
    assert same_document(page)
    fresh = ChatPage.open(register(new_page(), url, unique_name("cy")), url, room)
    assert [row[1:3] for row in bob.snapshot()] == [row[1:3] for row in fresh.snapshot()]
    assert [row[3] for row in bob.snapshot()] == [row[3] for row in fresh.snapshot()]
    assert all("WebSocket connection" in error for error in page.console.errors)
    assert_no_console_errors(ann.page, fresh.page)


def test_a_page_further_behind_than_the_server_keeps_reloads(start_server, new_page):
    # Events older than a second are no longer answered: GET /events says 410.
    server = start_server(OUTBOX_RETENTION_SECONDS="1")
    add_rows_over_http(server.url, [(1, 1)])
    table = TablePage.open(new_page(), server.url)
    table.wait_rows(1)
    urls = watch(table.page)

    table.page.context.set_offline(True)
    expect(table.page.locator("#connection-status")).not_to_have_attribute(
        "data-state", "connected"
    )
    add_rows_over_http(server.url, [(2, 2)])
    table.page.wait_for_timeout(1500)  # row 2's event is now older than the server keeps
    table.page.context.set_offline(False)

    expect(table.row(2)).to_have_count(1)
    assert not same_document(table.page), "the page did not reload"
    assert events_fetched(urls, "table"), "the page did not ask /events first"
    table.wait_rows(2)
    fresh = TablePage.open(new_page(), server.url)
    assert table.snapshot() == fresh.snapshot()
    assert_no_console_errors(fresh.page)
