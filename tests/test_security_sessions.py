"""Session cookies: HttpOnly and SameSite=Lax always, Secure when the request came over HTTPS,
also through a proxy, which is trusted only when ProxyFix is configured."""

import pytest

from webapp import create_app

from .conftest import PASSWORD, Account, make_config

HTTPS_PROXY = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "chat.example.com",
    "X-Forwarded-For": "203.0.113.7",
}


def app_with(tmp_path, **settings):
    import flask_migrate

    base = make_config(f"sqlite:///{tmp_path / 'cookies.db'}")
    app = create_app(type("C", (base,), settings))
    with app.app_context():
        flask_migrate.upgrade()
    return app


def session_cookie(response) -> str:
    [cookie] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    return cookie


def device_cookie(response) -> str:
    [cookie] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("login_device=")]
    return cookie


def attributes(cookie: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}


def test_session_cookie_is_httponly_and_samesite_lax_and_not_secure_over_http(client):
    cookie = session_cookie(client.get("/"))
    assert "httponly" in attributes(cookie) and "SameSite=Lax" in cookie
    assert "secure" not in attributes(cookie)


def test_session_cookie_is_secure_when_served_over_https(app):
    cookie = session_cookie(app.test_client().get("/", base_url="https://localhost"))
    assert {"secure", "httponly"} <= attributes(cookie) and "SameSite=Lax" in cookie


def test_behind_a_configured_proxy_forwarded_https_makes_the_cookie_secure(tmp_path):
    app = app_with(tmp_path, PROXY_FIX_FOR=1, PROXY_FIX_PROTO=1, PROXY_FIX_HOST=1, PROXY_FIX_PORT=1)
    client = app.test_client()
    secure = session_cookie(client.get("/", headers=HTTPS_PROXY))
    assert {"secure", "httponly"} <= attributes(secure) and "SameSite=Lax" in secure
    plain = session_cookie(app.test_client().get("/", headers={"X-Forwarded-Proto": "http"}))
    assert "secure" not in attributes(plain)
    # A login through the proxy: the fresh session's cookie is Secure too. (Over HTTPS the CSRF
    # check also wants a Referer from the proxy's host, as browsers send it.)
    Account(app, "alice")
    client = app.test_client()
    token = client.get("/", headers=HTTPS_PROXY).get_data(as_text=True)
    token = token.split('name="csrf-token" content="')[1].split('"')[0]
    response = client.post(
        "/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": token},
        headers={**HTTPS_PROXY, "Referer": "https://chat.example.com/login"},
    )
    assert response.status_code == 303
    assert "secure" in attributes(session_cookie(response))
    assert {"secure", "httponly"} <= attributes(device_cookie(response))
    assert client.get("/chat", headers=HTTPS_PROXY).status_code == 200


def test_without_proxyfix_forwarded_headers_are_ignored(app):
    response = app.test_client().get("/", headers=HTTPS_PROXY)
    assert "secure" not in attributes(session_cookie(response))


@pytest.mark.parametrize("proxied", [False, True])
def test_the_client_address_comes_from_the_proxy_only_when_configured(tmp_path, proxied):
    """Rate limits count the address ProxyFix gives: forwarded ones only from a trusted proxy."""
    hops = {"PROXY_FIX_FOR": 1} if proxied else {}
    app = app_with(
        tmp_path, RATELIMIT_ENABLED=True, RATELIMIT_ROWS_PER_CLIENT="1 per minute", **hops
    )
    client = app.test_client()
    token = client.get("/").get_data(as_text=True)
    token = token.split('name="csrf-token" content="')[1].split('"')[0]
    statuses = [
        client.post(
            "/table/rows",
            data={"a": "1", "b": "1"},
            headers={
                "X-CSRFToken": token,
                "HX-Request": "true",
                "X-Forwarded-For": f"203.0.113.{n}",
            },
        ).status_code
        for n in (1, 2)
    ]
    # Behind the proxy these are two clients; without it, one peer that forges the header.
    assert statuses == ([201, 201] if proxied else [201, 429])


def test_login_sets_no_remember_cookie(app, browser, client):
    Account(app, "alice")
    response = browser.post("/login", {"username": "alice", "password": PASSWORD}, htmx=False)
    names = {c.split("=")[0] for c in response.headers.getlist("Set-Cookie")}
    # The device cookie (webapp/auth/devices.py) only picks a rate limit; it logs nobody in.
    assert names == {"session", "login_device"}
    cookie = device_cookie(response)
    assert {"httponly", "max-age"} <= attributes(cookie) and "SameSite=Lax" in cookie
    assert "secure" not in attributes(cookie)  # plain HTTP here
    stranger = app.test_client()
    stranger.set_cookie("login_device", cookie.split(";")[0].split("=", 1)[1])
    assert stranger.get("/chat").status_code == 302


def test_session_cookie_secure_can_be_forced(tmp_path):
    app = app_with(tmp_path, SESSION_COOKIE_SECURE=True)
    assert "secure" in attributes(session_cookie(app.test_client().get("/")))
