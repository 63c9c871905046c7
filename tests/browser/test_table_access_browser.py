"""The table page with the keyboard alone, its accessible names, and its text contrast in light
and dark mode, in Chromium against gunicorn."""

import pytest
from playwright.sync_api import expect

from .pages import TablePage, add_rows_over_http, assert_no_console_errors, stored_row_ids

pytestmark = pytest.mark.browser


def focused(page) -> str:
    """What has the keyboard focus: an input's label text, or a button's group and name."""
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            if (el.labels && el.labels.length) return el.labels[0].textContent.trim();
            const group = el.closest("[role=toolbar]");
            const name = el.getAttribute("aria-label") || el.textContent.trim();
            return group ? group.getAttribute("aria-label") + ": " + name : name;
        }"""
    )


def test_keyboard_only_tab_stops_and_arrow_keys(live_server, new_page):
    table = TablePage.open(new_page(), live_server.url)
    page, keyboard = table.page, table.page.keyboard
    page.get_by_label("A", exact=True).focus()

    # One Tab from A to B; each group of quick picks is one stop, the pressed pick (A and B
    # start at 1); then Add Row.
    stops = []
    for _ in range(4):
        keyboard.press("Tab")
        stops.append(focused(page))
    assert stops == ["B", "Quick picks for A: 1", "Quick picks for B: 1", "Add Row"]
    for _ in range(4):
        keyboard.press("Shift+Tab")
    assert focused(page) == "A"

    # The arrow keys move within a group (two rows of five); Enter or Space picks.
    keyboard.press("Tab")
    keyboard.press("Tab")
    for key, expected in [
        ("ArrowRight", "2"),
        ("ArrowRight", "3"),
        ("ArrowDown", "8"),
        ("ArrowLeft", "7"),
        ("ArrowUp", "2"),
        ("End", "10"),
        ("ArrowRight", "10"),
        ("Home", "1"),
        ("ArrowDown", "6"),
    ]:
        keyboard.press(key)
        assert focused(page) == f"Quick picks for A: {expected}", key
    keyboard.press("Enter")
    expect(page.get_by_label("A", exact=True)).to_have_value("6")
    picks = page.get_by_role("toolbar", name="Quick picks for A")
    expect(picks.get_by_role("button", name="6")).to_have_attribute("aria-pressed", "true")
    # Leaving the group and coming back lands on the pressed pick, still one stop.
    keyboard.press("Shift+Tab")
    keyboard.press("Tab")
    assert focused(page) == "Quick picks for A: 6"
    keyboard.press("Tab")
    keyboard.press("ArrowRight")
    keyboard.press("Space")
    expect(page.get_by_label("B", exact=True)).to_have_value("2")

    assert_no_console_errors(page)


def test_enter_adds_the_row_and_the_focus_returns_to_a_ready_for_the_next(live_server, new_page):
    table = TablePage.open(new_page(), live_server.url)
    page, keyboard = table.page, table.page.keyboard
    # Type a row: A, Tab, B, Enter. The row is added and the focus is back in A, its text
    # selected, B unchanged: the next row is a few keys away.
    page.get_by_label("A", exact=True).focus()
    keyboard.press("Control+A")
    keyboard.type("12")
    page.get_by_label("B", exact=True).focus()  # the Tab from A to B: the test above
    keyboard.press("Control+A")
    keyboard.type("30")
    keyboard.press("Enter")
    table.wait_rows(1)
    expect(table.rows.first).to_contain_text("42")
    expect(page.get_by_label("A", exact=True)).to_be_focused()
    selected = "(() => { const a = document.activeElement; return a.value.slice(a.selectionStart, a.selectionEnd); })()"
    assert page.evaluate(selected) == "12"
    expect(page.get_by_label("B", exact=True)).to_have_value("30")
    keyboard.type("5")
    keyboard.press("Enter")
    table.wait_rows(2)
    expect(table.rows.first).to_contain_text("35")
    expect(page.get_by_label("A", exact=True)).to_be_focused()
    assert stored_row_ids(live_server.url) == [1, 2]
    assert_no_console_errors(page)


def test_delete_buttons_are_named_by_what_the_row_shows(live_server, new_page):
    add_rows_over_http(live_server.url, [(3, 4), (-5, 2)])
    table = TablePage.open(new_page(), live_server.url)
    table.wait_rows(2)
    rows = table.rows
    expect(rows.nth(0).get_by_role("button")).to_have_accessible_name("Delete row -5 + 2 = -3")
    expect(rows.nth(1).get_by_role("button")).to_have_accessible_name("Delete row 3 + 4 = 7")
    table.page.get_by_role("button", name="Delete row 3 + 4 = 7").click()
    table.wait_rows(1)
    assert stored_row_ids(live_server.url) == [2]
    for name in ("A", "B"):
        expect(table.page.get_by_role("toolbar", name=f"Quick picks for {name}")).to_be_visible()
    assert_no_console_errors(table.page)


# Relative luminance and contrast ratio as WCAG 2 defines them, from the rendered colours: the
# text colour over the backgrounds under it (background colours and the inset box-shadows with
# which Bootstrap stripes table rows), composited from the first opaque one up.
CONTRAST = """
(root) => {
  const parse = (value) => {
    const m = /rgba?\\(([^)]*)\\)/.exec(value);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, under) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + under[i] * (1 - a)).concat(1);
  };
  const layers = (el) => {
    const found = [];
    for (let e = el; e; e = e.parentElement) {
      const style = getComputedStyle(e);
      for (const m of style.boxShadow.matchAll(/(rgba?\\([^)]*\\))[^,]*inset/g)) {
        found.push(parse(m[1]));
      }
      const bg = parse(style.backgroundColor);
      if (bg && bg[3] > 0) found.push(bg);
      if (bg && bg[3] === 1) return found;
    }
    return found.concat([[255, 255, 255, 1]]);
  };
  const background = (el) => layers(el).reverse().reduce((under, top) => over(top, under));
  const luminance = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const results = [];
  for (const el of root.querySelectorAll("*")) {
    const text = Array.from(el.childNodes)
      .filter((n) => n.nodeType === Node.TEXT_NODE)
      .map((n) => n.textContent).join("").trim();
    const box = el.getBoundingClientRect();
    if (!text || !el.checkVisibility() || box.width <= 1 || box.height <= 1) continue;
    const style = getComputedStyle(el);
    const bg = background(el);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    results.push({
      text: text.slice(0, 40),
      tag: el.tagName.toLowerCase() + (el.className ? "." + el.className.split(" ").join(".") : ""),
      ratio: Math.round(ratio(over(parse(style.color), bg), bg) * 100) / 100,
      needed: large ? 3 : 4.5,
    });
  }
  return results;
}
"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_contrast_meets_wcag_aa(live_server, new_page, scheme):
    add_rows_over_http(live_server.url, [(1, 2), (3, 4), (5, 6)])
    table = TablePage.open(new_page(color_scheme=scheme), live_server.url)
    table.wait_rows(3)
    page = table.page
    assert page.locator("html").get_attribute("data-bs-theme") == scheme
    table.add(7, 8)  # a confirmation under the form, and a pressed quick pick
    expect(page.locator('[data-role="form-ok"]')).to_be_visible()
    table.wait_rows(4)

    # Bootstrap eases a button's colours over 0.15 s: measure the colours it settles on.
    page.evaluate("Promise.all(document.getAnimations().map((a) => a.finished))")
    measured = page.evaluate(CONTRAST, page.locator("#main").element_handle())
    texts = {m["text"] for m in measured}
    # What the review found at 3.3:1 in dark mode is among what was measured.
    assert {"1", "7", "10", "Download CSV", "×", "Added 7 + 8 = 15."} <= texts, texts
    too_low = [m for m in measured if m["ratio"] < m["needed"]]
    assert too_low == [], "\n".join(map(str, too_low))
    assert_no_console_errors(page)
