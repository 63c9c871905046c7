"""The table page at phone and desktop width, in light and dark mode, and its strict CSP.

Screenshots of every combination are written to artifacts/screenshots/ for a person to look at.
"""

import pytest
from playwright.sync_api import expect

from .conftest import ARTIFACTS
from .pages import TablePage, add_rows_over_http, assert_no_console_errors

pytestmark = pytest.mark.browser

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}


def test_table_page_fits_phone_and_desktop_in_both_colour_modes(live_server, new_page):
    shots = ARTIFACTS / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    looks = [(size, scheme) for size in SIZES for scheme in ("light", "dark")]
    pages = []
    for size, scheme in looks:
        empty = TablePage.open(new_page(viewport=SIZES[size], color_scheme=scheme), live_server.url)
        expect(empty.page.get_by_text("No rows yet")).to_be_visible()
        empty.page.screenshot(path=shots / f"table-empty-{size}-{scheme}.png", full_page=True)
        pages.append(empty.page)

    add_rows_over_http(
        live_server.url, [(n, n * 111_111) for n in range(1, 8)] + [(-1_000_000_000, 999_999_999)]
    )
    for size, scheme in looks:
        page = new_page(viewport=SIZES[size], color_scheme=scheme)
        table = TablePage.open(page, live_server.url)
        table.wait_rows(8)
        table.add("x", 1)
        expect(table.form_error).to_be_visible()
        page.screenshot(path=shots / f"table-{size}-{scheme}.png", full_page=True)

        assert page.locator("html").get_attribute("data-bs-theme") == scheme
        # Nothing sticks out sideways: no horizontal scrolling of the page.
        assert page.evaluate("document.documentElement.scrollWidth") <= SIZES[size]["width"]
        for name in ("A", "B"):
            expect(page.get_by_label(name, exact=True)).to_be_visible()
        expect(page.get_by_role("button", name="Add Row")).to_be_in_viewport()
        # The navigation is always reachable: behind the menu button on a phone.
        table_link = page.get_by_role("navigation", name="Main").get_by_role(
            "link", name="Table", exact=True
        )
        if size == "phone":
            expect(table_link).to_be_hidden()
            page.get_by_role("button", name="Menu").click()
        expect(table_link).to_be_visible()
        expect(page.locator("#main-nav.collapsing")).to_have_count(0)
        page.screenshot(path=shots / f"nav-{size}-{scheme}.png")
        expect(page.locator("#connection-status")).to_be_in_viewport()
        pages.append(page)
    assert_no_console_errors(*pages, allow=("status of 422",))
