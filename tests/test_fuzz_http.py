"""Every HTTP route and method, fuzzed: hostile paths, queries, forms and bodies, anonymous and
logged in. Never a 5xx or an unhandled exception or error log, a readable message with every
refusal, nothing stored from a refused request, only the route's own effect from an accepted
one, and the app still answers afterwards."""

import pytest
from hypothesis import given, settings

from webapp import create_app
from webapp.config import TestConfig

from .fuzzing import (
    ErrorLog,
    FuzzSession,
    check_changes,
    count_case,
    examples,
    http_effects,
    http_requests,
    seed,
    send_http,
    snapshot,
)

# Every (rule, method) the app serves, read from its URL map: a new route is fuzzed by itself.
ROUTES = sorted(
    (rule.rule, rule.endpoint, method)
    for rule in create_app(TestConfig).url_map.iter_rules()
    for method in rule.methods
)
CASES_PER_ROUTE = 65


def find_rule(app, path: str, endpoint: str):
    return next(r for r in app.url_map.iter_rules() if (r.rule, r.endpoint) == (path, endpoint))


def check_response(response, method: str) -> None:
    """A 5xx is a bug; a refusal says why (as JSON when JSON was answered)."""
    status = response.status_code
    body = response.get_data()  # also runs a streamed body to its end
    assert status < 500, f"{status}: {body[:1000]!r}"
    if method == "HEAD":
        return
    if status >= 400 and response.is_json:
        data = response.get_json()
        assert data["ok"] is False and isinstance(data["error"], str) and data["error"].strip()
    elif status in (400, 404, 405, 413, 422):
        assert body.strip(), f"{status} without a message"


@pytest.mark.parametrize("logged_in", [False, True], ids=["anonymous", "logged-in"])
@pytest.mark.parametrize(
    ("path", "endpoint", "method"), ROUTES, ids=[f"{m} {p}" for p, _e, m in ROUTES]
)
def test_route_survives_hostile_input(app, path, endpoint, method, logged_in):
    seed(app)
    rule = find_rule(app, path, endpoint)
    session = FuzzSession(app, logged_in)
    known = {}  # the state after the last case that ran to its end

    @settings(max_examples=examples(CASES_PER_ROUTE))
    @given(request=http_requests(rule, method))
    def fuzz(request):
        before = known.pop("state", None)
        if before is None:
            with app.app_context():
                before = snapshot()
        with ErrorLog() as errors:
            response = send_http(session.client, request, session.token)
            check_response(response, method)
            assert not errors.take(), "error logged"
        with app.app_context():
            after = snapshot()
        if response.status_code >= 400:
            check_changes(before, after, {}, f"refused {method} {path}")
        else:
            check_changes(before, after, http_effects(endpoint, method), f"{method} {path}")
        session.check(response)
        # The app still answers a normal request.
        assert session.client.get("/healthz").status_code == 200
        known["state"] = after
        count_case("http", f"{response.status_code // 100}xx")

    fuzz()


# Found by the fuzzer ------------------------------------------------------------------------


def test_ids_beyond_64_bits_are_absent_rows_not_errors(client, browser):
    """Ids are INTEGER columns; bigger ones in a query or path once gave a 500 (2**31 and up on
    PostgreSQL, 2**63 and up on SQLite)."""
    browser.post("/table/rows", {"a": "1", "b": "2"})
    for huge in (str(2**31), str(2**63)):
        assert client.get(f"/table/rows?after={huge}").status_code == 200
        assert 'id="row-1"' in client.get(f"/table/rows?before={huge}").get_data(as_text=True)
        assert browser.delete(f"/table/rows/{huge}").status_code == 404
    assert client.get(f"/table/rows?after={-(10**30)}").status_code == 200
    assert client.get("/table/rows?before=2").get_data(as_text=True).count('id="row-1"') == 1


def test_message_ids_beyond_64_bits_are_absent_messages(accounts):
    alice = accounts("alice")
    assert alice.browser.post("/chat/general/messages", {"body": "hi"}).status_code == 201
    for query in (f"after={2**31}", f"before={2**31}", f"after={2**63}", f"after={-(2**70)}"):
        response = alice.client.get(
            f"/chat/general/messages?{query}", headers={"Accept": "application/json"}
        )
        assert response.status_code == 200, query
    page = alice.client.get(
        f"/chat/general/messages?before={2**64}", headers={"Accept": "application/json"}
    ).get_json()
    assert [m["body"] for m in page["messages"]] == ["hi"]
