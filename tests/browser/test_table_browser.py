"""The live table in a real browser: two people, bad input, a lost connection, paging."""

import re

import pytest
from playwright.sync_api import expect

from .pages import (
    TablePage,
    add_rows_over_http,
    assert_no_console_errors,
    stored_row_ids,
    wait_live,
)

pytestmark = pytest.mark.browser


def test_a_row_added_in_one_browser_appears_in_the_other_and_a_delete_in_both(
    live_server, new_page
):
    alice = TablePage.open(new_page(), live_server.url)
    bob = TablePage.open(new_page(), live_server.url)
    expect(alice.page.get_by_text("No rows yet")).to_be_visible()

    alice.add(19, 23)
    alice.add(-5, 2)
    for page in (alice, bob):
        page.wait_rows(2)
        expect(page.row(1)).to_contain_text("42")
        expect(page.row(2)).to_contain_text("-3")
        expect(page.page.get_by_text("No rows yet")).to_be_hidden()
        assert page.snapshot() == {
            "rows": [(2, "-5", "2", "-3"), (1, "19", "23", "42")],
            "count": "2",
            "total": "39",
        }
    # Under gunicorn (production) there is no development reload script.
    expect(alice.page.locator("script[data-boot-id]")).to_have_count(0)
    # Neither page was reloaded: the row arrived over the socket.
    assert alice.page.evaluate("performance.getEntriesByType('navigation').length") == 1

    bob.delete(1)
    for page in (alice, bob):
        page.wait_rows(1)
        expect(page.row(1)).to_have_count(0)
        expect(page.page.locator('[data-role="sum-total"]')).to_have_text("-3")
        expect(page.page.locator('[data-role="row-count"]')).to_have_text("1")
    assert stored_row_ids(live_server.url) == [2]
    assert_no_console_errors(alice.page, bob.page)


def test_quick_picks_then_focus_back_on_a_with_its_text_selected(live_server, new_page):
    table = TablePage.open(new_page(), live_server.url)
    page = table.page
    page.get_by_role("toolbar", name="Quick picks for A").get_by_role("button", name="7").click()
    page.get_by_role("toolbar", name="Quick picks for B").get_by_role("button", name="8").click()
    expect(page.get_by_label("A", exact=True)).to_have_value("7")
    expect(page.get_by_label("B", exact=True)).to_have_value("8")
    picked = page.get_by_role("toolbar", name="Quick picks for B").get_by_role("button", name="8")
    expect(picked).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Add Row").click()
    table.wait_rows(1)
    expect(table.row(1)).to_contain_text("15")
    expect(table.page.locator("#input-a")).to_be_focused()
    assert (
        table.page.evaluate(
            "(() => { const a = document.getElementById('input-a');"
            " return a.value.slice(a.selectionStart, a.selectionEnd); })()"
        )
        == "7"
    )
    # Typing now replaces A: the next row is one key and Enter away.
    table.page.keyboard.type("3")
    table.page.keyboard.press("Enter")
    table.wait_rows(2)
    expect(table.row(2)).to_contain_text("11")
    assert_no_console_errors(table.page)


def test_a_bad_entry_shows_a_readable_error_and_adds_nothing(live_server, new_page):
    TablePage.open(new_page(), live_server.url).add(1, 1)
    alice = TablePage.open(new_page(), live_server.url)
    bob = TablePage.open(new_page(), live_server.url)
    for a, b, message in [
        ("abc", "1", "A must be a whole number"),
        ("1", "2000000000", "B must be between"),
    ]:
        alice.add(a, b)
        expect(alice.form_error).to_contain_text(message)
        # The message sits next to the form and is announced.
        expect(alice.page.locator("#add-row-form").get_by_role("alert")).to_contain_text(message)
        # The field at fault is marked and has the focus, its text selected for retyping.
        wrong = alice.page.locator(f"#input-{message[0].lower()}")
        expect(wrong).to_be_focused()
        expect(wrong).to_have_attribute("aria-invalid", "true")
        expect(wrong).to_have_accessible_description(re.compile(re.escape(message)))
        alice.wait_rows(1)
        bob.wait_rows(1)
        assert stored_row_ids(live_server.url) == [1]

    # The next good entry clears the error.
    alice.add(2, 3)
    expect(alice.form_error).to_have_count(0)
    expect(alice.page.locator("[aria-invalid]")).to_have_count(0)
    bob.wait_rows(2)
    # The browser logs the 422 answers itself as failed resources; nothing else may be logged.
    assert_no_console_errors(alice.page, bob.page, allow=("status of 422",))


def test_a_page_that_was_offline_shows_what_a_fresh_load_shows(live_server, new_page):
    add_rows_over_http(live_server.url, [(1, 1), (2, 2), (3, 3), (4, 4)])
    away = TablePage.open(new_page(), live_server.url)
    here = TablePage.open(new_page(), live_server.url)
    away.wait_rows(4)

    away.page.context.set_offline(True)
    expect(away.page.locator("#connection-status")).not_to_have_attribute("data-state", "connected")
    here.add(10, 20)
    here.delete(2)
    here.add(30, 40)
    here.delete(5)
    here.wait_rows(4)
    # While offline the page still shows the old rows.
    expect(away.row(2)).to_have_count(1)

    away.page.context.set_offline(False)
    fresh = TablePage.open(new_page(), live_server.url)
    expect(away.row(2)).to_have_count(0)
    expect(away.row(6)).to_have_count(1)
    away.wait_rows(4)
    assert away.snapshot() == fresh.snapshot() == here.snapshot()
    assert [row[0] for row in fresh.snapshot()["rows"]] == [6, 4, 3, 1]
    # Only the socket's own connection failures may be logged while the network was down.
    assert all("WebSocket connection" in error for error in away.page.console.errors)
    assert_no_console_errors(here.page, fresh.page)


