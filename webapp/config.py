"""Configuration read from the environment, with embedded defaults for one host.

Every setting is read here, and nowhere else: ``Config`` (and ``TestConfig``) for the app,
``Server`` for gunicorn. gunicorn.conf.py loads this file by itself, without importing the app
(the master must not: each worker imports the app after gevent's monkey patch), so it imports
nothing but the standard library.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"
# URLs of a Redis server (TCP, TLS, or a local socket): presence, rate limits, health checks.
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
# URLs of a message queue that relays events between workers (webapp/realtime/transport/relay.py).
QUEUE_SCHEMES = ("redis://", "rediss://", "amqp://", "amqps://")


def _secret_key() -> str | None:
    """SECRET_KEY from the environment, else the file `make run` writes into instance/."""
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    path = INSTANCE / "secret_key"
    if path.is_file():
        return path.read_text().strip() or None
    return None


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{INSTANCE / 'webapp.db'}"
    # Hosted providers still hand out postgres:// URLs; psycopg 3 is the driver we ship.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


# The engine options that go with webapp/dbpool.py's pool guards (it pings and resets itself).
POOL_GUARDS = {"pool_pre_ping": False, "pool_reset_on_return": None}


def _env_int(name: str, default: int, minimum: int | None = None) -> int:
    """A whole number from the environment; below ``minimum`` stops the app."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise RuntimeError(f"{name}={value!r} is not a whole number.") from None
    if minimum is not None and number < minimum:
        raise RuntimeError(f"{name} must be {minimum} (off) or more.")
    return number


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise RuntimeError(f"{name}={value!r} is not a number.") from None


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise RuntimeError(f"{name}={value!r}: use 1 or 0.")


def engine_options(url: str) -> dict:
    """SQLAlchemy engine options for ``url``: pool and timeouts for PostgreSQL, from the env.

    Every worker (and host) has its own pool, so the database sees up to
    workers x hosts x (DB_POOL_SIZE + DB_MAX_OVERFLOW) connections. The connect and statement
    timeouts keep a worker from hanging on a database that stopped answering. Every pool pings
    a connection before handing it out and resets it on return (webapp/dbpool.py).
    """
    if not url.startswith("postgresql"):
        return {**POOL_GUARDS}
    statement_timeout_ms = int(_env_number("DB_STATEMENT_TIMEOUT", 30) * 1000)
    return {
        **POOL_GUARDS,
        "pool_size": int(_env_number("DB_POOL_SIZE", 5)),
        "max_overflow": int(_env_number("DB_MAX_OVERFLOW", 10)),
        "pool_timeout": _env_number("DB_POOL_TIMEOUT", 10),
        # Drop connections before a firewall or the server forgets idle ones.
        "pool_recycle": int(_env_number("DB_POOL_RECYCLE", 1800)),
        "connect_args": {
            "connect_timeout": max(1, int(_env_number("DB_CONNECT_TIMEOUT", 3))),
            "options": f"-c statement_timeout={statement_timeout_ms}",
            "application_name": os.environ.get("DB_APPLICATION_NAME", "webapp"),
        },
    }


