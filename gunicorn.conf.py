"""gunicorn settings for production, all from the environment (read in webapp/config.py).

    gunicorn -c gunicorn.conf.py wsgi:app

Each worker is a gevent websocket worker holding many sockets; with more than one worker (or
host) a message queue relays every event to every worker. Settings that cannot work make
gunicorn exit with status 1 and a message that says what to change, before it binds a port.
"""

import http.client
import importlib.util
import socket
import sys
from pathlib import Path

from gevent import Timeout, pywsgi
from geventwebsocket.gunicorn.workers import GeventWebSocketWorker
from geventwebsocket.handler import WebSocketHandler
from gunicorn.workers.ggevent import PyWSGIHandler


def _load(path: str, name: str):
    """A module of the app (standard library only), loaded as a file of its own: the master
    must not import the app (each worker imports it after gevent's monkey patch, and again
    after a reload)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except RuntimeError as error:  # a setting that is not valid
        sys.exit(f"gunicorn.conf.py: refusing to start: {error}")
    return module


settings = _load("webapp/config.py", "webapp_settings")
Server, App = settings.Server, settings.Config
pinned = _load("webapp/realtime/transport/pinned.py", "webapp_pinned")


# A request refused before it reached the app: status -> (status line, what the client is told).
REFUSALS = {
    "400": ("400 Bad Request", "The request is not valid HTTP."),
    "414": ("414 URI Too Long", "The request line is too long."),
    "431": ("431 Request Header Fields Too Large", "The request headers are too large."),
}


class RefusesMalformedRequests(PyWSGIHandler):
    """A request gevent cannot parse gets a short 400, 414 or 431 and one line in the error log.

    gevent refuses these before there is a WSGI environ, and gunicorn's access log needs one:
    each bad request line, oversized header or flood of headers used to leave a traceback of
    about 20 lines (two for more than 100 headers: gevent printed its own too). Kept apart from
    the handler's other concerns; everything here runs only for a refused request.

    It overrides internals of gevent 26.9.0's pywsgi handler and gunicorn 27.0.1's, listed in
    ``PINNED`` below: gunicorn refuses to start when their installed code differs. (It lives
    here, not in the app's package, because the master needs the worker class and must not
    import the app.)
    """

    # After answering, read (and drop) what the client still sends, for a moment: closing with
    # unread data makes the kernel reset the connection, and the client may lose the answer.
    LINGER_SECONDS = 2
    LINGER_BYTES = 1024 * 1024

    _refusal_reason = None

    def _handle_client_error(self, ex):
        """gevent's hook for a request it could not parse: say why, without a traceback."""
        text = str(ex) or type(ex).__name__
        if isinstance(ex, http.client.HTTPException):  # "got more than 100 headers"
            status, reason = "431", f"too many header fields ({text})"
        elif "Line too long" in text:
            status, reason = "431", "a header line is too long"
        else:
            status, reason = "400", text
        self._refusal_reason = reason
        return status, b""

    def handle_one_request(self):
        result = super().handle_one_request()
        if not isinstance(result, tuple):
            return result
        # (status, response): refused before the app saw it; answer, log once and close.
        status, response = result
        reason, self._refusal_reason = self._refusal_reason, None
        if status == "414":
            reason = "the request line is too long"
        self._refuse(str(status), reason or "malformed request", response)
        return None

    def handle_one_response(self):
        super().handle_one_response()
        # A chunked body gevent could not frame (the app may have taken its error for a client
        # that went away) leaves the stream at an unknown place: what follows it must not be
        # read as the next request on this connection.
        if getattr(self.wsgi_input, "_chunked_input_error", False):
            self.close_connection = True

    def log_request(self):
        if self.environ is None:  # refused before it was parsed: _refuse logged it
            return
        super().log_request()

    def _refuse(self, status: str, reason: str, response: bytes) -> None:
        if status in REFUSALS:
            line, message = REFUSALS[status]
            body = f"{message}\n".encode()
            response = (
                f"HTTP/1.1 {line}\r\nConnection: close\r\n"
                "Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
        address = self.client_address
        if isinstance(address, tuple):
            address = f"{address[0]}:{address[1]}"
        # One line, whatever the client sent: the reason may quote its request line.
        reason = reason.replace("\r", "\\r").replace("\n", "\\n")[:300]
        self.server.log.warning("Refused a request from %s: %s %s", address or "-", status, reason)
        try:
            self.socket.sendall(response)
            self.socket.shutdown(socket.SHUT_WR)
            with Timeout(self.LINGER_SECONDS, False):
                unread = self.LINGER_BYTES
                while unread > 0:
                    data = self.socket.recv(65536)
                    if not data:
                        break
                    unread -= len(data)
        except OSError:
            pass


class AccessLoggingWebSocketHandler(RefusesMalformedRequests, WebSocketHandler):
    """gevent-websocket's handler, with requests written to gunicorn's access log.

    gevent-websocket's own handler logs to a logger of its own that prints nothing; gunicorn's
    handler (before WebSocketHandler in the MRO) brings the access log and its environ,
    websockets come from WebSocketHandler. A websocket is logged when it closes, with its
    duration.
    """


class WebSocketWorker(GeventWebSocketWorker):
    wsgi_handler = AccessLoggingWebSocketHandler

    def load_wsgi(self) -> None:
        """Load the app, then guard the handler with its connection settings.

        Idle and half-sent connections are closed and open connections per address capped
        (webapp/realtime/connections/guard.py). Imported here, in the worker after gevent's monkey patch,
        like the app itself: the master never imports the app.
        """
        super().load_wsgi()
        from webapp.realtime.connections.guard import guard_handler

        self.wsgi_handler = guard_handler(self.wsgi_handler, getattr(self.wsgi, "config", {}))


def _refuse(message: str) -> None:
    sys.exit(f"gunicorn.conf.py: refusing to start: {message}")


bind = [Server.BIND]
workers = Server.WEB_CONCURRENCY
# gevent-websocket's worker: plain `-k gevent` fails the websocket upgrade once gevent-websocket
# is installed, and simple-websocket costs three times the memory per connection.
worker_class = WebSocketWorker
# Every open websocket holds a connection slot; the default 1000 starves HTTP at 1000 browsers.
worker_connections = Server.WORKER_CONNECTIONS
timeout = Server.GUNICORN_TIMEOUT
# On SIGTERM open websockets never finish by themselves: after this many seconds they are
# closed and the browsers reconnect to the new workers (and catch up from the database).
graceful_timeout = Server.GRACEFUL_TIMEOUT
keepalive = Server.KEEPALIVE
# Access log to stdout, error log to stderr ("-"): both end up in the container's or the
# service manager's log. A path can be given instead.
accesslog = Server.ACCESS_LOG
errorlog = Server.ERROR_LOG
loglevel = Server.LOG_LEVEL
access_log_format = Server.ACCESS_LOG_FORMAT
proc_name = Server.PROC_NAME
# The heartbeat file of each worker; /dev/shm in containers (a disk-backed /tmp can stall).
worker_tmp_dir = Server.WORKER_TMP_DIR
# Each worker opens its own listening socket and the kernel spreads new connections evenly
# over them; with one shared socket the first idle worker tends to take most of them, and a
# websocket stays where it landed for hours. (Measured: 50 sockets on 2 workers split 25/25,
# 27/23, 26/24 with it; 43/7, 39/11, 28/22 without.) REUSE_PORT=0 turns it off.
reuse_port = Server.REUSE_PORT and not any(
    address.startswith(("unix:", "fd://")) for address in bind
)
# The control socket has a fixed default path; several instances on one machine would collide.
control_socket = Server.GUNICORN_CONTROL_SOCKET
control_socket_disable = not control_socket
# Each worker imports the app itself: the message queue's listener must not be forked.
preload_app = False

PINNED = (
    pinned.Pinned(
        "gevent",
        "26.9.0",
        (
            ("gevent.pywsgi:WSGIHandler._handle_client_error", "a3fbde482b69b9fd"),
            ("gevent.pywsgi:WSGIHandler.handle_one_request", "14e946e9fb33cbb8"),
            ("gevent.pywsgi:WSGIHandler.handle_one_response", "16fcb501fa891f23"),
        ),
        "gunicorn.conf.py's RefusesMalformedRequests",
    ),
    pinned.Pinned(
        "gunicorn",
        "27.0.1",
        (("gunicorn.workers.ggevent:PyWSGIHandler.log_request", "d706f674002e792b"),),
        "gunicorn.conf.py's RefusesMalformedRequests",
    ),
)
for patched in PINNED:
    try:
        pinned.check(patched)
    except RuntimeError as error:
        _refuse(str(error))
if "_chunked_input_error" not in pywsgi.Input.__slots__:
    _refuse(
        "gevent's pywsgi.Input no longer has _chunked_input_error (checked with gevent 26.9.0): "
        "RefusesMalformedRequests.handle_one_response needs another way to see a bad chunked body."
    )
if workers < 1:
    _refuse("WEB_CONCURRENCY must be 1 or more.")
if worker_connections < 100:
    _refuse("WORKER_CONNECTIONS must be at least 100: every open websocket holds one.")
if timeout < 1 or graceful_timeout < 0 or keepalive < 0:
    _refuse("GUNICORN_TIMEOUT must be 1 or more, GRACEFUL_TIMEOUT and KEEPALIVE 0 or more.")


def on_starting(server) -> None:
    """Check the final settings (command line and GUNICORN_CMD_ARGS can override this file)."""
    cfg = server.cfg
    queue = App.MESSAGE_QUEUE_URL or ""
    if cfg.workers > 1 and not queue:
        _refuse(
            f"{cfg.workers} workers need MESSAGE_QUEUE_URL (redis://... or amqp://...): "
            "without a message queue, events would not reach the clients of the other workers."
        )
    if queue and not queue.startswith(settings.QUEUE_SCHEMES):
        _refuse(
            f"MESSAGE_QUEUE_URL must start with one of {', '.join(settings.QUEUE_SCHEMES)} "
            f"(got {queue.split(':', 1)[0]!r})."
        )
    presence = App.PRESENCE_URL or queue
    if cfg.workers > 1 and not presence.startswith(settings.REDIS_SCHEMES):
        _refuse(
            f"{cfg.workers} workers need a shared presence store: set PRESENCE_URL to a "
            "redis://... URL (it defaults to MESSAGE_QUEUE_URL only when that is Redis). In "
            "process memory each worker would show its own users only, and a killed worker's "
            "users would never go offline."
        )
    database = App.SQLALCHEMY_DATABASE_URI
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
    if cfg.reuse_port and not Server.REEXECUTED:
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


def urls_to_open(cfg) -> list[str]:
    """The address a browser opens for each TCP bind (0.0.0.0 and :: are reached on loopback)."""
    scheme = "https" if cfg.is_ssl else "http"
    urls = []
    for address in cfg.address:
        if not isinstance(address, tuple):  # a unix socket or a descriptor: nothing to open
            continue
        host, port = address[:2]
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        urls.append(f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}")
    return urls


def when_ready(server) -> None:
    """Say which address to open: gunicorn's own "Listening at:" line is empty with reuse_port,
    because each worker then binds its own socket and the master none."""
    urls = " or ".join(urls_to_open(server.cfg)) or ", ".join(server.cfg.bind)
    each = " (each worker listens on its own socket)" if server.cfg.reuse_port else ""
    server.log.info("Open %s%s", urls, each)


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
