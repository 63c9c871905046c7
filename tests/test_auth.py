import re

import pytest
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from webapp.auth import services
from webapp.auth.models import User
from webapp.errors import ValidationError
from webapp.extensions import db

from .conftest import PASSWORD, Account


def count_users(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(User.id)))


def test_register_logs_in_and_goes_to_the_chat(browser, client, app):
    response = browser.post("/register", {"username": "alice", "password": PASSWORD}, htmx=False)
    assert response.status_code == 303 and response.headers["Location"] == "/chat"
    page = client.get("/chat").get_data(as_text=True)
    assert 'data-role="nav-user">alice<' in page and "Log out" in page
    with app.app_context():
        user = db.session.scalar(select(User))
        # Hashed with scrypt, never stored in clear.
        assert user.password_hash.startswith("scrypt:") and PASSWORD not in user.password_hash
        assert check_password_hash(user.password_hash, PASSWORD)


def test_production_hash_method_is_werkzeug_scrypt(app):
    from webapp.config import Config

    assert Config.PASSWORD_HASH_METHOD == "scrypt"


@pytest.mark.parametrize(
    "form, message",
    [
        ({}, "Username is required"),
        ({"username": "al", "password": PASSWORD}, "3 to 32 characters"),
        ({"username": "a" * 33, "password": PASSWORD}, "3 to 32 characters"),
        ({"username": "al ice", "password": PASSWORD}, "3 to 32 characters"),
        ({"username": "<script>", "password": PASSWORD}, "3 to 32 characters"),
        ({"username": "alicé", "password": PASSWORD}, "3 to 32 characters"),
        ({"username": "alice"}, "Password is required"),
        ({"username": "alice", "password": "short"}, "at least 8 characters"),
        ({"username": "alice", "password": "x" * 1025}, "at most 1024"),
    ],
)
def test_register_rejects_bad_input_with_422(browser, app, form, message):
    response = browser.post("/register", form, htmx=False)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert message in body and 'data-role="form-error"' in body and "<script>" not in body
    assert count_users(app) == 0


def test_usernames_are_unique_without_regard_to_case(app, browser):
    Account(app, "Alice")
    response = browser.post("/register", {"username": "alice", "password": PASSWORD}, htmx=False)
    assert response.status_code == 422 and "taken" in response.get_data(as_text=True)
    assert count_users(app) == 1


def test_login_with_any_case_of_the_name(app, browser):
    Account(app, "Alice")
    response = browser.post("/login", {"username": "ALICE", "password": PASSWORD}, htmx=False)
    assert response.status_code == 303


def test_wrong_password_and_unknown_user_get_the_same_answer(app, browser):
    Account(app, "alice")
    wrong = browser.post("/login", {"username": "alice", "password": "wrong password"}, htmx=False)
    unknown = browser.post(
        "/login", {"username": "nobody", "password": "wrong password"}, htmx=False
    )
    assert wrong.status_code == unknown.status_code == 422
    # The CSRF token is signed with the time: the two pages may lie a second apart.
    token = re.compile(r'(name="csrf_token" value=")[^"]*"')
    pages = [token.sub(r'\1"', r.get_data(as_text=True)) for r in (wrong, unknown)]
    assert pages[0] == pages[1].replace("nobody", "alice")
    assert "Wrong username or password." in wrong.get_data(as_text=True)


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"username": "alice"},
        {"password": PASSWORD},
        {"username": "a" * 5000, "password": PASSWORD},
    ],
)
def test_login_with_missing_fields_is_refused(app, browser, form):
    Account(app, "alice")
    response = browser.post("/login", form, htmx=False)
    assert response.status_code == 422 and "Wrong username or password." in response.get_data(
        as_text=True
    )


def test_login_starts_a_fresh_session(app, client, browser):
    Account(app, "alice")
    assert browser.token  # an anonymous session exists, with its CSRF token
    before = client.get_cookie("session").value
    response = browser.post("/login", {"username": "alice", "password": PASSWORD}, htmx=False)
    assert response.status_code == 303
    assert client.get_cookie("session").value != before
    # The anonymous CSRF token is gone with the old session.
    old_token = browser.token
    browser._token = None
    assert browser.token != old_token


def test_pages_that_need_a_login_redirect_there_and_back(app, client, browser):
    response = client.get("/chat/general")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/chat/general"
    Account(app, "alice")
    response = browser.post(
        "/login?next=/chat/general",
        {"username": "alice", "password": PASSWORD, "next": "/chat/general"},
        htmx=False,
    )
    assert response.headers["Location"] == "/chat/general"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
        "http:/evil",
        "/ok\r\nSet-Cookie: x=1",
    ],
)
def test_next_must_be_a_path_on_this_site(app, browser, target):
    Account(app, "alice")
    response = browser.post(
        "/login", {"username": "alice", "password": PASSWORD, "next": target}, htmx=False
    )
    assert response.status_code == 303 and response.headers["Location"] == "/chat"


def test_login_form_keeps_a_safe_next_only(client):
    assert 'name="next" value="/chat/x"' in client.get("/login?next=/chat/x").get_data(as_text=True)
    assert 'name="next"' not in client.get("/login?next=//evil.example").get_data(as_text=True)


def test_fragments_and_json_get_401_instead_of_a_redirect(client):
    htmx = client.get("/chat/general/messages?after=0", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/login?next=")
    api = client.get("/chat", headers={"Accept": "application/json"})
    assert api.status_code == 401 and api.get_json()["ok"] is False


def test_logout_needs_post_and_csrf(app):
    alice = Account(app, "alice")
    assert alice.client.get("/logout").status_code == 405
    assert alice.client.post("/logout").status_code == 400
    assert alice.client.get("/chat").status_code == 200
    response = alice.browser.post("/logout", htmx=False)
    assert response.status_code == 303
    assert alice.client.get("/chat").status_code == 302


def test_register_and_login_need_csrf(app, client):
    response = client.post("/register", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 400
    assert count_users(app) == 0
    Account(app, "bob")
    assert client.post("/login", data={"username": "bob", "password": PASSWORD}).status_code == 400


def test_password_is_never_logged(app, browser, caplog):
    caplog.set_level("DEBUG")
    browser.post("/register", {"username": "alice", "password": "s3cret-passw0rd"}, htmx=False)
    browser._token = None
    browser.post("/login", {"username": "alice", "password": "wrong-s3cret"}, htmx=False)
    assert "s3cret" not in caplog.text


def test_services_validate_names(app):
    with app.app_context():
        assert services.check_name(" bob_1-x ") == "bob_1-x"
        with pytest.raises(ValidationError, match="Room name"):
            services.check_name("a b", "Room name")
        with pytest.raises(ValidationError, match="required"):
            services.check_name(None)
        with pytest.raises(ValidationError, match="Wrong username or password"):
            services.authenticate(["alice"], {"x": 1})


def test_table_rows_show_who_added_them(app, client, browser):
    browser.post("/table/rows", {"a": "1", "b": "2"})
    alice = Account(app, "alice")
    watcher = alice.socket()
    watcher.get_received()
    response = alice.browser.post("/table/rows", {"a": "3", "b": "4"})
    assert response.status_code == 201
    [event] = [e for e in watcher.get_received() if e["name"] == "table:row"]
    assert event["args"][0]["user"] == "alice"
    assert 'data-role="row-user">by alice<' in event["args"][0]["html"]
    page = client.get("/").get_data(as_text=True)
    assert page.count('data-role="row-user"') == 1  # the anonymous row names no one
