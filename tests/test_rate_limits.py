"""Rate limits: logins and registrations per address and per username, rows per client, socket
connections per address; 429 with Retry-After and a readable answer; a Redis outage is no 500."""

import uuid

import flask_migrate
import pytest
from flask_socketio import SocketIOTestClient

from webapp import create_app
from webapp.extensions import db, socketio
from webapp.ratelimits import storage_url

from .conftest import PASSWORD, Account, Browser, count_rows, make_config
from .services import require

LIMITS = {
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_LOGIN_PER_IP": "4 per minute",
    "RATELIMIT_LOGIN_PER_USERNAME": "2 per minute",
    "RATELIMIT_REGISTER_PER_IP": "3 per minute",
    "RATELIMIT_REGISTER_PER_USERNAME": "2 per minute",
    "RATELIMIT_ROWS_PER_CLIENT": "3 per minute",
    "RATELIMIT_SOCKET_CONNECTS_PER_IP": "2 per minute",
    "RATELIMIT_LOGIN_PER_DEVICE": "2 per minute",
    "RATELIMIT_ROOMS_PER_USER": "2 per minute",
    "RATELIMIT_EDITS_PER_USER": "2 per minute",
    "RATELIMIT_PRESENCE_PER_USER": "2 per minute",
}
UNTRUSTED = "Too many failed logins for this username from browsers it has not logged in from"


def limited_app(tmp_path, **settings):
    base = make_config(f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}")
    app = create_app(type("Limited", (base,), {**LIMITS, **settings}))
    with app.app_context():
        flask_migrate.upgrade()
    return app


@pytest.fixture
def app(tmp_path):
    app = limited_app(tmp_path)
    yield app
    with app.app_context():
        db.engine.dispose()


def from_address(app, address: str) -> Browser:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return Browser(client)


def login(browser: Browser, username: str, password: str, **kwargs):
    return browser.post(
        "/login", {"username": username, "password": password}, htmx=False, **kwargs
    )


def assert_too_many(response, message: str):
    assert response.status_code == 429
    seconds = int(response.headers["Retry-After"])
    assert 1 <= seconds <= 60
    body = response.get_data(as_text=True)
    assert message in body and f"Try again in {seconds} second" in body


def test_logins_from_one_address_are_limited(app):
    Account(app, "alice")
    browser = from_address(app, "10.0.0.1")
    for name in ("bob", "carol", "dave", "erin"):  # four tries, any names
        assert login(browser, name, "wrong password").status_code == 422
    refused = login(browser, "alice", PASSWORD)
    assert_too_many(refused, "Too many login attempts from your address.")
    assert "<html" in refused.get_data(as_text=True).lower()  # a full page for a form post
    # Another address is not affected.
    assert login(from_address(app, "10.0.0.2"), "alice", PASSWORD).status_code == 303


def test_a_username_guessed_from_many_addresses_is_limited(app):
    Account(app, "alice")
    for i in range(2):
        assert login(from_address(app, f"10.0.1.{i}"), "alice", f"guess {i}").status_code == 422
    # Even the right password from a fresh address waits now: the name is being guessed.
    assert_too_many(login(from_address(app, "10.0.1.9"), "ALICE", PASSWORD), UNTRUSTED)
    # Other names are not affected.
    Account(app, "bob")
    assert login(from_address(app, "10.0.1.9"), "bob", PASSWORD).status_code == 303


def test_a_stranger_cannot_lock_a_user_out_of_a_browser_they_logged_in_from(app):
    Account(app, "alice")
    own = from_address(app, "10.0.11.1")
    assert login(own, "alice", PASSWORD).status_code == 303
    for i in range(2):
        assert login(from_address(app, f"10.0.12.{i}"), "alice", f"guess {i}").status_code == 422
    # Untrusted attempts wait now, even with the right password (the documented trade-off).
    assert_too_many(login(from_address(app, "10.0.12.9"), "alice", PASSWORD), UNTRUSTED)
    # A cookie that is not the one this app signed is no trust.
    forged = from_address(app, "10.0.12.8")
    forged.client.set_cookie("login_device", own.client.get_cookie("login_device").value + "x")
    assert_too_many(login(forged, "alice", PASSWORD), UNTRUSTED)
    # The browser where alice logged in before still logs in, any number of times.
    for _ in range(3):
        own._token = None
        assert login(own, "ALICE", PASSWORD).status_code == 303


