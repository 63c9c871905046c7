"""Rate limits (Flask-Limiter): logins and registrations per address and per username, new table
rows per client, rooms per user, socket connections per address, chat edits and presence changes
per user.

A failed login from a browser where that user logged in before counts against that browser (its
device cookie: webapp/auth/devices.py states the rule); any other failed login counts against
the username. So a stranger's guesses cannot lock a user out of their own browsers.

Each app gets a limiter of its own (a module-level one would carry one app's storage and switches
into the next, as the tests create many apps). The counters live in Redis when one is configured
(``RATELIMIT_STORAGE_URL``, else ``PRESENCE_URL`` or ``MESSAGE_QUEUE_URL`` when they are
redis://...), so every worker and host counts together; else in process memory. When Redis
cannot be reached the limits are counted in this process's memory until it is back: an outage
never turns a request into a 500, and the limits still hold per worker.

The client's address is ``request.remote_addr``: the peer, or what a trusted proxy forwarded
once ProxyFix is configured (``PROXY_FIX_*`` in webapp/config.py).
"""

import contextlib
import logging
import math
import time
from typing import NamedTuple

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import STRATEGIES

from . import redis_client
from .auth import devices
from .config import presence_url, ratelimit_key_prefix
from .errors import ValidationError

log = logging.getLogger(__name__)

# After the storage failed, count socket connections in memory this long before trying again
# (a Redis that hangs would otherwise cost every connection its timeout).
STORAGE_RETRY_SECONDS = 10.0


class Rule(NamedTuple):
    """One limit on a view: its setting, what it counts per, and which requests count."""

    setting: str
    key: str  # a name in KEY_FUNCTIONS
    message: str
    # Which answers are counted: "all" or "failures" (a 4xx: a login that did not log in).
    counts: str = "all"
    # A name in EXEMPTIONS: requests it is true for are not counted nor refused by this rule.
    unless: str | None = None


RULES = {
    "auth.login": [
        Rule("RATELIMIT_LOGIN_PER_IP", "address", "Too many login attempts from your address."),
        # Attempts from a browser where the user logged in before (webapp/auth/devices.py)
        # count against that browser, all others against the username: a stranger's guesses
        # cannot lock the user out of their own browsers.
        Rule(
            "RATELIMIT_LOGIN_PER_USERNAME",
            "username",
            "Too many failed logins for this username from browsers it has not logged in "
            "from before.",
            counts="failures",
            unless="trusted_device",
        ),
        Rule(
            "RATELIMIT_LOGIN_PER_DEVICE",
            "device",
            "Too many failed logins from this browser.",
            counts="failures",
            unless="untrusted_device",
        ),
    ],
    "auth.register": [
        Rule(
            "RATELIMIT_REGISTER_PER_IP", "address", "Too many accounts created from your address."
        ),
        Rule(
            "RATELIMIT_REGISTER_PER_USERNAME",
            "username",
            "Too many attempts to register this username.",
        ),
    ],
    "table.add_row": [
        Rule("RATELIMIT_ROWS_PER_CLIENT", "client", "Too many rows added."),
    ],
}

# Limits counted by the code they guard (socket events, a route): setting -> what a refusal says.
MESSAGES = {
    "RATELIMIT_ROOMS_PER_USER": "Too many new rooms.",
    "RATELIMIT_MEMBERS_PER_USER": "Too many members added.",
    "RATELIMIT_DIRECT_PER_USER": "Too many direct conversations started.",
    "RATELIMIT_EDITS_PER_USER": "Too many edits.",
    "RATELIMIT_PRESENCE_PER_USER": "Too many status changes.",
}


class TooMany(ValidationError):
    """An action over its rate limit; ``retry_after`` seconds until it is allowed again."""

    status = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


_warned_about_proxy = False


def client_address() -> str:
    global _warned_about_proxy
    if (
        not _warned_about_proxy
        and "X-Forwarded-For" in request.headers
        and not current_app.config["PROXY_FIX_FOR"]
    ):
        # Every client would count as the proxy's one address and share its limits.
        _warned_about_proxy = True
        log.warning(
            "requests arrive through a proxy (X-Forwarded-For) but PROXY_FIX_HOPS is "
            "not set: rate limits count every client as the proxy's address. Set "
            "PROXY_FIX_HOPS to the number of proxies in front of the app."
        )
    return "ip:" + (request.remote_addr or "unknown")


def submitted_username() -> str:
    """The username a login or registration form names (any case); '' skips the limit."""
    name = request.form.get("username", "")
    name = name.strip().lower()[:64] if isinstance(name, str) else ""
    return "user:" + name if name else ""


def trusted_device() -> bool:
    """The login names a user who logged in from this browser before."""
    return devices.trusted_device(request.form.get("username")) is not None


def device() -> str:
    return "device:" + (devices.trusted_device(request.form.get("username")) or "")


def client_identity() -> str:
    """A logged-in user counts as themselves wherever they are; others by address."""
    if current_user.is_authenticated:
        return f"account:{current_user.id}"
    return client_address()


KEY_FUNCTIONS = {
    "address": client_address,
    "username": submitted_username,
    "device": device,
    "client": client_identity,
}

EXEMPTIONS = {
    "trusted_device": trusted_device,
    "untrusted_device": lambda: not trusted_device(),
}