def test_load_older_pages_back_through_a_long_table(live_server, new_page):
    ids = add_rows_over_http(live_server.url, [(n, 1) for n in range(1, 121)])
    table = TablePage.open(new_page(), live_server.url)
    table.wait_rows(50)
    older = table.page.get_by_role("button", name="Load older")
    older.click()
    table.wait_rows(100)
    older.click()
    table.wait_rows(120)
    expect(older).to_have_count(0)
    shown = [row[0] for row in table.snapshot()["rows"]]
    assert shown == sorted(ids, reverse=True)
    assert table.snapshot()["total"] == str(sum(n + 1 for n in range(1, 121)))

    # A row added now still goes on top of the long list.
    table.add(1000, 1)
    table.wait_rows(121)
    expect(table.rows.first).to_contain_text("1001")
    assert_no_console_errors(table.page)


def test_a_row_added_offline_waits_visibly_and_is_stored_once_when_back(live_server, new_page):
    watcher = TablePage.open(new_page(), live_server.url)
    table = TablePage.open(new_page(), live_server.url)
    page = table.page
    pending = page.locator('[data-role="pending"]')
    expect(pending).to_be_hidden()

    page.context.set_offline(True)
    expect(page.locator("#connection-status")).not_to_have_attribute("data-state", "connected")
    for a, b in [(3, 4), (5, 6)]:
        page.get_by_label("A", exact=True).fill(str(a))
        page.get_by_label("B", exact=True).fill(str(b))
        page.get_by_role("button", name="Add Row").click()
        # Ready for the next row, as when online.
        expect(page.get_by_label("A", exact=True)).to_be_focused()
    expect(pending).to_be_visible()
    expect(pending).to_have_text("2 rows waiting to be sent… (3 + 4, 5 + 6)")
    expect(pending).to_have_role("status")
    assert stored_row_ids(live_server.url) == []
    table.wait_rows(0)

    page.context.set_offline(False)
    for each in (table, watcher):
        each.wait_rows(2)
        assert [row[1:] for row in each.snapshot()["rows"]] == [("5", "6", "11"), ("3", "4", "7")]
    expect(pending).to_be_hidden()
    expect(table.page.locator('[data-role="form-ok"]')).to_have_text("Added 5 + 6 = 11.")
    assert stored_row_ids(live_server.url) == [1, 2]
    fresh = TablePage.open(new_page(), live_server.url)
    assert fresh.snapshot() == table.snapshot() == watcher.snapshot()
    # Only the socket's own connection failures may be logged while the network was down.
    assert all("WebSocket connection" in error for error in page.console.errors)
    assert_no_console_errors(watcher.page, fresh.page)


def test_a_row_whose_answer_was_lost_is_sent_again_and_stored_once(live_server, new_page):
    """The POST reached the server and stored the row, but its answer never came back: the
    page sends the row again under the same client_id and the server stores nothing new."""
    table = TablePage.open(new_page(), live_server.url)
    page = table.page
    sent = []

    def lose_the_first_answer(route):
        sent.append(route.request.post_data)
        if len(sent) == 1:
            route.fetch()  # the server gets it and answers; the browser sees the connection drop
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/table/rows", lose_the_first_answer)
    page.get_by_label("A", exact=True).fill("8")
    page.get_by_label("B", exact=True).fill("9")
    page.get_by_role("button", name="Add Row").click()
    expect(page.locator('[data-role="form-ok"]')).to_have_text("Added 8 + 9 = 17.")
    table.wait_rows(1)
    expect(page.locator('[data-role="pending"]')).to_be_hidden()
    assert stored_row_ids(live_server.url) == [1]
    assert len(sent) == 2
    [first_id, again_id] = [re.search(r"client_id=([0-9a-f-]{36})", body).group(1) for body in sent]
    assert first_id == again_id
    # The lost answer is all that may be logged (htmx logs its own error events).
    assert_no_console_errors(
        page, allow=("ERR_CONNECTION_RESET", "htmx:afterRequest", "htmx:sendError")
    )


def test_rows_waiting_to_be_sent_survive_a_reload_of_the_page(live_server, new_page):
    table = TablePage.open(new_page(), live_server.url)
    page = table.page
    pending = page.locator('[data-role="pending"]')

    def no_network(route):
        route.abort("internetdisconnected")

    # The socket stays up; only the POSTs fail, as on a flaky network.
    page.route(
        "**/table/rows",
        lambda route: no_network(route) if route.request.method == "POST" else route.continue_(),
    )
    page.get_by_label("A", exact=True).fill("21")
    page.get_by_label("B", exact=True).fill("\u22121")
    page.get_by_role("button", name="Add Row").click()
    expect(pending).to_have_text("1 row waiting to be sent… (21 + \u22121)")

    page.reload()
    wait_live(page)
    expect(pending).to_have_text("1 row waiting to be sent… (21 + \u22121)")
    assert stored_row_ids(live_server.url) == []
    page.unroute("**/table/rows")
    table.wait_rows(1)
    expect(pending).to_be_hidden()
    expect(table.row(1)).to_contain_text("20")
    assert stored_row_ids(live_server.url) == [1]
    assert_no_console_errors(
        page, allow=("ERR_INTERNET_DISCONNECTED", "htmx:afterRequest", "htmx:sendError")
    )
