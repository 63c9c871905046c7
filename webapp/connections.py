"""Engine.IO connections that never complete their Socket.IO CONNECT are closed, the way a
network failure would close them.

An Engine.IO connection without a Socket.IO CONNECT within ``SOCKETIO_CONNECT_TIMEOUT`` seconds
is closed: it answers pings, so Engine.IO alone would keep it for ever (and it escaped the
connection rate limit, which counts CONNECTs). Socket.IO connections are closed by
``close_transport``, so that clients reconnect by themselves (webapp/packets.py closes a refused
packet's sender with it).
"""

import logging
import socket

log = logging.getLogger(__name__)


def require_connect(server, timeout: float) -> None:
    """Close every Engine.IO connection of ``server`` (a ``socketio.Server``) that has not
    sent its Socket.IO CONNECT ``timeout`` seconds after it opened (0: never)."""
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
