"""The largest websocket message, enforced from each frame's header before its payload is read.

A patch of gevent-websocket 0.10.1's internals: ``WebSocket.read_frame`` is replaced by a copy
that counts each frame's announced length first (gevent-websocket has no size limit of its
own). ``limit_websocket_messages`` refuses to run when the installed ``read_frame`` differs
from that version's (:mod:`.pinned`).
"""

from .pinned import Pinned, check

PINNED = Pinned(
    "gevent-websocket",
    "0.10.1",
    (("geventwebsocket.websocket:WebSocket.read_frame", "ab47353ea877d381"),),
    __name__,
)


def limit_websocket_messages(wsgi_app, max_size: int):
    """Close a websocket whose next message would be larger than ``max_size`` bytes, before it
    is read into memory.

    Engine.IO checks a message's size only once the server has read all of it, and
    gevent-websocket (the production worker) reads whatever length a frame header claims: one
    client could make a worker hold gigabytes. Here each frame's announced length is counted
    against the limit first; over it, the connection is closed (that client reconnects, the
    others see nothing). Other servers (``flask run``) are left alone.
    """
    try:
        from geventwebsocket.exceptions import ProtocolError
        from geventwebsocket.websocket import Header, WebSocket
    except ImportError:  # pragma: no cover (gevent-websocket is a production dependency)
        return wsgi_app
    check(PINNED)

    class SizeLimitedWebSocket(WebSocket):
        __slots__ = ("message_size",)

        def read_frame(self):
            header = Header.decode_header(self.stream)
            if header.flags:
                raise ProtocolError
            if header.opcode in (self.OPCODE_TEXT, self.OPCODE_BINARY):
                self.message_size = 0
            if header.opcode in (self.OPCODE_TEXT, self.OPCODE_BINARY, self.OPCODE_CONTINUATION):
                self.message_size = getattr(self, "message_size", 0) + header.length
                if self.message_size > max_size:
                    # receive() answers this by closing the connection (code 1002).
                    raise ProtocolError(f"message larger than {max_size} bytes")
            if not header.length:
                return header, b""
            payload = self.raw_read(header.length)
            if len(payload) != header.length:
                raise ProtocolError("unexpected end of a frame")
            if header.mask:
                payload = header.unmask_payload(payload)
            return header, payload

    def app(environ, start_response):
        websocket = environ.get("wsgi.websocket")
        if isinstance(websocket, WebSocket) and not isinstance(websocket, SizeLimitedWebSocket):
            # Nothing has been read from it yet: a limited one takes over the same stream.
            limited = SizeLimitedWebSocket(websocket.environ, websocket.stream, websocket.handler)
            websocket.handler.websocket = limited
            environ["wsgi.websocket"] = limited
        return wsgi_app(environ, start_response)

    return app