class Config:
    SECRET_KEY = _secret_key()
    SQLALCHEMY_DATABASE_URI = _database_url()
    SQLALCHEMY_ENGINE_OPTIONS = engine_options(SQLALCHEMY_DATABASE_URI)
    MESSAGE_QUEUE_URL = os.environ.get("MESSAGE_QUEUE_URL") or None
    # The queue channel: hosts that share one queue and one database must use the same name.
    SOCKETIO_CHANNEL = os.environ.get("SOCKETIO_CHANNEL", "flask-socketio")
    # Extra origins allowed to open a socket (comma separated); same origin is always allowed.
    SOCKETIO_ALLOWED_ORIGINS = tuple(
        o.strip() for o in os.environ.get("SOCKETIO_ALLOWED_ORIGINS", "").split(",") if o.strip()
    )
    # A tab stays open for days: the CSRF token lives as long as the session.
    WTF_CSRF_TIME_LIMIT = None
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # The session cookie is Secure on every request that came over HTTPS (webapp/security.py);
    # SESSION_COOKIE_SECURE=1 makes it Secure always. No remember-me cookie is ever issued.
    SESSION_COOKIE_SECURE = _env_flag("SESSION_COOKIE_SECURE", False)
    TABLE_PAGE_SIZE = 50
    CHAT_PAGE_SIZE = 50
    # Every live list (webapp/realtime/live_list.py): a catch-up (?after=ID) brings at most this
    # many items (more: the page reloads the list), a page (?before=ID&limit=N) at most this many.
    LIVE_LIST_CATCHUP_MAX = int(_env_number("LIVE_LIST_CATCHUP_MAX", 1000))
    LIVE_LIST_PAGE_MAX = 200
    # A chat page lists general, the viewer's rooms (up to this many) and up to this many
    # others, the most active among the rooms of the newest messages (this many of them) first;
    # "All rooms" lists every room, a page of this many at a time. So a page stays the same
    # size however many rooms exist.
    CHAT_ROOM_LIST_MEMBER_MAX = 100
    CHAT_ROOM_LIST_OTHERS_MAX = 20
    CHAT_ROOM_LIST_ACTIVITY_WINDOW = 1000
    CHAT_ROOMS_PAGE_SIZE = 50
    # A message notifies at most this many of the people it names (@username), the first ones.
    CHAT_MENTIONS_MAX = 20
    # The composer's @ completion offers at most this many of the room's members at once.
    CHAT_MENTION_CHOICES_MAX = 8
    # The outbox (webapp/realtime/outbox.py). Events are kept this long for clients that catch
    # up by number. Every server worker relays an event that was committed but never published
    # (by the command line without a queue, a killed worker) within about OUTBOX_RELAY_INTERVAL
    # + OUTBOX_RELAY_GRACE seconds; OUTBOX_RELAY=0 turns that off.
    OUTBOX_RETENTION_SECONDS = _env_number("OUTBOX_RETENTION_SECONDS", 6 * 3600)
    OUTBOX_RELAY = _env_flag("OUTBOX_RELAY", True)
    OUTBOX_RELAY_INTERVAL = _env_number("OUTBOX_RELAY_INTERVAL", 0.5)
    OUTBOX_RELAY_GRACE = _env_number("OUTBOX_RELAY_GRACE", 0.4)
    # GET /events answers at most this many events at once (a client asks again from the last).
    EVENTS_PAGE_MAX = int(_env_number("EVENTS_PAGE_MAX", 500))
    # stream:head goes to a stream's sockets at most this often, once its last event was sent.
    STREAM_HEAD_INTERVAL = _env_number("STREAM_HEAD_INTERVAL", 2.0)
    # Where presence, flood control and typing throttles live; default: MESSAGE_QUEUE_URL when
    # it is redis://..., else process memory (right for one process only). See presence_url().
    PRESENCE_URL = os.environ.get("PRESENCE_URL") or None
    # Its keys start with this (None: "<SOCKETIO_CHANNEL>:presence:"; tests set their own).
    PRESENCE_KEY_PREFIX = None
    # Each worker refreshes its heartbeat this often; a worker silent for PRESENCE_TTL_SECONDS
    # is dead and its users' connections are dropped by any other worker's reaper.
    PRESENCE_HEARTBEAT_SECONDS = 5.0
    PRESENCE_TTL_SECONDS = 15.0
    # The heartbeat and reaper run in the background (tests drive them by hand).
    PRESENCE_BACKGROUND = True
    # Behind a reverse proxy: how many proxies set each X-Forwarded-* header (ProxyFix). Off
    # (0) by default, because without a proxy in front anyone could send these headers. With
    # one nginx in front: PROXY_FIX_HOPS=1 (For, Proto, Host and Port; PROXY_FIX_FOR and so on
    # set one header's count). Then the client's address, the scheme (Secure cookies, the
    # socket's origin check) and the host are the ones the proxy saw.
    PROXY_FIX_FOR = int(_env_number("PROXY_FIX_FOR", _env_number("PROXY_FIX_HOPS", 0)))
    PROXY_FIX_PROTO = int(_env_number("PROXY_FIX_PROTO", _env_number("PROXY_FIX_HOPS", 0)))
    PROXY_FIX_HOST = int(_env_number("PROXY_FIX_HOST", _env_number("PROXY_FIX_HOPS", 0)))
    PROXY_FIX_PORT = int(_env_number("PROXY_FIX_PORT", _env_number("PROXY_FIX_HOPS", 0)))
    PROXY_FIX_PREFIX = int(_env_number("PROXY_FIX_PREFIX", 0))
    # Largest HTTP request body (413 above it). The app needs a message of 2000 characters (up
    # to 8 KB in UTF-8) or a form of a few fields: 64 KiB leaves room.
    MAX_CONTENT_LENGTH = int(_env_number("MAX_CONTENT_LENGTH", 64 * 1024))
    # Largest Socket.IO message; a client that sends a bigger one is disconnected (only it).
    SOCKETIO_MAX_MESSAGE_SIZE = int(_env_number("SOCKETIO_MAX_MESSAGE_SIZE", 64 * 1024))
    # Packets waiting for one socket: a socket that stopped reading is dropped beyond this
    # (webapp/realtime/transport/send_queue.py); a healthy socket drains a burst of a thousand
    # events in milliseconds. 0: no bound.
    SOCKET_SEND_QUEUE_MAX = _env_int("SOCKET_SEND_QUEUE_MAX", 1000, minimum=0)
    # Rate limits (webapp/ratelimits.py), in the limits library's notation: "N per minute",
    # several separated by ";". Counted in RATELIMIT_STORAGE_URL (default: PRESENCE_URL or
    # MESSAGE_QUEUE_URL when it is redis://..., else process memory). RATELIMIT_ENABLED=0 turns
    # every limit off.
    RATELIMIT_ENABLED = _env_flag("RATELIMIT_ENABLED", True)
    RATELIMIT_STORAGE_URL = os.environ.get("RATELIMIT_STORAGE_URL") or None
    RATELIMIT_STRATEGY = os.environ.get("RATELIMIT_STRATEGY", "moving-window")
    # Its keys start with this (None: SOCKETIO_CHANNEL; tests set their own).
    RATELIMIT_KEY_PREFIX = None
    # Every login attempt from one address.
    RATELIMIT_LOGIN_PER_IP = os.environ.get("RATELIMIT_LOGIN_PER_IP", "20 per minute; 200 per hour")
    # Failed logins for one username, from anywhere (a password guessed from many addresses),
    # except from browsers where that user logged in before (webapp/auth/devices.py): those
    # count against RATELIMIT_LOGIN_PER_DEVICE, so a stranger cannot lock the user out of them.
    RATELIMIT_LOGIN_PER_USERNAME = os.environ.get(
        "RATELIMIT_LOGIN_PER_USERNAME", "10 per minute; 50 per hour"
    )
    RATELIMIT_LOGIN_PER_DEVICE = os.environ.get(
        "RATELIMIT_LOGIN_PER_DEVICE", "10 per minute; 50 per hour"
    )
    # How long a browser is remembered as one where a user logged in (the device cookie).
    LOGIN_DEVICE_COOKIE_DAYS = _env_number("LOGIN_DEVICE_COOKIE_DAYS", 365)
    RATELIMIT_REGISTER_PER_IP = os.environ.get(
        "RATELIMIT_REGISTER_PER_IP", "10 per minute; 50 per hour"
    )
    RATELIMIT_REGISTER_PER_USERNAME = os.environ.get(
        "RATELIMIT_REGISTER_PER_USERNAME", "10 per minute"
    )
    # New table rows per logged-in user, or per address for anonymous ones.
    RATELIMIT_ROWS_PER_CLIENT = os.environ.get("RATELIMIT_ROWS_PER_CLIENT", "120 per minute")
    # Rooms created per user: every room page lists rooms, and every room is a name taken.
    RATELIMIT_ROOMS_PER_USER = os.environ.get(
        "RATELIMIT_ROOMS_PER_USER", "10 per minute; 50 per day"
    )
    # Members added to private rooms, and direct conversations started, per user: each shows a
    # room to someone else (their room list), so a user cannot fill others' lists at will.
    RATELIMIT_MEMBERS_PER_USER = os.environ.get(
        "RATELIMIT_MEMBERS_PER_USER", "30 per minute; 300 per day"
    )
    RATELIMIT_DIRECT_PER_USER = os.environ.get(
        "RATELIMIT_DIRECT_PER_USER", "20 per minute; 200 per day"
    )
    # chat:edit and presence:set per user: each is broadcast to a room, or to every room the
    # user is a member of. Refused with {"ok": false, "error", "retry_after"}.
    RATELIMIT_EDITS_PER_USER = os.environ.get("RATELIMIT_EDITS_PER_USER", "30 per minute")
    RATELIMIT_PRESENCE_PER_USER = os.environ.get("RATELIMIT_PRESENCE_PER_USER", "30 per minute")
    # Socket connections opened from one address (reconnects included). Generous: a whole
    # office behind one NAT address reconnects at once after a deploy, and a refused page
    # retries only after the wait it is told; the limit is there against floods.
    RATELIMIT_SOCKET_CONNECTS_PER_IP = os.environ.get(
        "RATELIMIT_SOCKET_CONNECTS_PER_IP", "600 per minute"
    )
    # Connections that hold a worker's slots without using them, in seconds (webapp/realtime/
    # connections/guard.py); 0 turns one off. A connection gets CONNECTION_IDLE_TIMEOUT to send its request
    # line, after it opens and between keep-alive requests; a request REQUEST_READ_TIMEOUT for
    # its headers after that, and as much for its body (a bigger one than 64 KiB: as much
    # per 64 KiB).
    CONNECTION_IDLE_TIMEOUT = _env_number("CONNECTION_IDLE_TIMEOUT", 5)
    REQUEST_READ_TIMEOUT = _env_number("REQUEST_READ_TIMEOUT", 10)
    # An Engine.IO connection that has not sent its Socket.IO CONNECT by then is closed.
    SOCKETIO_CONNECT_TIMEOUT = _env_number("SOCKETIO_CONNECT_TIMEOUT", 10)
    # Open connections (websockets and keep-alive HTTP) one client address may hold in one
    # worker; 0: no cap. Each browser tab holds one websocket and, for a few seconds after a
    # request, up to six HTTP connections: 500 leaves room for an office of a few hundred
    # people behind one NAT address, and keeps one address from filling a worker.
    MAX_CONNECTIONS_PER_IP = int(_env_number("MAX_CONNECTIONS_PER_IP", 500))
    # werkzeug's scrypt (n=2**15, r=8, p=1).
    PASSWORD_HASH_METHOD = "scrypt"
    # None: the strict default of webapp/security.py; "" sends no policy.
    CONTENT_SECURITY_POLICY = os.environ.get("CONTENT_SECURITY_POLICY")