def test_a_trusted_browser_is_limited_on_its_own(app):
    Account(app, "alice")
    own = from_address(app, "10.0.13.1")
    assert login(own, "alice", PASSWORD).status_code == 303
    own._token = None
    for i in range(2):
        assert login(own, "alice", f"typo {i}").status_code == 422
    assert_too_many(login(own, "alice", PASSWORD), "Too many failed logins from this browser.")
    # Its failures did not count against the username: a new browser still logs in.
    assert login(from_address(app, "10.0.13.2"), "alice", PASSWORD).status_code == 303


def test_another_users_device_cookie_counts_as_untrusted(app):
    Account(app, "alice")
    mallory = Account(app, "mallory")  # registering remembers the browser, for mallory only
    mallory.client.environ_base["REMOTE_ADDR"] = "10.0.14.1"
    assert mallory.client.get_cookie("login_device") is not None
    for i in range(2):
        assert login(mallory.browser, "alice", f"guess {i}").status_code == 422
    assert_too_many(login(from_address(app, "10.0.14.2"), "alice", PASSWORD), UNTRUSTED)


def test_successful_logins_do_not_count_against_the_username(app):
    Account(app, "alice")
    for i in range(3):
        browser = from_address(app, f"10.0.2.{i}")
        assert login(browser, "alice", PASSWORD).status_code == 303


def test_registrations_are_limited_per_address_and_per_username(app):
    browser = from_address(app, "10.0.3.1")
    for name in ("user1", "user2", "user3"):
        browser._token = None
        response = browser.post("/register", {"username": name, "password": PASSWORD}, htmx=False)
        assert response.status_code == 303
    browser._token = None
    assert_too_many(
        browser.post("/register", {"username": "user4", "password": PASSWORD}, htmx=False),
        "Too many accounts created from your address.",
    )
    # user1 once registered, then tried again from elsewhere: the second and last attempt.
    taken = from_address(app, "10.0.4.1").post(
        "/register", {"username": "user1", "password": PASSWORD}, htmx=False
    )
    assert taken.status_code == 422
    assert_too_many(
        from_address(app, "10.0.4.9").post(
            "/register", {"username": "USER1", "password": PASSWORD}, htmx=False
        ),
        "Too many attempts to register this username.",
    )
    with app.app_context():
        from webapp.auth.models import User

        assert db.session.query(User).count() == 3


def test_rows_are_limited_per_client_and_a_refused_one_is_not_stored(app):
    anonymous = from_address(app, "10.0.5.1")
    for a in range(3):
        assert anonymous.post("/table/rows", {"a": str(a), "b": "1"}).status_code == 201
    refused = anonymous.post("/table/rows", {"a": "9", "b": "9"})
    assert_too_many(refused, "Too many rows added.")
    # htmx gets a fragment for the form's feedback area, not a page.
    assert "<html" not in refused.get_data(as_text=True).lower()
    assert 'role="alert"' in refused.get_data(as_text=True)
    assert count_rows(app) == 3
    # JSON clients get JSON.
    api = anonymous.post(
        "/table/rows", {"a": "9", "b": "9"}, htmx=False, headers={"Accept": "application/json"}
    )
    assert api.status_code == 429 and api.get_json()["ok"] is False
    assert "Too many rows added." in api.get_json()["error"] and api.headers["Retry-After"]
    # A logged-in user counts as themselves, not as the address they share.
    alice = Account(app, "alice")
    alice.client.environ_base["REMOTE_ADDR"] = "10.0.5.1"
    assert alice.browser.post("/table/rows", {"a": "1", "b": "1"}).status_code == 201
    assert count_rows(app) == 4


def connect_from(app, address: str) -> SocketIOTestClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return socketio.test_client(app, flask_test_client=client)


