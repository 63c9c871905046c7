"""A bound on what the server queues for one socket, so a client that stops reading is dropped.

python-engineio puts every outgoing packet of a socket on an unbounded queue that one writer
greenlet drains into the websocket. A client that stops reading (a frozen tab, a stalled
network, a hostile script) fills its TCP window, the writer blocks in ``send``, and the queue
grows with every event until the ping timeout closes the socket, 45 s later by default; even
then the writer stays blocked with the queue and the connection held until the peer goes away.

Here, once a socket has more than ``SOCKET_SEND_QUEUE_MAX`` packets waiting, it is closed: the
server forgets it (disconnect, presence) and the TCP connection is shut down, which frees the
blocked writer. The client reconnects and catches up from the database like after any other
disconnect. Other sockets never wait on it: each has its own writer.

A patch of python-engineio 4.15.1's internals (``engineio.socket.Socket.send`` and
``Socket._websocket_handler``, which has no hook for this): ``install`` refuses to run when
their installed code differs from that version's (:mod:`.pinned`).
"""

import logging
import socket

from .pinned import Pinned, check

log = logging.getLogger(__name__)

PINNED = Pinned(
    "python-engineio",
    "4.15.1",
    (
        ("engineio.socket:Socket.send", "f8b2738ee5d48ab2"),
        ("engineio.socket:Socket._websocket_handler", "58afe122719282de"),
    ),
    __name__,
)

_installed = {"limit": None}


def install(limit: int) -> None:
    """Bound every engine.io socket's outgoing queue to ``limit`` packets (0: unbounded)."""
    from engineio import socket as engineio_socket

    cls = engineio_socket.Socket
    _installed["limit"] = limit
    if getattr(cls, "_bounded", False):
        return  # patched once per process; the limit above is read on every send
    check(PINNED)
    send, websocket_handler = cls.send, cls._websocket_handler

    def bounded_send(self, pkt):
        send(self, pkt)
        limit = _installed["limit"]
        if limit and self.queue.qsize() > limit and not (self.closing or self.closed):
            drop(self, limit)

    def remembering_handler(self, ws):
        self._websocket = ws  # to shut its connection down when the socket is dropped
        return websocket_handler(self, ws)

    cls.send = bounded_send
    cls._websocket_handler = remembering_handler
    cls._bounded = True


def drop(sock, limit: int) -> None:
    """Close a socket that stopped reading, and its TCP connection."""
    log.warning(
        "socket %s stopped reading (%d packets waiting, limit %d): dropping it",
        sock.sid,
        sock.queue.qsize(),
        limit,
    )
    # abort: no CLOSE packet, it would only wait behind the others.
    sock.close(wait=False, abort=True, reason=sock.server.reason.TRANSPORT_ERROR)
    raw = _raw_socket(getattr(sock, "_websocket", None))
    if raw is not None:
        try:
            # Wakes the writer blocked in send and the reader: both end, and so does the socket.
            raw.shutdown(socket.SHUT_RDWR)
        except OSError:  # already gone
            pass
    # The queue is dropped with the socket; what is left in it is never sent.


def _raw_socket(ws):
    """The TCP socket under engine.io's gevent-websocket wrapper, if that is what serves it."""
    try:
        return ws._sock.handler.socket
    except AttributeError:  # another websocket server (development): the ping timeout applies
        return None
