"""Engine.IO connections closed the way a network failure would close them.

Socket.IO connections are closed by ``close_transport``, so that clients reconnect by themselves
(webapp/packets.py closes a refused packet's sender with it).
"""

import socket


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