def storage_url(config) -> str:
    """RATELIMIT_STORAGE_URL, else the Redis of presence (see webapp/config.py), else memory."""
    url = config["RATELIMIT_STORAGE_URL"] or presence_url(config) or "memory://"
    # The limits library names a Redis socket redis+unix://.
    return "redis+" + url if url.startswith("unix://") else url


def _failed(response) -> bool:
    """A login that did not log in (the form came back with an error)."""
    return response.status_code >= 400


DEDUCT_WHEN = {"all": None, "failures": _failed}


def init_app(app: Flask) -> None:
    """Bind a limiter of its own to ``app`` and put the limits on the views they guard."""
    url = storage_url(app.config)
    options = {}
    if url.startswith(("redis", "rediss")):
        # A Redis that hangs must not hang the request: give up soon and count in memory.
        options = redis_client.options()
    limiter = Limiter(
        key_func=client_address,
        storage_uri=url,
        storage_options=options,
        strategy=app.config["RATELIMIT_STRATEGY"],
        key_prefix=ratelimit_key_prefix(app.config),
        swallow_errors=True,
        in_memory_fallback_enabled=True,
        headers_enabled=False,
        enabled=app.config["RATELIMIT_ENABLED"],
    )
    app.config["RATELIMIT_ENABLED"] = bool(app.config["RATELIMIT_ENABLED"])
    limiter.init_app(app)
    app.extensions["rate_limits"] = RateLimits(app, limiter)
    if not limiter.enabled:
        return
    for endpoint, rules in RULES.items():
        view = app.view_functions[endpoint]
        for rule in rules:
            view = limiter.limit(
                app.config[rule.setting],
                key_func=KEY_FUNCTIONS[rule.key],
                methods=["POST"],
                deduct_when=DEDUCT_WHEN[rule.counts],
                exempt_when=EXEMPTIONS[rule.unless] if rule.unless else None,
                error_message=rule.message,
            )(view)
        app.view_functions[endpoint] = view


class RateLimits:
    """Counting outside Flask-Limiter's view decorators (socket connections), same storage."""

    def __init__(self, app: Flask, limiter: Limiter):
        self.limiter = limiter
        self.prefix = ratelimit_key_prefix(app.config)
        self.strategy = app.config["RATELIMIT_STRATEGY"]
        self._fallback = STRATEGIES[self.strategy](MemoryStorage())
        self._storage_down_until = 0.0

    def hit(self, setting: str, key: str, count: bool = True) -> int | None:
        """Count one event of ``key`` against the limits in ``setting`` (only look when
        ``count`` is False).

        None when allowed, else the seconds until it would be allowed again.
        """
        if not self.limiter.enabled:
            return None
        items = parse_many(current_app.config[setting])
        if time.monotonic() >= self._storage_down_until:
            try:
                return self._hit(self.limiter.limiter, items, setting, key, count)
            except Exception:  # noqa: BLE001 - the storage is down: count in this process for a while
                log.warning("rate limit storage unreachable; counting %s in memory", setting)
                self._storage_down_until = time.monotonic() + STORAGE_RETRY_SECONDS
        return self._hit(self._fallback, items, setting, key, count)

    def check(self, setting: str, key: str, count: bool = True) -> None:
        """Count one event of ``key`` (look only, unless ``count``); TooMany over the limit."""
        wait = self.hit(setting, key, count)
        if wait is not None:
            plural = "s" if wait != 1 else ""
            raise TooMany(f"{MESSAGES[setting]} Try again in {wait} second{plural}.", wait)

    def _hit(self, strategy, items, setting: str, key: str, count: bool) -> int | None:
        for item in items:
            allowed = (strategy.hit if count else strategy.test)(item, self.prefix, setting, key)
            if not allowed:
                reset = strategy.get_window_stats(item, self.prefix, setting, key).reset_time
                return max(1, math.ceil(reset - time.time()))
        return None


def hit(setting: str, key: str) -> int | None:
    """Count one event of ``key`` (an address) against ``setting``: None when allowed, else the
    seconds until it would be."""
    return current_app.extensions["rate_limits"].hit(setting, key)


def limit_user(setting: str, user) -> None:
    """Count one action of ``user`` against ``setting`` (a socket event); TooMany over it."""
    current_app.extensions["rate_limits"].check(setting, f"account:{user.id}")


@contextlib.contextmanager
def counted_if_done(setting: str, user):
    """Refuse (TooMany) when ``user`` is at the limit of ``setting``; count the action only
    when the block completes (a room name that was refused costs nothing)."""
    limits, key = current_app.extensions["rate_limits"], f"account:{user.id}"
    limits.check(setting, key, count=False)
    yield
    limits.hit(setting, key)


def retry_after(error: RateLimitExceeded) -> int:
    """Whole seconds until the limit that was exceeded lets the client in again."""
    limiter = next(iter(current_app.extensions.get("limiter", ())), None)
    # The storage may have gone away between the check and now.
    with contextlib.suppress(Exception):
        current = limiter.current_limit if limiter else None
        if current is not None:
            return max(1, math.ceil(current.window.reset_time - time.time()))
    return max(1, int(error.limit.limit.get_expiry()))


def exceeded_message(error: RateLimitExceeded, seconds: int) -> str:
    return f"{error.description} Try again in {seconds} second{'s' if seconds != 1 else ''}."
