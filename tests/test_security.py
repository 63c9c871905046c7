"""Security headers: a strict Content-Security-Policy on every page, and no inline script."""

import re

from webapp import create_app
from webapp.config import TestConfig
from webapp.security import STRICT_CSP


def test_pages_carry_a_strict_content_security_policy(client):
    response = client.get("/")
    policy = response.headers["Content-Security-Policy"]
    assert policy == STRICT_CSP
    assert "script-src 'self';" in policy and "unsafe" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_pages_have_no_inline_script_style_or_handler(client, browser):
    browser.post("/table/rows", {"a": "1", "b": "2"})
    for page in (
        client.get("/").get_data(as_text=True),
        client.get("/table/rows?before=99").get_data(as_text=True),
    ):
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "inline <script>"
        assert not re.search(r"\son[a-z]+\s*=", page), "inline event handler"
        assert not re.search(r"\sstyle\s*=", page), "style attribute"
        assert "hx-on" not in page and "javascript:" not in page


def test_the_policy_can_be_replaced_or_turned_off():
    custom = type("C", (TestConfig,), {"CONTENT_SECURITY_POLICY": "default-src 'none'"})
    assert (
        create_app(custom).test_client().get("/healthz").headers["Content-Security-Policy"]
        == "default-src 'none'"
    )
    off = type("C", (TestConfig,), {"CONTENT_SECURITY_POLICY": ""})
    assert "Content-Security-Policy" not in create_app(off).test_client().get("/healthz").headers


def test_outside_debug_the_app_refuses_to_start_without_a_secret_key():
    import pytest

    keyless = type("C", (TestConfig,), {"SECRET_KEY": None, "TESTING": False})
    with pytest.raises(RuntimeError, match="SECRET_KEY is not set. Set the SECRET_KEY environment"):
        create_app(keyless)
    # In debug (flask run --debug) a development key stands in.
    debug = type("C", (keyless,), {"DEBUG": True})
    assert create_app(debug).config["SECRET_KEY"] == "dev-only-not-secret"


def test_an_oversized_body_gets_413_as_a_page_a_fragment_or_json(app, browser):
    limit = app.config["MAX_CONTENT_LENGTH"]
    assert limit == 64 * 1024
    big = {"body": "x" * limit}
    page = browser.post("/chat/general/messages", big, htmx=False)
    fragment = browser.post("/chat/general/messages", big)
    api = browser.post(
        "/chat/general/messages", big, htmx=False, headers={"Accept": "application/json"}
    )
    message = "That is too much data at once: at most 64 KiB."
    assert page.status_code == fragment.status_code == api.status_code == 413
    assert message in page.get_data(as_text=True) and "<html" in page.get_data(as_text=True)
    assert message in fragment.get_data(as_text=True)
    assert "<html" not in fragment.get_data(as_text=True)
    assert api.get_json() == {"ok": False, "error": message}
    # The largest message the app accepts, in the widest characters, fits easily.
    assert len(("😀" * 2000).encode()) * 2 < limit


def test_socket_messages_are_capped_from_the_environment(app):
    from webapp.extensions import socketio

    assert socketio.server.eio.max_http_buffer_size == app.config["SOCKETIO_MAX_MESSAGE_SIZE"]
    assert app.config["SOCKETIO_MAX_MESSAGE_SIZE"] == 64 * 1024
