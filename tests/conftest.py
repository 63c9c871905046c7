"""Fixtures in the Flask tutorial's style: app, client, runner, and a CSRF-aware browser helper."""

import os
import re

import flask_migrate
import pytest
from sqlalchemy import func, select

from webapp import create_app
from webapp.config import TestConfig
from webapp.extensions import db, socketio

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def make_config(database_url: str):
    return type("Config", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": database_url})


@pytest.fixture
def app(tmp_path):
    """An app on a fresh database built by the migrations (SQLite file, or TEST_DATABASE_URL)."""
    url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path / 'test.db'}"
    app = create_app(make_config(url))
    with app.app_context():
        if os.environ.get("TEST_DATABASE_URL"):
            db.drop_all()
            db.session.execute(db.text("DROP TABLE IF EXISTS alembic_version"))
            db.session.commit()
        flask_migrate.upgrade()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class Browser:
    """A Flask test client used like a browser: it loads a page for its CSRF token first."""

    def __init__(self, client):
        self.client = client
        self._token = None

    @property
    def token(self) -> str:
        if self._token is None:
            page = self.client.get("/").get_data(as_text=True)
            self._token = CSRF_META.search(page).group(1)
        return self._token

    def post(self, url, data=None, htmx=True, **kwargs):
        headers = {"X-CSRFToken": self.token, **kwargs.pop("headers", {})}
        if htmx:
            headers["HX-Request"] = "true"
        return self.client.post(url, data=data or {}, headers=headers, **kwargs)

    def delete(self, url, htmx=True, **kwargs):
        headers = {"X-CSRFToken": self.token}
        if htmx:
            headers["HX-Request"] = "true"
        return self.client.delete(url, headers=headers, **kwargs)


@pytest.fixture
def browser(client):
    return Browser(client)


@pytest.fixture
def socket_client(app, client):
    """A Flask-SocketIO test client sharing the browser's cookies."""
    sockets = []

    def connect():
        sock = socketio.test_client(app, flask_test_client=client)
        sockets.append(sock)
        return sock

    yield connect
    for sock in sockets:
        if sock.is_connected():
            sock.disconnect()


def count_rows(app) -> int:
    from webapp.table.models import Row

    with app.app_context():
        return db.session.scalar(select(func.count(Row.id)))


PASSWORD = "correct horse battery"


class Account:
    """A registered, logged-in user: a CSRF-aware browser of their own and their sockets."""

    def __init__(self, app, username: str, password: str = PASSWORD):
        self.app = app
        self.username = username
        self.client = app.test_client()
        self.browser = Browser(self.client)
        response = self.browser.post("/register", {"username": username, "password": password},
                                     htmx=False)
        assert response.status_code == 303, response.get_data(as_text=True)
        self.browser._token = None  # login starts a fresh session, with a new CSRF token
        self.sockets = []

    def socket(self):
        """A Flask-SocketIO test client carrying this user's session cookie."""
        sock = socketio.test_client(self.app, flask_test_client=self.client)
        self.sockets.append(sock)
        return sock


@pytest.fixture
def accounts(app):
    """``accounts("alice")`` registers and logs in a user; sockets are closed afterwards."""
    made = []

    def make(username: str, password: str = PASSWORD) -> Account:
        account = Account(app, username, password)
        made.append(account)
        return account

    yield make
    for account in made:
        for sock in account.sockets:
            if sock.is_connected():
                sock.disconnect()
