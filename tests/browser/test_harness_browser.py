"""The browser-test helpers themselves: what later page tests rely on."""

import pytest

from .pages import set_hidden

pytestmark = pytest.mark.browser


def test_set_hidden_fires_visibilitychange_like_a_background_tab(new_page):
    page = new_page()
    page.set_content("<p>tab</p>")
    page.evaluate(
        "window.seen = [];"
        "document.addEventListener('visibilitychange', () => seen.push(document.visibilityState))"
    )
    assert page.evaluate("document.visibilityState") == "visible"
    set_hidden(page)
    assert page.evaluate("[document.visibilityState, document.hidden]") == ["hidden", True]
    set_hidden(page, False)
    assert page.evaluate("seen") == ["hidden", "visible"]


def test_console_errors_and_uncaught_exceptions_are_recorded(new_page):
    page = new_page()
    page.set_content("<p>errors</p>")
    page.evaluate("console.error('boom'); setTimeout(() => { throw new Error('uncaught'); })")
    for _ in range(100):  # the uncaught error reaches Python a moment later
        if any("uncaught" in error for error in page.console.errors):
            break
        page.wait_for_timeout(50)
    assert any("boom" in error for error in page.console.errors)
    assert any("uncaught" in error for error in page.console.errors)