def test_socket_connections_per_address_are_limited(app):
    sockets = [connect_from(app, "10.0.6.1") for _ in range(2)]
    assert all(s.is_connected() for s in sockets)
    refused = connect_from(app, "10.0.6.1")
    assert not refused.is_connected()
    other = connect_from(app, "10.0.6.2")
    assert other.is_connected()
    for sock in [*sockets, other]:
        sock.disconnect()


def test_limits_off_when_disabled(tmp_path):
    app = limited_app(tmp_path, RATELIMIT_ENABLED=False)
    browser = from_address(app, "10.0.7.1")
    for a in range(6):
        assert browser.post("/table/rows", {"a": str(a), "b": "1"}).status_code == 201


def test_storage_defaults_to_the_redis_of_presence_or_the_queue():
    def url(**settings):
        none = {"RATELIMIT_STORAGE_URL": None, "PRESENCE_URL": None, "MESSAGE_QUEUE_URL": None}
        return storage_url({**none, **settings})

    assert url() == "memory://"
    assert url(MESSAGE_QUEUE_URL="amqp://x") == "memory://"
    assert url(MESSAGE_QUEUE_URL="redis://q:6379/0") == "redis://q:6379/0"
    assert url(MESSAGE_QUEUE_URL="amqp://x", PRESENCE_URL="redis://p/1") == "redis://p/1"
    assert url(RATELIMIT_STORAGE_URL="redis://r/2", PRESENCE_URL="redis://p/1") == "redis://r/2"
    assert url(PRESENCE_URL="unix:///run/redis.sock") == "redis+unix:///run/redis.sock"


def test_workers_sharing_redis_count_together(tmp_path):
    url = require("TEST_REDIS_URL")
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    settings = {"RATELIMIT_STORAGE_URL": url, "RATELIMIT_KEY_PREFIX": prefix}
    first, second = limited_app(tmp_path, **settings), limited_app(tmp_path, **settings)
    a, b = from_address(first, "10.0.8.1"), from_address(second, "10.0.8.1")
    assert a.post("/table/rows", {"a": "1", "b": "1"}).status_code == 201
    assert b.post("/table/rows", {"a": "1", "b": "1"}).status_code == 201
    assert a.post("/table/rows", {"a": "1", "b": "1"}).status_code == 201
    assert_too_many(b.post("/table/rows", {"a": "1", "b": "1"}), "Too many rows added.")
    s1, s2 = connect_from(first, "10.0.8.2"), connect_from(second, "10.0.8.2")
    assert s1.is_connected() and s2.is_connected()
    assert not connect_from(first, "10.0.8.2").is_connected()
    s1.disconnect()
    s2.disconnect()


def test_an_unreachable_redis_is_no_500_and_limits_still_hold(tmp_path, black_hole):
    import socket as sockets

    with sockets.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    for url in (f"redis://127.0.0.1:{port}/0", f"redis://{black_hole}/0"):
        app = limited_app(tmp_path, RATELIMIT_STORAGE_URL=url)
        browser = from_address(app, "10.0.9.1")
        statuses = [browser.post("/table/rows", {"a": "1", "b": "2"}).status_code for _ in range(4)]
        assert statuses == [201, 201, 201, 429], url
        socks = [connect_from(app, "10.0.9.2") for _ in range(3)]
        assert [s.is_connected() for s in socks] == [True, True, False], url
        for sock in socks:
            if sock.is_connected():
                sock.disconnect()


def test_a_proxy_without_proxyfix_is_pointed_out_in_the_log(app, caplog, monkeypatch):
    import webapp.ratelimits

    monkeypatch.setattr(webapp.ratelimits, "_warned_about_proxy", False)
    browser = from_address(app, "10.0.10.1")
    browser.post("/table/rows", {"a": "1", "b": "1"}, headers={"X-Forwarded-For": "1.2.3.4"})
    browser.post("/table/rows", {"a": "1", "b": "1"}, headers={"X-Forwarded-For": "1.2.3.5"})
    warnings = [r for r in caplog.records if "PROXY_FIX_HOPS is not set" in r.getMessage()]
    assert len(warnings) == 1
