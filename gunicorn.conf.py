"""gunicorn settings for production, all from the environment.

    gunicorn -c gunicorn.conf.py wsgi:app

Each worker is a gevent websocket worker holding many sockets; with more than one worker (or
host) a message queue relays every event to every worker. Settings that cannot work make
gunicorn exit with status 1 and a message that says what to change, before it binds a port.
"""

import os
import socket
import sys

from geventwebsocket.gunicorn.workers import GeventWebSocketWorker
from geventwebsocket.handler import WebSocketHandler
from gunicorn.workers.ggevent import PyWSGIHandler

QUEUE_SCHEMES = ("redis://", "rediss://", "amqp://", "amqps://")
PRESENCE_SCHEMES = ("redis://", "rediss://", "unix://")  # as webapp/config.py


class AccessLoggingWebSocketHandler(PyWSGIHandler, WebSocketHandler):
    """gevent-websocket's handler, with requests written to gunicorn's access log.

    gevent-websocket's own handler logs to a logger of its own that prints nothing; gunicorn's
    handler (first in the MRO) brings the access log and its environ, websockets come from
    WebSocketHandler. A websocket is logged when it closes, with its duration.
    """


class WebSocketWorker(GeventWebSocketWorker):
    wsgi_handler = AccessLoggingWebSocketHandler

    def load_wsgi(self) -> None:
        """Load the app, then guard the handler with its connection settings.

        Idle and half-sent connections are closed and open connections per address capped
        (webapp/connections.py). Imported here, in the worker after gevent's monkey patch,
        like the app itself: the master never imports the app.
        """
        super().load_wsgi()
        from webapp.connections import guard_handler

        self.wsgi_handler = guard_handler(self.wsgi_handler, self.wsgi.config)


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value.strip():
        return default
    try:
        return int(value)
    except ValueError:
        sys.exit(f"gunicorn.conf.py: {name}={value!r} is not a whole number.")


def _refuse(message: str) -> None:
    sys.exit(f"gunicorn.conf.py: refusing to start: {message}")


bind = [os.environ.get("BIND") or f"{os.environ.get('HOST', '127.0.0.1')}:{_int('PORT', 8000)}"]
workers = _int("WEB_CONCURRENCY", 1)
# gevent-websocket's worker: plain `-k gevent` fails the websocket upgrade once gevent-websocket
# is installed, and simple-websocket costs three times the memory per connection.
worker_class = WebSocketWorker
# Every open websocket holds a connection slot; the default 1000 starves HTTP at 1000 browsers.
worker_connections = _int("WORKER_CONNECTIONS", 10000)
timeout = _int("GUNICORN_TIMEOUT", 30)
# On SIGTERM open websockets never finish by themselves: after this many seconds they are
# closed and the browsers reconnect to the new workers (and catch up from the database).
graceful_timeout = _int("GRACEFUL_TIMEOUT", 20)
keepalive = _int("KEEPALIVE", 5)
# Access log to stdout, error log to stderr ("-"): both end up in the container's or the
# service manager's log. A path can be given instead.
accesslog = os.environ.get("ACCESS_LOG", "-") or None
errorlog = os.environ.get("ERROR_LOG", "-")
loglevel = os.environ.get("LOG_LEVEL", "info")
access_log_format = os.environ.get(
    "ACCESS_LOG_FORMAT",
    '%(h)s "%({x-forwarded-for}i)s" %(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"',
)
proc_name = os.environ.get("PROC_NAME", "webapp")
# The heartbeat file of each worker; /dev/shm in containers (a disk-backed /tmp can stall).
worker_tmp_dir = os.environ.get("WORKER_TMP_DIR") or None
# Each worker opens its own listening socket and the kernel spreads new connections evenly
# over them; with one shared socket the first idle worker tends to take most of them, and a
# websocket stays where it landed for hours. (Measured: 50 sockets on 2 workers split 25/25,
# 27/23, 26/24 with it; 43/7, 39/11, 28/22 without.) REUSE_PORT=0 turns it off.
reuse_port = os.environ.get("REUSE_PORT", "1") not in ("0", "false", "no", "") and not any(
    address.startswith(("unix:", "fd://")) for address in bind
)
# The control socket has a fixed default path; several instances on one machine would collide.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket
# Each worker imports the app itself: the message queue's listener must not be forked.
preload_app = False

