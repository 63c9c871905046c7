"""What a person sees and does on the app's pages, for the browser tests."""

import re

from playwright.sync_api import Page, expect

from ..e2e.clients import BrowserSession


def open_live(page: Page, url: str) -> Page:
    """Load ``url`` and wait until the page's socket is connected and it has caught up."""
    page.goto(url)
    wait_live(page)
    return page


def wait_live(page: Page) -> None:
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected")


def assert_no_console_errors(*pages: Page, allow: tuple[str, ...] = ()) -> None:
    """No page logged an error, except ones containing an ``allow`` text (a 422, say)."""
    for page in pages:
        errors = [e for e in page.console.errors if not any(text in e for text in allow)]
        assert errors == [], "\n".join(page.console.lines)


class TablePage:
    """The live table page (``/``)."""

    def __init__(self, page: Page):
        self.page = page
        self.rows = page.locator("#rows > tr")
        self.form_error = page.locator('#add-row-feedback [data-role="form-error"]')

    @classmethod
    def open(cls, page: Page, base_url: str) -> "TablePage":
        open_live(page, base_url + "/")
        return cls(page)

    def add(self, a, b) -> None:
        """Type A and B and press Add Row (as a person would, with the keyboard for B)."""
        self.page.get_by_label("A", exact=True).fill(str(a))
        self.page.get_by_label("B", exact=True).fill(str(b))
        with self.page.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith("/table/rows")
        ):
            self.page.get_by_role("button", name="Add Row").click()

    def row(self, row_id: int):
        return self.page.locator(f"#row-{row_id}")

    def delete(self, row_id: int) -> None:
        # Named by what the row shows ("Delete row 3 + 4 = 7"), not by its id.
        self.row(row_id).get_by_role("button", name=re.compile(r"^Delete row ")).click()

    def wait_rows(self, count: int) -> None:
        expect(self.rows).to_have_count(count)

    def snapshot(self) -> dict:
        """Row ids with their cells, and the footer: what a person reads off the table."""
        rows = self.page.eval_on_selector_all(
            "#rows > tr",
            "trs => trs.map(tr => [Number(tr.dataset.id),"
            " ...Array.from(tr.querySelectorAll('td')).slice(0, 3).map(td => td.textContent.trim())])",
        )
        footer = self.page.locator("#table-footer")
        return {
            "rows": [tuple(row) for row in rows],
            "count": footer.locator('[data-role="row-count"]').inner_text(),
            "total": footer.locator('[data-role="sum-total"]').inner_text(),
        }

    def footer_text(self) -> str:
        return re.sub(r"\s+", " ", self.page.locator("#table-footer").inner_text()).strip()


def add_rows_over_http(base_url: str, pairs) -> list[int]:
    """Add rows quickly through the public HTTP API, as a script would; their ids."""
    session = BrowserSession(base_url)
    ids = []
    for a, b in pairs:
        response = session.post(
            "/table/rows",
            {"a": str(a), "b": str(b)},
            headers={"Accept": "application/json", "HX-Request": ""},
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def stored_row_ids(base_url: str) -> list[int]:
    """The ids of every row in the database, read through the CSV export."""
    lines = BrowserSession(base_url).http.get(base_url + "/table/rows.csv", timeout=10).text
    return [int(line.split(",", 1)[0]) for line in lines.splitlines()[1:] if line]


def set_hidden(page: Page, hidden: bool = True) -> None:
    """Make the page report itself hidden (or visible again), as a tab put in the background.

    Headless Chromium reports every page as visible, so the document is told directly and
    gets the ``visibilitychange`` event a real tab switch would fire.
    """
    page.evaluate(
        """hidden => {
            const state = hidden ? "hidden" : "visible";
            Object.defineProperty(document, "visibilityState", {configurable: true, get: () => state});
            Object.defineProperty(document, "hidden", {configurable: true, get: () => hidden});
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        hidden,
    )