class Server:
    """gunicorn's settings (read by gunicorn.conf.py, which checks them)."""

    HOST = os.environ.get("HOST", "127.0.0.1")
    PORT = _env_int("PORT", 8000)
    BIND = os.environ.get("BIND") or f"{HOST}:{PORT}"
    WEB_CONCURRENCY = _env_int("WEB_CONCURRENCY", 1)
    WORKER_CONNECTIONS = _env_int("WORKER_CONNECTIONS", 10000)
    GUNICORN_TIMEOUT = _env_int("GUNICORN_TIMEOUT", 30)
    GRACEFUL_TIMEOUT = _env_int("GRACEFUL_TIMEOUT", 20)
    KEEPALIVE = _env_int("KEEPALIVE", 5)
    ACCESS_LOG = os.environ.get("ACCESS_LOG", "-") or None
    ERROR_LOG = os.environ.get("ERROR_LOG", "-")
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "info")
    ACCESS_LOG_FORMAT = os.environ.get(
        "ACCESS_LOG_FORMAT",
        '%(h)s "%({x-forwarded-for}i)s" %(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"',
    )
    PROC_NAME = os.environ.get("PROC_NAME", "webapp")
    WORKER_TMP_DIR = os.environ.get("WORKER_TMP_DIR") or None
    REUSE_PORT = os.environ.get("REUSE_PORT", "1") not in ("0", "false", "no", "")
    GUNICORN_CONTROL_SOCKET = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
    # Set by gunicorn itself in a master it re-executed (USR2): the old master holds the port.
    REEXECUTED = "GUNICORN_PID" in os.environ


