"""HTTP connections that hold a worker's slots without using them: closed after a few seconds,
and capped per client address.

Every open TCP connection holds one of a worker's ``WORKER_CONNECTIONS`` slots, and gevent's
server waits for a client as long as it likes: a silent connection, a request line or headers
that never end, a body that stops half-way, an Engine.IO connection that never sends its
Socket.IO CONNECT (it answers pings, so Engine.IO keeps it). A few hundred of those from one
address starved a worker. Here:

- a connection with no request line within ``CONNECTION_IDLE_TIMEOUT`` seconds, after it opens
  or after its previous response (keep-alive), is closed;
- a request whose headers are not complete within ``REQUEST_READ_TIMEOUT`` seconds of its
  request line, or whose body does not arrive within that time (a big one: at 64 KiB per
  ``REQUEST_READ_TIMEOUT`` at least), is answered 408 and its connection closed;
- an Engine.IO connection without a Socket.IO CONNECT within ``SOCKETIO_CONNECT_TIMEOUT``
  seconds is closed (the Engine.IO pings govern a websocket after that);
- a client address may hold ``MAX_CONNECTIONS_PER_IP`` open connections at once (keep-alive
  HTTP and websockets alike, each counted from the request that opens it until it closes); the
  next gets 429 with ``Retry-After``. The address is the peer's, or the one a trusted proxy
  forwarded (``PROXY_FIX_FOR``/``PROXY_FIX_HOPS``), taken from the connection's first request.

This lives in gunicorn's connection handler (``guard_handler``, applied by gunicorn.conf.py's
worker once the app is loaded); the count is per worker process. The Socket.IO CONNECT timeout
is in :mod:`.closing`.

``GuardedHandler`` overrides methods of gevent 26.9.0's ``pywsgi.WSGIHandler`` (and calls
gevent-websocket 0.10.1's ``run_application``) listed in ``PINNED``: ``guard_handler`` refuses
to run when their installed code differs (webapp/realtime/transport/pinned.py).
"""

import json
import logging
import time
from collections import Counter

import gevent
from gevent.pywsgi import WSGIHandler
from werkzeug.exceptions import RequestTimeout

from ..transport.pinned import Pinned, check

log = logging.getLogger(__name__)

PINNED = (
    Pinned(
        "gevent",
        "26.9.0",
        (
            ("gevent.pywsgi:WSGIHandler.handle", "9e7238affc125354"),
            ("gevent.pywsgi:WSGIHandler.read_requestline", "72173107a177f9b3"),
            ("gevent.pywsgi:WSGIHandler.read_request", "b1702b63da71633f"),
            ("gevent.pywsgi:WSGIHandler._handle_client_error", "a3fbde482b69b9fd"),
            ("gevent.pywsgi:WSGIHandler.get_environ", "fbd39b74e42d7dbf"),
            ("gevent.pywsgi:WSGIHandler.handle_one_response", "16fcb501fa891f23"),
            ("gevent.pywsgi:WSGIHandler.run_application", "46cef793ff43fe1a"),
        ),
        __name__,
    ),
    Pinned(
        "gevent-websocket",
        "0.10.1",
        (("geventwebsocket.handler:WebSocketHandler.run_application", "3bd9b787d3271269"),),
        __name__,
    ),
)

# Seconds a client over the cap is asked to wait: an address's idle keep-alive connections
# close within CONNECTION_IDLE_TIMEOUT, its websockets when their tabs close.
CAP_RETRY_AFTER = 10
HEADERS_TIMED_OUT = "The request's headers took too long to arrive. Try again."
BODY_TIMED_OUT = "The request took too long to arrive. Try again."
BODY_CHUNK = 64 * 1024  # a request body gets REQUEST_READ_TIMEOUT for each of these

# Open connections per client address, in this worker process.
open_connections: Counter[str] = Counter()
_warned_about_proxy = False


def over_cap_message(cap: int) -> str:
    return (
        f"Too many open connections from your address (at most {cap} at once). Close some "
        f"tabs of this site, or try again in {CAP_RETRY_AFTER} seconds."
    )


