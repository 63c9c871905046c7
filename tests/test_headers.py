"""Every kind of response carries the strict Content-Security-Policy, nosniff and a
Referrer-Policy: pages, fragments, JSON, redirects, error pages, static files, CSV, health."""

import pytest

STRICT_REFERRER_POLICIES = {
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
}


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        if part.strip():
            name, *sources = part.split()
            parsed[name.lower()] = sources
    return parsed


def check_security_headers(response) -> None:
    policy = response.headers.get("Content-Security-Policy")
    assert policy, "no Content-Security-Policy"
    found = directives(policy)
    assert found.get("frame-ancestors") == ["'none'"], policy
    script = found.get("script-src", found.get("default-src"))
    assert script and set(script) <= {"'self'"}, f"scripts from elsewhere: {policy}"
    assert found.get("object-src") == ["'none'"] or set(found["default-src"]) <= {"'self'"}
    for bad in ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "data:", "*"):
        for name in ("default-src", "script-src", "script-src-elem", "script-src-attr"):
            assert bad not in found.get(name, []), f"{bad} in {name}: {policy}"
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert response.headers.get("Referrer-Policy") in STRICT_REFERRER_POLICIES


JSON = {"Accept": "application/json"}
HTMX = {"HX-Request": "true"}

# (what, method, path, form, headers, logged in, expected status): one of every kind.
RESPONSES = [
    ("full page", "GET", "/", None, {}, False, 200),
    ("chat page", "GET", "/chat/general", None, {}, True, 200),
    ("htmx fragment", "GET", "/table/rows?before=99", None, HTMX, False, 200),
    ("htmx form answer", "POST", "/table/rows", {"a": "1", "b": "2"}, HTMX, False, 201),
    ("JSON", "POST", "/table/rows", {"a": "1", "b": "2"}, JSON, False, 201),
    ("JSON members", "GET", "/chat/general/members", None, JSON, True, 200),
    ("JSON error", "POST", "/table/rows", {"a": "x", "b": "2"}, JSON, False, 422),
    ("redirect after a form", "POST", "/logout", {}, {}, True, 303),
    ("redirect to log in", "GET", "/chat", None, {}, False, 302),
    ("401 for htmx", "GET", "/chat", None, HTMX, False, 401),
    ("404 page", "GET", "/no/such/page", None, {}, False, 404),
    ("404 fragment", "DELETE", "/table/rows/999", None, HTMX, False, 404),
    ("405 page", "GET", "/logout", None, {}, False, 405),
    (
        "400 page (no CSRF token)",
        "POST",
        "/table/rows",
        {"a": "1", "b": "2"},
        "no-token",
        False,
        400,
    ),
    ("400 bad query", "GET", "/table/rows?after=x", None, {}, False, 400),
    ("422 page", "POST", "/table/rows", {"a": "x", "b": "2"}, {}, False, 422),
    ("422 fragment", "POST", "/table/rows", {"a": "x", "b": "2"}, HTMX, False, 422),
    ("422 login form", "POST", "/login", {"username": "x", "password": "y"}, {}, False, 422),
    ("static file", "GET", "/static/js/realtime.js", None, {}, False, 200),
    ("static 404", "GET", "/static/js/nope.js", None, {}, False, 404),
    ("health", "GET", "/healthz", None, {}, False, 200),
    ("CSV", "GET", "/table/rows.csv", None, {}, False, 200),
    ("HEAD", "HEAD", "/", None, {}, False, 200),
    ("OPTIONS", "OPTIONS", "/table/rows", None, {}, False, 200),
    ("Socket.IO refusal", "GET", "/socket.io/?EIO=4&transport=polling", None, {}, False, 400),
]


@pytest.mark.parametrize(
    ("what", "method", "path", "form", "headers", "logged_in", "status"),
    RESPONSES,
    ids=[r[0] for r in RESPONSES],
)
def test_every_kind_of_response_carries_the_security_headers(
    app, client, browser, accounts, what, method, path, form, headers, logged_in, status
):
    user = accounts("alice") if logged_in else None
    client = user.client if user else client
    browser = user.browser if user else browser
    request_headers = {} if headers == "no-token" else {"X-CSRFToken": browser.token, **headers}
    response = client.open(path, method=method, data=form, headers=request_headers)
    response.get_data()
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    check_security_headers(response)


def test_the_check_catches_a_weak_policy():
    from werkzeug.wrappers import Response

    weak = Response(
        headers={
            "Content-Security-Policy": "default-src 'self'; script-src 'self' "
            "'unsafe-inline'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        }
    )
    with pytest.raises(AssertionError, match="unsafe-inline"):
        check_security_headers(weak)
    weak.headers["Content-Security-Policy"] = "default-src 'self'; script-src 'self'"
    with pytest.raises(AssertionError):
        check_security_headers(weak)  # may be framed