def presence_url(config) -> str | None:
    """The Redis of presence: PRESENCE_URL, else MESSAGE_QUEUE_URL when it is Redis; None:
    process memory. A PRESENCE_URL that is not Redis stops the app."""
    configured = config["PRESENCE_URL"]
    if configured and not configured.startswith(REDIS_SCHEMES):
        raise RuntimeError(
            f"PRESENCE_URL must be a redis:// URL (got {configured.split(':', 1)[0]}://...): "
            "presence is kept in Redis or, without PRESENCE_URL, in process memory."
        )
    url = configured or config["MESSAGE_QUEUE_URL"] or ""
    return url if url.startswith(REDIS_SCHEMES) else None


def presence_key_prefix(config) -> str:
    return config["PRESENCE_KEY_PREFIX"] or f"{config['SOCKETIO_CHANNEL']}:presence:"


def ratelimit_key_prefix(config) -> str:
    return config["RATELIMIT_KEY_PREFIX"] or config["SOCKETIO_CHANNEL"]


class DevConfig(Config):
    DEBUG = True
    SECRET_KEY = Config.SECRET_KEY or "dev-only-not-secret"


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret"
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    SQLALCHEMY_ENGINE_OPTIONS = engine_options(SQLALCHEMY_DATABASE_URI)
    MESSAGE_QUEUE_URL = None
    PRESENCE_URL = None
    # Cheap hashing keeps the tests fast; the production method is checked in its own test.
    PASSWORD_HASH_METHOD = "scrypt:1024:8:1"
    # Unit tests post many rows and log in many times; the rate limit tests turn it on.
    RATELIMIT_ENABLED = False
    RATELIMIT_STORAGE_URL = None
    PROXY_FIX_FOR = PROXY_FIX_PROTO = PROXY_FIX_HOST = PROXY_FIX_PORT = PROXY_FIX_PREFIX = 0
    SESSION_COOKIE_SECURE = False
    # Tests drive the relay by hand (outbox.Relay.tick), and presence's heartbeat and reaper.
    OUTBOX_RELAY = False
    PRESENCE_BACKGROUND = False
