"""Device cookies: a browser where a user logged in before is not locked out by strangers.

Failed logins are limited per username, against passwords guessed from many addresses; but a
limit that anyone can exhaust would let a stranger lock any user out. So, after OWASP's "device
cookies" (https://owasp.org/www-community/Slow_Down_Online_Guessing_Attacks_with_Device_Cookies):

- A browser that logs in (or registers) successfully as a user gets a signed, long-lived,
  HttpOnly cookie naming that user (the last few users who logged in there) and a random id of
  the device. Only this app can make one (it is signed with ``SECRET_KEY``); it is no login by
  itself, only a say on which limit counts the attempt.
- A login attempt whose cookie names the username it tries is trusted: its failures count
  against that device alone (``RATELIMIT_LOGIN_PER_DEVICE``), not against the username.
- Every other attempt is untrusted: its failures count against the username, from anywhere
  (``RATELIMIT_LOGIN_PER_USERNAME``).
- Every attempt counts against its address (``RATELIMIT_LOGIN_PER_IP``).

So a stranger's guesses lock out only untrusted attempts for that name: the user still logs in
from every browser where they logged in before. The trade-off: while someone guesses their
password, the user's first login from a new browser waits too (429 saying so and for how long).
Logging out keeps the cookie (it names a browser, not a session).
"""

import secrets

from flask import Response, current_app, request
from itsdangerous import BadData, URLSafeTimedSerializer

COOKIE = "login_device"
SALT = "login-device"
# Users remembered per browser (a shared family computer); the oldest is dropped first.
USERS_MAX = 5


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=SALT)


def _max_age() -> int:
    return int(current_app.config["LOGIN_DEVICE_COOKIE_DAYS"] * 86400)


def _read() -> dict | None:
    """The request's device cookie when it is one this app signed and not expired."""
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    try:
        data = _serializer().loads(value, max_age=_max_age())
    except BadData:
        return None
    valid = (
        isinstance(data, dict)
        and isinstance(data.get("d"), str)
        and isinstance(data.get("u"), list)
        and all(isinstance(name, str) for name in data["u"])
    )
    return data if valid else None


def trusted_device(username) -> str | None:
    """The id of this browser when it logged in as ``username`` before (any case), else None."""
    if not isinstance(username, str) or not username.strip():
        return None
    data = _read()
    if data is None or username.strip().lower() not in data["u"]:
        return None
    return data["d"]


def remember(response: Response, username_key: str) -> Response:
    """Mark this browser as one where ``username_key`` logged in (after a successful login)."""
    data = _read() or {"d": secrets.token_urlsafe(16), "u": []}
    users = [username_key, *(name for name in data["u"] if name != username_key)][:USERS_MAX]
    response.set_cookie(
        COOKIE,
        _serializer().dumps({"d": data["d"], "u": users}),
        max_age=_max_age(),
        path="/",
        httponly=True,
        samesite="Lax",
        # Secure wherever the session cookie is (always with SESSION_COOKIE_SECURE, else over
        # HTTPS), so the cookie never travels in the clear once the site is served over TLS.
        secure=current_app.session_interface.get_cookie_secure(current_app),
    )
    return response