if workers < 1:
    _refuse("WEB_CONCURRENCY must be 1 or more.")
if worker_connections < 100:
    _refuse("WORKER_CONNECTIONS must be at least 100: every open websocket holds one.")
if timeout < 1 or graceful_timeout < 0 or keepalive < 0:
    _refuse("GUNICORN_TIMEOUT must be 1 or more, GRACEFUL_TIMEOUT and KEEPALIVE 0 or more.")


def on_starting(server) -> None:
    """Check the final settings (command line and GUNICORN_CMD_ARGS can override this file)."""
    cfg = server.cfg
    queue = os.environ.get("MESSAGE_QUEUE_URL", "")
    if cfg.workers > 1 and not queue:
        _refuse(
            f"{cfg.workers} workers need MESSAGE_QUEUE_URL (redis://... or amqp://...): "
            "without a message queue, events would not reach the clients of the other workers."
        )
    if queue and not queue.startswith(QUEUE_SCHEMES):
        _refuse(
            f"MESSAGE_QUEUE_URL must start with one of {', '.join(QUEUE_SCHEMES)} "
            f"(got {queue.split(':', 1)[0]!r})."
        )
    presence = os.environ.get("PRESENCE_URL") or queue
    if cfg.workers > 1 and not presence.startswith(PRESENCE_SCHEMES):
        _refuse(
            f"{cfg.workers} workers need a shared presence store: set PRESENCE_URL to a "
            "redis://... URL (it defaults to MESSAGE_QUEUE_URL only when that is Redis). In "
            "process memory each worker would show its own users only, and a killed worker's "
            "users would never go offline."
        )
    database = os.environ.get("DATABASE_URL", "")
    if database.startswith("sqlite") and (
        ":memory:" in database or database.rstrip("/") in ("sqlite:", "sqlite+pysqlite:")
    ):
        _refuse("DATABASE_URL is an in-memory SQLite database: every worker would get its own.")
    if cfg.preload_app:
        _refuse(
            "--preload must stay off: each worker has to start its own message-queue listener "
            "and database pool after the fork."
        )
    if not issubclass(cfg.worker_class, GeventWebSocketWorker):
        _refuse(
            f"the worker class must be gevent-websocket's (got {cfg.worker_class_str}): other "
            "workers fail the websocket upgrade or cost three times the memory per socket."
        )
    if cfg.reuse_port and "GUNICORN_PID" not in os.environ:
        _check_port_is_free(cfg.address)


def _check_port_is_free(addresses) -> None:
    """With SO_REUSEPORT a second instance on a busy port would silently share it: refuse."""
    for address in addresses:
        if not isinstance(address, tuple):
            continue
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address[:2])
            except OSError as error:
                _refuse(f"cannot listen on {address[0]}:{address[1]}: {error.strerror}.")


def when_ready(server) -> None:
    """With one socket per worker the master binds nothing itself: say where workers listen."""
    if server.cfg.reuse_port:
        server.log.info("Workers listen on %s (one socket each)", ", ".join(server.cfg.bind))


def post_worker_init(worker) -> None:
    """Send the app's own log records (loggers under "webapp") to gunicorn's error log."""
    import logging

    from flask.logging import default_handler

    app_logger = logging.getLogger("webapp")
    app_logger.removeHandler(default_handler)
    for handler in worker.log.error_log.handlers:
        app_logger.addHandler(handler)
    app_logger.setLevel(worker.log.error_log.level)
    app_logger.propagate = False
