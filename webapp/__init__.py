"""Application factory: a live shared table and a team chat, server-rendered and real-time."""

import sqlite3

from flask import Flask, current_app, jsonify, render_template, request
from flask.globals import request_ctx
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.exceptions import BadHost, HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from . import dbpool, errors, ratelimits
from .clock import display_time, iso_utc
from .config import INSTANCE, ROOT, Config
from .extensions import csrf, db, login_manager, migrate, socketio
from .htmx import is_htmx, wants_json
from .realtime import outbox, presence, resync_local_clients
from .realtime.connections import closing
from .realtime.transport import frame_limit, packets, relay, send_queue
from .request_size import BoundedRequest
from .security import check_socket_origins, socket_origin_check


def create_app(config_class: type = Config) -> Flask:
    """Create and configure the app; the entry point (gunicorn, flask, tests) decides the server."""
    app = Flask(
        __name__,
        instance_path=str(INSTANCE),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    # Bodies over MAX_CONTENT_LENGTH get 413 also when sent chunked (webapp/request_size.py).
    app.request_class = BoundedRequest
    app.config.from_object(config_class)
    check_config(app)
    register_extensions(app)
    register_blueprints(app)
    ratelimits.init_app(app)
    register_errorhandlers(app)
    errors.register(app)
    register_template_filters(app)
    register_browser_support(app)
    return app


def check_config(app: Flask) -> None:
    """Refuse settings that cannot work, with a message that says what to do."""
    if not app.config["SECRET_KEY"] and app.debug:
        app.config["SECRET_KEY"] = "dev-only-not-secret"
    if not app.config["SECRET_KEY"]:
        raise RuntimeError(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable to a long random "
            "string (for example: python -c 'import secrets; print(secrets.token_hex(32))')."
        )
    check_socket_origins(app.config["SOCKETIO_ALLOWED_ORIGINS"])


def register_extensions(app: Flask) -> None:
    # Socket handlers registered once a Socket.IO server exists land on that server only, and
    # every later app gets a new one: import every module with handlers before the first.
    from . import auth, chat, health, table  # noqa: F401
    from .realtime.connections import sockets  # noqa: F401

    INSTANCE.mkdir(exist_ok=True)
    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            dbpool.install(engine)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    # Who is connected, shared by every worker (webapp/realtime/presence).
    presence.init_app(app)
    # A socket that stops reading is dropped once this many packets wait for it.
    send_queue.install(app.config["SOCKET_SEND_QUEUE_MAX"])
    # Publishes, from every server worker, the events committed but never published.
    outbox_relay = outbox.init_app(app)

    def subscribed() -> None:
        # What was published while this worker was not listening: its clients catch up.
        resync_local_clients()
        outbox_relay.resubscribed()

    socketio.init_app(
        app,
        # Always passed (a local one without a queue): the module-level socketio keeps options between
        # apps, and the relay's listener recovers by itself (webapp/realtime/transport/relay.py).
        client_manager=relay.client_manager(
            app.config["MESSAGE_QUEUE_URL"],
            app.config["SOCKETIO_CHANNEL"],
            on_subscribed=subscribed,
            on_received=outbox_relay.received,
        ),
        # Websocket only: no sticky sessions needed behind several workers or hosts.
        transports=["websocket"],
        # A malformed packet ends that client's session instead of raising (transport/packets.py).
        serializer=packets.CheckedPacket,
        # The page's own origin always; SOCKETIO_ALLOWED_ORIGINS adds to it.
        cors_allowed_origins=socket_origin_check(app.config["SOCKETIO_ALLOWED_ORIGINS"]),
        # A bigger message closes that client's connection, no one else's.
        max_http_buffer_size=app.config["SOCKETIO_MAX_MESSAGE_SIZE"],
    )
    # A client whose packet is refused has its connection closed (it reconnects and catches
    # up), and so has a connection that does not complete its Socket.IO CONNECT in time.
    packets.close_on_refusal(socketio.server)
    closing.require_connect(socketio.server, app.config["SOCKETIO_CONNECT_TIMEOUT"])
    app.wsgi_app = frame_limit.limit_websocket_messages(
        app.wsgi_app, app.config["SOCKETIO_MAX_MESSAGE_SIZE"]
    )
    outbox.start_with_first_request(app)
    # Outside the Socket.IO middleware, so sockets see the client's address and scheme too.
    hops = {
        name: app.config[f"PROXY_FIX_{name.upper()}"]
        for name in ("for", "proto", "host", "port", "prefix")
    }
    if any(hops.values()):
        app.wsgi_app = ProxyFix(app.wsgi_app, **{f"x_{name}": n for name, n in hops.items()})


def register_blueprints(app: Flask) -> None:
    from . import health
    from .auth import bp as auth_bp
    from .chat import bp as chat_bp
    from .realtime.routes import bp as realtime_bp
    from .table import bp as table_bp

    app.register_blueprint(table_bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(chat_bp)
    app.register_blueprint(realtime_bp)


def register_errorhandlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return _error_response(
            400, "The form expired or is missing its security token. Reload the page and try again."
        )

    @app.errorhandler(BadHost)
    def bad_host(error: BadHost):
        return _error_response(400, "The Host header of this request is not a valid host name.")

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error: RequestEntityTooLarge):
        limit = app.config["MAX_CONTENT_LENGTH"]
        return _error_response(413, f"That is too much data at once: at most {limit // 1024} KiB.")

    @app.errorhandler(RateLimitExceeded)
    def too_many(error: RateLimitExceeded):
        seconds = ratelimits.retry_after(error)
        return _error_response(429, ratelimits.exceeded_message(error, seconds), seconds)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return _error_response(error.code or 500, error.description or error.name)


def register_template_filters(app: Flask) -> None:
    app.add_template_filter(iso_utc, "isotime")
    app.add_template_filter(display_time, "displaytime")


def register_browser_support(app: Flask) -> None:
    from . import security

    security.register(app)
    if app.debug:
        from . import devreload

        devreload.register(app)


def _error_response(status: int, message: str, retry_after: int | None = None):
    """An error as JSON, an htmx fragment or a page; ``retry_after`` seconds in its header."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    _bind_urls_without_host()
    if wants_json() or request.path.startswith("/healthz"):
        return jsonify(ok=False, error=message), status, headers
    template = "_error_fragment.html" if is_htmx() else "error.html"
    return render_template(template, status=status, message=message), status, headers


def _bind_urls_without_host() -> None:
    """Let the error page build its links when the request never got a URL adapter.

    Flask binds the URL map to the request's Host header; a Host that is not a valid host name
    (``a..b``, a label over 63 characters) leaves no adapter, and every ``url_for`` in the page
    (the navigation, the stylesheets) would fail and turn the 400 into a 500. Links are built
    relative to the app's root, so a neutral host name serves for them.
    """
    if request_ctx.url_adapter is None:
        request_ctx.url_adapter = current_app.url_map.bind(
            current_app.config["SERVER_NAME"] or "localhost",
            script_name=request.script_root or "/",
            url_scheme=request.scheme,
        )


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets readers run beside the writer; the busy timeout waits for a lock, briefly."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
