"""The app's one Socket.IO connect and disconnect handler.

Anonymous sockets may connect (they watch the table); a logged-in one joins its user's channel
and the channel of every logged-in socket (webapp/realtime/users.py), and is entered in presence.
Every socket, anonymous or not, counts against its address's connection rate limit. Closing
sockets is in :mod:`.closing`.
"""

import logging

from flask import request
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, join_room

from ...extensions import db, socketio
from ...ratelimits import client_address, hit
from .. import presence
from ..users import LOGGED_IN, user_channel

log = logging.getLogger(__name__)

SERVER_BUSY_WAIT = 5  # seconds a refused socket waits before it tries again


@socketio.on("connect")
def on_connect(*auth):
    """Sent by every browser tab and client when its socket opens; anonymous ones only watch.

    Its optional auth data ``{"status": "away"}`` says the tab opened hidden or idle.
    """
    wait = hit("RATELIMIT_SOCKET_CONNECTS_PER_IP", client_address())
    if wait is not None:
        plural = "s" if wait != 1 else ""
        raise ConnectionRefusedError(
            f"Too many connections from your address. Try again in {wait} second{plural}."
        )
    try:
        logged_in = current_user.is_authenticated
    except Exception:  # the database cannot load the user: refuse, the page retries
        db.session.rollback()
        log.exception("loading the user of a new socket failed")
        raise ConnectionRefusedError(
            f"The server is busy. Try again in {SERVER_BUSY_WAIT} seconds."
        ) from None
    if logged_in:
        user = current_user._get_current_object()
        # Before presence, which may fail: the socket hears its user's events all the same.
        join_room(user_channel(user.id))
        join_room(LOGGED_IN)
        try:
            presence.connected(request.sid, user, auth[0] if auth else None)
        except Exception:  # the presence store is down: the socket still works
            db.session.rollback()
            log.exception("presence on connect failed")


@socketio.on("disconnect")
def on_disconnect(*_reason):
    """Sent (by the server itself) when a socket closes or stops answering pings."""
    try:
        presence.disconnected(request.sid)
    except Exception:
        db.session.rollback()
        log.exception("presence on disconnect failed")
