"""Fixtures in the Flask tutorial's style: app, client, runner, and a CSRF-aware browser helper."""

import os
import re
import socket

import flask_migrate
import pytest
from sqlalchemy import func, select

from webapp import create_app
from webapp.config import TestConfig, engine_options
from webapp.extensions import db, socketio

from .services import fresh_postgres_database, require

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def make_config(database_url: str):
    return type(
        "Config",
        (TestConfig,),
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": engine_options(database_url),
        },
    )


@pytest.fixture(scope="session")
def postgres_test_database():
    """With TEST_DATABASE=postgres: one fresh PostgreSQL database for the whole session."""
    kind = os.environ.get("TEST_DATABASE") or "sqlite"
    if kind not in ("sqlite", "postgres"):
        pytest.exit(f"TEST_DATABASE={kind!r}: use 'sqlite' (the default) or 'postgres'", 2)
    if kind == "sqlite":
        yield None
        return
    url, drop = fresh_postgres_database(require("TEST_POSTGRES_URL"))
    yield url
    drop()


_MIGRATED_ROWS: dict[str, dict] = {}  # database URL -> rows the migrations inserted, by table


def reset_postgres(url: str) -> None:
    """Empty every table, then put back the rows the migrations inserted (taken the first time,
    on the freshly migrated database) and restart the id sequences after them."""
    tables = db.metadata.sorted_tables
    if url not in _MIGRATED_ROWS:
        _MIGRATED_ROWS[url] = {
            t.name: [dict(r) for r in db.session.execute(t.select()).mappings()] for t in tables
        }
    names = ", ".join(f'"{table.name}"' for table in tables)
    db.session.execute(db.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    for table in tables:
        rows = _MIGRATED_ROWS[url][table.name]
        if rows:
            db.session.execute(table.insert(), rows)
            if "id" in table.c:
                db.session.execute(
                    db.text(
                        f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                        f'(SELECT max(id) FROM "{table.name}"))'
                    )
                )
    db.session.commit()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request, tmp_path):
    """An empty database on SQLite, then on PostgreSQL: for running the migrations on."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    url, drop = fresh_postgres_database(require("TEST_POSTGRES_URL"))
    yield url
    drop()


@pytest.fixture
def app(tmp_path, postgres_test_database):
    """An app on an empty database built by the migrations.

    SQLite in a fresh file by default; with TEST_DATABASE=postgres the session's PostgreSQL
    database, migrated and then reset before each test to what the migrations left in it (the
    `general` room), with ids restarting as on a fresh database.
    """
    url = postgres_test_database or f"sqlite:///{tmp_path / 'test.db'}"
    app = create_app(make_config(url))
    with app.app_context():
        flask_migrate.upgrade()
        if postgres_test_database:
            reset_postgres(postgres_test_database)
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
        response = self.browser.post(
            "/register", {"username": username, "password": password}, htmx=False
        )
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


@pytest.fixture
def black_hole():
    """``host:port`` of a socket that accepts connections and never answers: only a timeout
    ends a wait on it (a dependency that hangs rather than refuses)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"127.0.0.1:{listener.getsockname()[1]}"


# The number of fuzz cases run, printed at the end of the session.
from .fuzzing import pytest_terminal_summary  # noqa: F401