def forwarded_address(environ: dict, hops: int) -> str | None:
    """The client's address as ``hops`` trusted proxies forwarded it (as ProxyFix reads it)."""
    values = [value.strip() for value in environ.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if hops and len(values) >= hops and values[-hops]:
        return values[-hops]
    return None


def guard_handler(handler_class: type, config) -> type:
    """``handler_class`` (gevent's pywsgi handler, as gunicorn's worker uses it) with the
    timeouts and the per-address cap of ``config`` (the app's settings).

    Another WSGI app under the same gunicorn settings (the benchmark's bare Flask-SocketIO
    reference) has none of these settings and is served as it is.
    """
    if "CONNECTION_IDLE_TIMEOUT" not in config:
        return handler_class
    for pinned in PINNED:
        check(pinned)
    for name in ("CONNECTION_IDLE_TIMEOUT", "REQUEST_READ_TIMEOUT", "MAX_CONNECTIONS_PER_IP"):
        if config[name] < 0:
            raise RuntimeError(f"{name} must be 0 (off) or more.")
    settings = {
        "idle_timeout": config["CONNECTION_IDLE_TIMEOUT"] or None,
        "read_timeout": config["REQUEST_READ_TIMEOUT"] or None,
        "max_per_address": int(config["MAX_CONNECTIONS_PER_IP"]),
        "forwarded_hops": int(config["PROXY_FIX_FOR"]),
    }
    return type(f"Guarded{handler_class.__name__}", (GuardedHandler, handler_class), settings)


class RequestTimedOut(ValueError):
    """Headers that did not arrive in time (a ValueError: gevent treats it as a client error)."""


class GuardedHandler:
    """Mixed in before a ``gevent.pywsgi.WSGIHandler`` (see ``guard_handler``)."""

    idle_timeout: float | None = None
    read_timeout: float | None = None
    max_per_address = 0
    forwarded_hops = 0
    counted_address: str | None = None
    refused = False

    def handle(self):
        """Serve the connection's requests; then it no longer counts for its address."""
        try:
            super().handle()
        finally:
            if self.counted_address is not None:
                open_connections[self.counted_address] -= 1
                if open_connections[self.counted_address] <= 0:
                    del open_connections[self.counted_address]
                self.counted_address = None

    def read_requestline(self):
        """The request line, or "" (close the connection) when none came in time."""
        with gevent.Timeout(self.idle_timeout, False):
            return super().read_requestline()
        return ""

    def read_request(self, raw_requestline):
        """The headers, which must be complete within ``read_timeout`` of the request line."""
        timer = gevent.Timeout(self.read_timeout)
        timer.start()
        try:
            return super().read_request(raw_requestline)
        except gevent.Timeout as error:
            if error is not timer:
                raise
            raise RequestTimedOut(HEADERS_TIMED_OUT) from None
        finally:
            timer.close()

    def _handle_client_error(self, ex):
        if isinstance(ex, RequestTimedOut):
            self.log_error("(from %s) %s", self.client_address, ex)
            body = f"{ex}\n".encode()
            return (
                "408",
                b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                b"Content-Type: text/plain; charset=utf-8\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body),
            )
        return super()._handle_client_error(ex)

    def get_environ(self):
        """The request's environ, its body stream timed (a websocket's stream is left alone)."""
        environ = super().get_environ()
        if environ["wsgi.input"] is self.wsgi_input:
            self.wsgi_input = environ["wsgi.input"] = TimedInput(
                self.wsgi_input, self.read_timeout, self._body_stalled
            )
        return environ

    def _body_stalled(self) -> None:
        # The stream is somewhere inside the body: no further request can be read from it.
        self.close_connection = True

    def handle_one_response(self):
        """Count the connection on its first request; over the cap, answer 429 instead."""
        if self.max_per_address and self.counted_address is None and not self.refused:
            address = self._client_address_for_cap()
            if open_connections[address] >= self.max_per_address:
                self.refused = True
                self.close_connection = True
                self.application = refusal(self.max_per_address)
            else:
                open_connections[address] += 1
                self.counted_address = address
        return super().handle_one_response()

    def run_application(self):
        if self.refused:  # never upgraded to a websocket: a plain answer
            return WSGIHandler.run_application(self)
        return super().run_application()

    def _client_address_for_cap(self) -> str:
        global _warned_about_proxy
        environ = self.environ
        address = forwarded_address(environ, self.forwarded_hops)
        if (
            address is None
            and not self.forwarded_hops
            and not _warned_about_proxy
            and environ.get("HTTP_X_FORWARDED_FOR")
        ):
            # Every client would count as the proxy's one address and share its cap.
            _warned_about_proxy = True
            log.warning(
                "connections arrive through a proxy (X-Forwarded-For) but PROXY_FIX_HOPS "
                "is not set: MAX_CONNECTIONS_PER_IP counts every client as the proxy's "
                "address. Set PROXY_FIX_HOPS to the number of proxies in front of the app."
            )
        if address is None:
            peer = self.client_address
            address = str(peer[0]) if isinstance(peer, tuple) else str(peer or "")
        return address


def refusal(cap: int):
    """A WSGI app answering 429: too many open connections from this address."""
    message = over_cap_message(cap)

    def app(environ, start_response):
        if "application/json" in environ.get("HTTP_ACCEPT", ""):
            body, content_type = json.dumps({"ok": False, "error": message}), "application/json"
        else:
            body, content_type = message + "\n", "text/plain; charset=utf-8"
        data = body.encode()
        start_response(
            "429 Too Many Requests",
            [
                ("Content-Type", content_type),
                ("Content-Length", str(len(data))),
                ("Retry-After", str(CAP_RETRY_AFTER)),
                ("Cache-Control", "no-store"),
                ("X-Content-Type-Options", "nosniff"),
                ("Connection", "close"),
            ],
        )
        return [data]

    return app


class TimedInput:
    """A request body (``wsgi.input``) that must keep arriving: at least 64 KiB per ``timeout``
    seconds from the first read (a body of up to 64 KiB within ``timeout``, a bigger one at that
    rate on average). Late, it raises werkzeug's
    ``RequestTimeout``, which the app answers with a 408 page, fragment or JSON; the
    connection is closed after that answer."""

    def __init__(self, stream, timeout: float | None, on_stall):
        self.stream, self.timeout, self.on_stall = stream, timeout, on_stall
        self.started: float | None = None
        self.received = 0
        self.stalled = False

    def _timed(self, read, asked: int | None, *args):
        if self.stalled:
            raise RequestTimeout(BODY_TIMED_OUT)
        if self.timeout is None:
            return read(*args)
        now = time.monotonic()
        if self.started is None:
            self.started = now
        # What has come and what this read waits for: at least 64 KiB per timeout.
        wanted = asked if asked is not None and asked > 0 else BODY_CHUNK
        expected = self.received + min(wanted, self._left())
        deadline = self.started + self.timeout * max(1.0, expected / BODY_CHUNK)
        timer = gevent.Timeout(max(0.001, deadline - now))
        timer.start()
        try:
            data = read(*args)
        except gevent.Timeout as error:
            if error is not timer:
                raise
            self.stalled = True
            self.on_stall()
            raise RequestTimeout(BODY_TIMED_OUT) from None
        finally:
            timer.close()
        if isinstance(data, list):
            self.received += sum(map(len, data))
        elif data:
            self.received += len(data)
        return data

    def __getattr__(self, name):
        # Everything else is the stream's own (the handler reads its state after the app).
        return getattr(self.stream, name)

    def _left(self) -> int:
        length = getattr(self.stream, "content_length", None)  # None: chunked
        return BODY_CHUNK if length is None else max(0, length - self.received)

    def read(self, length=None):
        return self._timed(self.stream.read, length, length)

    def readline(self, size=None):
        return self._timed(self.stream.readline, size, size)

    def readlines(self, hint=None):
        return self._timed(self.stream.readlines, hint, hint)

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def _discard(self):
        """What the app left unread, read (in time) so the connection can serve another
        request; after a stall there is nothing to save."""
        if self.stalled:
            return
        try:
            self._timed(self.stream._discard, None)
        except RequestTimeout:
            pass
