"""Closing Socket.IO connections: those that never complete their CONNECT, those the server
drops, and every socket of a user who logged out.

A socket the server drops is closed as a network failure would close it (``close_transport``),
so that its client reconnects by itself and catches up (webapp/realtime/transport/packets.py
and an unfinished CONNECT use it). Logging out closes every socket of that user on every worker
(``close_user_sockets``).

``require_connect`` wraps python-socketio 5.18.1's Engine.IO connect handler, and
``close_transport`` aborts python-engineio 4.15.1's socket: both refuse to run when that code
differs from those versions' (webapp/realtime/transport/pinned.py).
"""

import logging
import socket

from ...extensions import socketio
from .. import presence
from ..transport.pinned import Pinned, check

log = logging.getLogger(__name__)

PINNED = (
    Pinned(
        "python-socketio",
        "5.18.1",
        (("socketio.server:Server._handle_eio_connect", "4be135c046ed6bcc"),),
        __name__,
    ),
    Pinned(
        "python-engineio",
        "4.15.1",
        (("engineio.socket:Socket.close", "05fac55831999f25"),),
        __name__,
    ),
)


def close_user_sockets(user_id: int, room: str | None = None) -> None:
    """Close every open socket of a user (``room``: those that show it), on every worker and host.

    The presence store lists every socket with the worker that holds it, and python-socketio's
    message queue takes the disconnect to that worker. While the store is down nothing is
    closed (the caller's session epoch alone logs the sockets out).
    """
    try:
        sockets = presence.store().connections(user_id)
    except Exception:
        log.exception("could not list the sockets of a user who logged out")
        return
    for connection in sockets:
        if room is not None and connection.room != room:
            continue
        socketio.server.disconnect(connection.sid, namespace="/")


def require_connect(server, timeout: float) -> None:
    """Close every Engine.IO connection of ``server`` (a ``socketio.Server``) that has not
    sent its Socket.IO CONNECT ``timeout`` seconds after it opened (0: never)."""
    for pinned in PINNED:  # close_transport too, which runs whatever the timeout
        check(pinned)
    if timeout < 0:
        raise RuntimeError("SOCKETIO_CONNECT_TIMEOUT must be 0 (off) or more.")
    if not timeout:
        return
    eio = server.eio
    on_connect = eio.handlers["connect"]

    def connect(eio_sid, environ, *args):
        accepted = on_connect(eio_sid, environ, *args)
        if accepted is not False:
            eio.start_background_task(_close_unless_connected, server, eio_sid, timeout)
        return accepted

    eio.on("connect", connect)


def _close_unless_connected(server, eio_sid: str, timeout: float) -> None:
    server.eio.sleep(timeout)
    # A CONNECT that arrived is registered at once, before the app's connect handler runs.
    if any(
        server.manager.sid_from_eio_sid(eio_sid, namespace)
        for namespace in list(server.manager.get_namespaces())
    ):
        return
    if close_transport(server, eio_sid):
        log.info("socket %s sent no Socket.IO CONNECT within %ss: closed", eio_sid, timeout)


def close_transport(server, eio_sid: str) -> bool:
    """Close an Engine.IO connection the way a network failure would; False if it was gone.

    No Engine.IO CLOSE packet and no Socket.IO DISCONNECT: both tell a client not to come back
    (socket.io-client's "io server disconnect", which the page answers with a reload). A
    dropped transport is what clients reconnect after by themselves, and then catch up.
    """
    sock = server.eio.sockets.get(eio_sid)
    if sock is None or sock.closed or sock.closing:
        return False
    raw = server.environ.get(eio_sid, {}).get("gunicorn.sock")
    sock.close(wait=False, abort=True, reason=server.eio.reason.TRANSPORT_ERROR)
    if raw is not None:
        try:
            # The reader waiting on the client wakes up and ends the connection; the writer
            # still sends the websocket's close frame.
            raw.shutdown(socket.SHUT_RD)
        except OSError:  # already gone
            pass
    return True
