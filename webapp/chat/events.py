"""Socket.IO events of the chat.

Every chat event needs a login, checked here in each handler because ``login_required`` does
not run for socket events. The login is the one in the session the socket saw when it
connected. Opening and closing sockets is the app's, not the chat's
(webapp/realtime/connections/sockets.py).
"""

import functools
import logging

from flask import request
from flask_login import current_user
from flask_socketio import join_room, leave_room

from ..errors import NotFound, ValidationError
from ..extensions import db, socketio
from ..ratelimits import limit_user
from ..realtime import presence
from . import services
from .broadcasts import channel, channel_of

log = logging.getLogger(__name__)

LOGIN_NEEDED = "Log in to chat."
NOT_AN_OBJECT = "Send a JSON object with the event's fields."


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


@chat_event("chat:join")
def on_join(user, data):
    """Sent by a room page (after every connect) or a client: receive this room's events.

    It subscribes only (a public room: anyone logged in; a private one: its members); it makes
    nobody a member.
    """
    room = services.readable_room(user, data.get("room"))
    previous = services.enter_room(request.sid, user, room)
    if previous:
        leave_room(channel_of(previous))
    join_room(channel(room))
    return {
        "room": room.name,
        "last_id": services.last_message_id(room),
        "members": services.member_statuses(room),
    }


@chat_event("chat:leave")
def on_leave(user, data):
    """Sent by a room page when the user switches away, or by a client (unsubscribes only)."""
    room = services.readable_room(user, data.get("room"))
    leave_room(channel(room))
    services.leave_room(request.sid, user, room)


@chat_event("chat:send")
def on_send(user, data):
    """Sent by the composer (with a client id it reuses when it resends) or a client."""
    room = services.readable_room(user, data.get("room"))
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
    services.typing(user, services.readable_room(user, data.get("room")))


@chat_event("presence:set")
def on_presence(user, data):
    """Sent by a tab when it is hidden, idle or back, or (``chosen``) when the user picks one."""
    limit_user("RATELIMIT_PRESENCE_PER_USER", user)
    status = presence.set_status(request.sid, user, data.get("status"), data.get("chosen", False))
    return {"status": status}
