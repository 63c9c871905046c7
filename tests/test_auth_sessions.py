"""Logging out ends the user's session everywhere: other browsers, their sockets, every worker.
Migration 0004 (the session epoch) upgrades a database of 0003 with its users on SQLite and
PostgreSQL."""

import flask_migrate
from sqlalchemy import text, update

from webapp import create_app
from webapp.auth.models import User
from webapp.chat.events import LOGIN_NEEDED
from webapp.extensions import db

from .conftest import PASSWORD, Account, Browser, make_config


def second_login(app, username: str) -> Account:
    """The same user logged in from another browser."""
    other = Account.__new__(Account)
    other.app, other.username, other.sockets = app, username, []
    other.client = app.test_client()
    other.browser = Browser(other.client)
    response = other.browser.post(
        "/login", {"username": username, "password": PASSWORD}, htmx=False
    )
    assert response.status_code == 303
    other.browser._token = None
    return other


def test_logout_in_one_browser_ends_the_session_in_the_other(app):
    laptop = Account(app, "alice")
    phone = second_login(app, "alice")
    sock = phone.socket()
    assert sock.is_connected()
    assert sock.emit("chat:join", {"room": "general"}, callback=True)["ok"] is True
    assert phone.client.get("/chat").status_code == 200

    assert laptop.browser.post("/logout", htmx=False).status_code == 303

    response = phone.client.get("/chat")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    # The phone's socket was closed by the server: its page reloads as logged out.
    assert not sock.is_connected()
    # A socket the phone opens now with its old cookie is anonymous: chat events are refused.
    again = phone.socket()
    ack = again.emit("chat:send", {"room": "general", "body": "still me?"}, callback=True)
    assert ack == {"ok": False, "error": LOGIN_NEEDED}


def test_a_socket_left_open_acts_as_no_one_after_a_logout_elsewhere(app):
    """A socket whose close did not arrive (another worker, a lost queue message) is refused by
    the session check on every event."""
    alice = Account(app, "alice")
    sock = alice.socket()
    assert sock.emit("chat:send", {"room": "general", "body": "hello"}, callback=True)["ok"]
    with app.app_context():  # what a logout on another worker commits
        db.session.execute(update(User).values(session_epoch=User.session_epoch + 1))
        db.session.commit()
    assert sock.is_connected()
    for event, data in [
        ("chat:send", {"room": "general", "body": "as alice?"}),
        ("chat:join", {"room": "general"}),
        ("presence:set", {"status": "away"}),
    ]:
        assert sock.emit(event, data, callback=True) == {"ok": False, "error": LOGIN_NEEDED}
    assert alice.client.get("/chat").status_code == 302


def test_logging_in_again_after_a_logout_works_and_other_browsers_stay_out(app):
    laptop = Account(app, "alice")
    phone = second_login(app, "alice")
    laptop.browser.post("/logout", htmx=False)
    laptop.browser._token = None
    response = laptop.browser.post(
        "/login", {"username": "alice", "password": PASSWORD}, htmx=False
    )
    assert response.status_code == 303
    assert laptop.client.get("/chat").status_code == 200
    assert phone.client.get("/chat").status_code == 302


def test_other_users_stay_logged_in(app):
    alice, bob = Account(app, "alice"), Account(app, "bob")
    bob_socket = bob.socket()
    alice.browser.post("/logout", htmx=False)
    assert bob.client.get("/chat").status_code == 200
    assert bob_socket.is_connected()
    assert bob_socket.emit("chat:send", {"room": "general", "body": "hi"}, callback=True)["ok"]


def test_a_session_from_before_the_epoch_still_counts_until_a_logout(app, client):
    Account(app, "alice")
    with client.session_transaction() as session:
        session["_user_id"] = "1"  # as Flask-Login stored it before sessions had an epoch
        session["_fresh"] = True
    assert client.get("/chat").status_code == 200
    with client.session_transaction() as session:
        session["_user_id"] = "1:x"
    assert client.get("/chat").status_code == 302


def test_migration_0004_upgrades_a_database_with_users_and_downgrades(empty_database_url):
    app = create_app(make_config(empty_database_url))
    with app.app_context():
        flask_migrate.upgrade(revision="0003")
        with db.engine.connect() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (username, username_key, password_hash, created_at) "
                    "VALUES ('alice', 'alice', 'x', CURRENT_TIMESTAMP)"
                )
            )
            connection.commit()
        flask_migrate.upgrade()
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT username, session_epoch FROM users")).all() == [
                ("alice", 0)
            ]
        flask_migrate.downgrade(revision="0003")
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT username FROM users")).scalars().all() == [
                "alice"
            ]
        flask_migrate.upgrade()
        db.session.remove()
        db.engine.dispose()
