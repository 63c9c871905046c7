"""Security headers on every response (a strict Content-Security-Policy and friends), and the
origins allowed to open a socket.

Every script and style comes from a file under /static (no inline script, no inline event
handler, no style attribute, htmx without eval), so the policy can forbid everything else.
``CONTENT_SECURITY_POLICY`` in the environment replaces it; set it empty to send none.
"""

import re

from flask import Flask, has_request_context, request
from flask.sessions import SecureCookieSessionInterface

ORIGIN = re.compile(r"https?://[^/\s?#*]+")

STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with a Secure cookie whenever the request came over HTTPS.

    Served over HTTPS directly, or behind a proxy that says so in X-Forwarded-Proto (trusted only
    when ProxyFix is configured, PROXY_FIX_* in webapp/config.py), the browser then never sends
    the cookie over plain HTTP. SESSION_COOKIE_SECURE=1 makes it Secure always.
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (
            has_request_context() and request.is_secure
        )


def register(app: Flask) -> None:
    app.session_interface = SessionInterface()
    policy = app.config["CONTENT_SECURITY_POLICY"]
    if policy is None:
        policy = STRICT_CSP
    headers = [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin")]
    if policy:
        headers.insert(0, ("Content-Security-Policy", policy))
    app.wsgi_app = security_headers(app.wsgi_app, headers)


def security_headers(wsgi_app, headers: list[tuple[str, str]]):
    """Add ``headers`` to every response that does not set them itself.

    Around the whole WSGI app rather than in an after_request hook, so that what the Socket.IO
    endpoint answers by itself (its 400s and 403s) carries them too.
    """
    names = [name.lower() for name, _value in headers]

    def app(environ, start_response):
        def start(status, response_headers, exc_info=None):
            if not status.startswith("101"):
                present = {name.lower() for name, _value in response_headers}
                response_headers = list(response_headers) + [
                    header for header, name in zip(headers, names) if name not in present
                ]
            return start_response(status, response_headers, exc_info)

        return wsgi_app(environ, start)

    return app


def socket_origin_check(extra_origins: list[str]):
    """``cors_allowed_origins`` for Socket.IO: the page's own origin, plus ``extra_origins``.

    python-engineio's own check (``None``) knows only the page's origin, and a list given to it
    replaces that rule; this check keeps the page's origin and adds the listed ones. The page's
    origin is the request's scheme and Host, or what a proxy forwarded in ``X-Forwarded-Proto``
    and ``X-Forwarded-Host`` (as engineio does; a ProxyFix in front has already put them into
    the scheme and Host). A browser cannot set those headers on a websocket from a foreign page,
    so a foreign page cannot pass for the app's own.
    """
    listed = frozenset(origin.rstrip("/").lower() for origin in extra_origins)

    def allowed(origin: str | None, environ: dict) -> bool:
        if not origin:  # not a browser: engineio does not check such requests
            return True
        origin = origin.lower()
        return origin in listed or origin in own_origins(environ)

    return allowed


def own_origins(environ: dict) -> set[str]:
    """The origins the page that opened this request may have: direct, and through a proxy."""
    scheme, host = environ.get("wsgi.url_scheme", "http"), environ.get("HTTP_HOST")
    origins = {f"{scheme}://{host}".lower()} if host else set()
    forwarded_proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[0].strip()
    forwarded_host = environ.get("HTTP_X_FORWARDED_HOST", "").split(",")[0].strip()
    if (forwarded_proto or forwarded_host) and (forwarded_host or host):
        origins.add(f"{forwarded_proto or scheme}://{forwarded_host or host}".lower())
    return origins


def check_socket_origins(origins: list[str]) -> None:
    """Refuse SOCKETIO_ALLOWED_ORIGINS entries that could never match a browser's Origin."""
    for origin in origins:
        if origin == "*" or not ORIGIN.fullmatch(origin.rstrip("/")):
            raise RuntimeError(
                f"SOCKETIO_ALLOWED_ORIGINS: {origin!r} is not an origin. List origins as "
                "scheme://host[:port], comma separated (e.g. https://chat.example.com); the "
                "app's own origin is always allowed, and '*' is never."
            )
