"""Every mutating route (read from the URL map, so a new one is covered by itself) refuses a
request without a CSRF token, with a wrong one, or with the token of another session: 400 with
a readable message, and nothing changes. The same request with the right token goes through,
so the refusal is the token's doing."""

import pytest

from webapp import create_app
from webapp.config import TestConfig
from webapp.extensions import db

from .conftest import CSRF_META, PASSWORD
from .fuzzing import snapshot

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
ROUTES = sorted(
    (rule.rule, method)
    for rule in create_app(TestConfig).url_map.iter_rules()
    for method in rule.methods & MUTATING
)

# What a valid request to each route sends; a route not listed gets an empty form.
FORMS = {
    "/table/rows": {"a": "1", "b": "2"},
    "/register": {"username": "newcomer", "password": "correct horse battery"},
    "/login": {"username": "alice", "password": "correct horse battery"},
    "/chat/rooms": {"name": "newroom"},
    "/chat/<name>/messages": {"body": "hello"},
    "/chat/<name>/members": {"username": "carol"},
    "/chat/<name>/members/remove": {"username": "bob"},
    "/chat/<name>/rename": {"name": "renamed"},
    "/account/password": {"current_password": PASSWORD, "new_password": "another passphrase"},
}
PATH_VALUES = {"name": "general", "row_id": "1", "username": "bob"}
# Routes that act on a room of alice's own (general cannot be left, renamed, ...).
OWN_ROOM = {
    "/chat/<name>/leave",
    "/chat/<name>/members",
    "/chat/<name>/members/remove",
    "/chat/<name>/members/<username>/remove",
    "/chat/<name>/rename",
    "/chat/<name>/archive",
}


def concrete(path: str) -> str:
    values = {**PATH_VALUES, "name": "mine"} if path in OWN_ROOM else PATH_VALUES
    for name, value in values.items():
        for converter in ("", "int:", "string:"):
            path = path.replace(f"<{converter}{name}>", value)
    assert "<" not in path, f"add a value for the parameters of {path} to PATH_VALUES"
    return path


def other_sessions_token(app) -> str:
    page = app.test_client().get("/").get_data(as_text=True)
    return CSRF_META.search(page).group(1)


@pytest.fixture
def alice(accounts, browser):
    """A logged-in user, one table row and one message to act on, a private room of hers with
    bob in it, and carol."""
    accounts("bob"), accounts("carol")
    user = accounts("alice")
    assert user.browser.post("/table/rows", {"a": "5", "b": "6"}).status_code == 201
    assert user.browser.post("/chat/general/messages", {"body": "first"}).status_code == 201
    form = {"name": "mine", "visibility": "private"}
    assert user.browser.post("/chat/rooms", form).status_code == 201
    assert user.browser.post("/chat/mine/members", {"username": "bob"}).status_code == 200
    return user


def state(app) -> dict:
    with app.app_context():
        found = snapshot()
        db.session.remove()
    return found


TOKENS = ["missing", "wrong", "other session's", "empty"]


@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize(("path", "method"), ROUTES, ids=[f"{m} {p}" for p, m in ROUTES])
def test_mutating_route_refuses_a_bad_csrf_token(app, alice, path, method, token):
    url, form = concrete(path), FORMS.get(path, {})
    real = alice.browser.token
    sent = {
        "missing": None,
        "wrong": real[:-4] + "abcd",
        "empty": "",
        "other session's": other_sessions_token(app),
    }[token]
    before = state(app)
    for where in ("header", "form"):
        headers = {"X-CSRFToken": sent} if where == "header" and sent is not None else {}
        data = {**form, "csrf_token": sent} if where == "form" and sent is not None else form
        response = alice.client.open(url, method=method, data=data, headers=headers)
        assert response.status_code == 400, (where, response.status_code)
        assert "security token" in response.get_data(as_text=True)
        assert state(app) == before, f"{method} {path} changed something without a valid token"
    # Still logged in (a refused logout ends nothing) ...
    assert alice.client.get("/chat").status_code == 200
    # ... and the same request with the right token goes through.
    response = alice.client.open(url, method=method, data=form, headers={"X-CSRFToken": real})
    assert response.status_code < 400, response.get_data(as_text=True)[:500]


@pytest.mark.parametrize(
    ("headers", "kind"),
    [({"HX-Request": "true"}, "fragment"), ({"Accept": "application/json"}, "json")],
)
def test_the_refusal_is_readable_for_htmx_and_json(alice, headers, kind):
    response = alice.client.post("/table/rows", data={"a": "1", "b": "2"}, headers=headers)
    assert response.status_code == 400
    if kind == "json":
        assert response.get_json()["ok"] is False
        assert "security token" in response.get_json()["error"]
    else:
        assert "security token" in response.get_data(as_text=True)
        assert "<html" not in response.get_data(as_text=True).lower()
