"""Socket.IO events of the chat, and the one connect/disconnect handler of the app.

Anonymous sockets may connect (they watch the table); every chat event needs a login, checked
here in each handler because ``login_required`` does not run for socket events. The login is
the one in the session the socket saw when it connected.
"""

import functools
import logging

from flask import current_app, request
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, join_room, leave_room

from ..errors import NotFound, ValidationError
from ..extensions import db, socketio
from ..ratelimits import client_address, limit_user
from . import services
from .broadcasts import channel, channel_of

log = logging.getLogger(__name__)

LOGIN_NEEDED = "Log in to chat."
NOT_AN_OBJECT = "Send a JSON object with the event's fields."
SERVER_BUSY_WAIT = 5  # seconds a refused socket waits before it tries again


def chat_event(name: str):
    """Register a handler ``fn(user, data) -> dict`` that answers every call through its ack."""

    def register(fn):
        @functools.wraps(fn)
        def handler(*args):
            try:
                # Loading the user reads the database too: inside the try, so that a
                # database that is down or a full pool still gets an answer.
                if not current_user.is_authenticated:
                    return {"ok": False, "error": LOGIN_NEEDED}
                if len(args) != 1 or not isinstance(args[0], dict):
                    return {"ok": False, "error": NOT_AN_OBJECT}
                return {"ok": True, **(fn(current_user._get_current_object(), args[0]) or {})}
            except (ValidationError, NotFound) as error:
                db.session.rollback()
                answer = {"ok": False, "error": str(error)}
                if getattr(error, "retry_after", None):
                    # Refused for now (a rate limit, flood control): the same event is accepted after this.
                    answer["retry_after"] = error.retry_after
                return answer
            except Exception:  # a store or database failure, never the client's input
                db.session.rollback()
                log.exception("%s failed", name)
                # ``retry``: not the client's fault; the same event may succeed in a moment.
                return {
                    "ok": False,
                    "retry": True,
                    "error": "The server could not do that just now. Try again.",
                }

        return socketio.on(name)(handler)

    return register


@socketio.on("connect")
def on_connect(*auth):
    """Sent by every browser tab and client when its socket opens; anonymous ones only watch.

    Its optional auth data ``{"status": "away"}`` says the tab opened hidden or idle.
    """
    wait = current_app.extensions["rate_limits"].hit(
        "RATELIMIT_SOCKET_CONNECTS_PER_IP", client_address()
    )
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
        try:
            user = current_user._get_current_object()
            services.connected(request.sid, user, auth[0] if auth else None)
        except Exception:  # the presence store is down: the socket still works
            db.session.rollback()
            log.exception("presence on connect failed")


@socketio.on("disconnect")
def on_disconnect(*_reason):
    """Sent (by the server itself) when a socket closes or stops answering pings."""
    try:
        services.disconnected(request.sid)
    except Exception:
        db.session.rollback()
        log.exception("presence on disconnect failed")


@chat_event("chat:join")
def on_join(user, data):
    """Sent by a room page (after every connect) or a client: receive this room's events."""
    room = services.find_room(data.get("room"))
    previous = services.enter_room(request.sid, user, room)
    if previous:
        leave_room(channel_of(previous))
    join_room(channel(room))
    # Membership only: what this socket shows counts as read while its tab is looked at.
    services.join(user, room, read=False)
    return {
        "room": room.name,
        "last_id": services.last_message_id(room),
        "members": services.member_statuses(room),
    }


@chat_event("chat:leave")
def on_leave(user, data):
    """Sent by a room page when the user switches away, or by a client."""
    room = services.find_room(data.get("room"))
    leave_room(channel(room))
    services.leave_room(request.sid, user, room)


@chat_event("chat:send")
def on_send(user, data):
    """Sent by the composer (with a client id it reuses when it resends) or a client."""
    room = services.find_room(data.get("room"))
    message, _created = services.post_message(user, room, data.get("body"), data.get("client_id"))
    return {"id": message.id}


@chat_event("chat:edit")
def on_edit(user, data):
    """Sent by the author of a message to change its text."""
    limit_user("RATELIMIT_EDITS_PER_USER", user)
    message = services.edit_message(user, data.get("id"), data.get("body"))
    return {"id": message.id}


@chat_event("chat:delete")
def on_delete(user, data):
    """Sent by the author of a message to remove it."""
    services.delete_message(user, data.get("id"))
    return {"id": data["id"]}


@chat_event("chat:typing")
def on_typing(user, data):
    """Sent by the composer at most once a second while the user types."""
    services.typing(user, services.find_room(data.get("room")))


@chat_event("presence:set")
def on_presence(user, data):
    """Sent by a tab when it is hidden, idle or back, or (``chosen``) when the user picks one."""
    limit_user("RATELIMIT_PRESENCE_PER_USER", user)
    status = services.set_status(request.sid, user, data.get("status"), data.get("chosen", False))
    return {"status": status}
