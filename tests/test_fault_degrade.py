"""What users get while a dependency is down, in process: 503 with a readable answer when the
database refuses connections; working chat pages and writes when the presence Redis does."""

import flask_migrate
import pytest

from webapp import create_app
from webapp.errors import DATABASE_DOWN

from .conftest import Account, make_config
from .e2e.server import free_port


@pytest.fixture
def app_without_presence(tmp_path):
    """An app whose presence Redis refuses connections (it is down)."""
    base = make_config(f"sqlite:///{tmp_path / 'test.db'}")
    config = type("Config", (base,), {"PRESENCE_URL": f"redis://127.0.0.1:{free_port()}/0"})
    app = create_app(config)
    with app.app_context():
        flask_migrate.upgrade()
    return app


def test_chat_works_without_its_presence_store(app_without_presence):
    alice = Account(app_without_presence, "alice")
    page = alice.client.get("/chat/general")
    assert page.status_code == 200
    assert 'data-user="alice" data-status="unknown"' in page.get_data(as_text=True)
    members = alice.client.get("/chat/general/members", headers={"Accept": "application/json"})
    assert members.get_json()["members"] == [{"user": "alice", "status": "unknown"}]
    sent = alice.browser.post(
        "/chat/general/messages",
        {"body": "still here"},
        htmx=False,
        headers={"Accept": "application/json"},
    )
    assert sent.status_code == 201, sent.get_data(as_text=True)
    sock = alice.socket()
    assert sock.is_connected()
    joined = sock.emit("chat:join", {"room": "general"}, callback=True)
    assert joined["ok"], joined
    ack = sock.emit("chat:send", {"room": "general", "body": "over the socket"}, callback=True)
    assert ack["ok"], ack
    history = alice.client.get(
        "/chat/general/messages?after=0", headers={"Accept": "application/json"}
    ).get_json()["messages"]
    assert [m["body"] for m in history] == ["still here", "over the socket"]
    sock.disconnect()


@pytest.fixture
def app_without_database():
    url = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/gone"
    return create_app(make_config(url))


@pytest.mark.parametrize(
    "headers, kind",
    [
        ({}, "text/html"),
        ({"HX-Request": "true"}, "text/html"),
        ({"Accept": "application/json"}, "application/json"),
    ],
)
def test_a_refused_database_answers_503_with_a_readable_message(
    app_without_database, headers, kind
):
    client = app_without_database.test_client()
    for path in ("/", "/table/rows?after=0"):
        response = client.get(path, headers=headers)
        assert response.status_code == 503
        assert response.content_type.startswith(kind)
        assert response.headers["Retry-After"] == "5"
        if kind == "application/json":
            assert response.get_json() == {"ok": False, "error": DATABASE_DOWN}
        else:
            text = response.get_data(as_text=True)
            assert DATABASE_DOWN in text
            assert ("<html" in text) == (not headers)  # htmx gets a fragment
    assert client.get("/healthz").status_code == 503


def test_socket_events_answer_when_the_user_cannot_be_loaded(app, accounts, monkeypatch):
    """A full pool or a database that went away while loading the user: an ``ok: false`` ack,
    never an exception that leaves the client waiting for an answer that never comes."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from webapp.auth import login

    alice = accounts("alice")
    sock = alice.socket()
    assert sock.emit("chat:join", {"room": "general"}, callback=True)["ok"]

    def pool_is_full(_session_id):
        raise PoolTimeout("QueuePool limit reached")

    monkeypatch.setattr(login.login_manager, "_user_callback", pool_is_full)
    for event, data in [
        ("chat:send", {"room": "general", "body": "lost?"}),
        ("chat:join", {"room": "general"}),
        ("presence:set", {"status": "away"}),
    ]:
        ack = sock.emit(event, data, callback=True)
        assert ack == {"ok": False, "retry": True, "error": ack["error"]}, ack
        assert "Try again" in ack["error"]
    monkeypatch.undo()
    history = alice.client.get(
        "/chat/general/messages?after=0", headers={"Accept": "application/json"}
    ).get_json()["messages"]
    assert history == []
    sock.disconnect()


def test_a_socket_whose_user_cannot_be_loaded_is_refused_with_a_wait(app, accounts, monkeypatch):
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from webapp.auth import login

    alice = accounts("alice")

    def pool_is_full(_session_id):
        raise PoolTimeout("QueuePool limit reached")

    monkeypatch.setattr(login.login_manager, "_user_callback", pool_is_full)
    assert not alice.socket().is_connected()  # refused, not taken for an anonymous watcher
    monkeypatch.undo()
    assert alice.socket().is_connected()
