"""Every event a chat room sends, in one place.

Messages, their edits and deletions are numbered in the room's stream (``room:<name>``, by the
room's lower-case name, which never changes); presence and typing are not (a page's member list
catches up on its own, and typing is over in seconds). Each goes to the room's channel only.
Events per user (``presence:chosen``) are not a room's and are sent by the services.
"""

from ..clock import iso_utc
from ..realtime.broadcasts import Broadcast
from .models import Message, Room

ROOM_KIND = "room"


def room_stream(room: Room) -> str:
    """The stream of a room's messages: ``room:<name>``, by its lower-case name."""
    return f"{ROOM_KIND}:{room.name_key}"


def channel_of(key: str) -> str:
    """The Socket.IO room of the chat room whose lower-case name is ``key``."""
    return f"chat:{key}"


def channel(room: Room) -> str:
    """The Socket.IO room of a chat room: its sockets get its messages, typing and presence."""
    return channel_of(room.name_key)


def _message_stream(message: Message, **_) -> str:
    return room_stream(message.room)


def _message_channel(message: Message, **_) -> str:
    return channel(message.room)


# A new message (a resend of a stored one sends nothing).
MESSAGE = Broadcast(
    "chat:message",
    "chat/_catchup.html",
    fields=lambda message: {k: v for k, v in message.to_dict().items() if k != "edited_at"},
    context=lambda message: {"messages": [message]},
    stream=_message_stream,
    to=_message_channel,
)

MESSAGE_EDITED = Broadcast(
    "chat:message-edited",
    "chat/_message.html",
    fields=lambda message: {
        "id": message.id,
        "room": message.room.name,
        "body": message.body,
        "edited_at": iso_utc(message.edited_at),
    },
    context=lambda message: {"message": message, "oob": True},
    stream=_message_stream,
    to=_message_channel,
)

MESSAGE_DELETED = Broadcast(
    "chat:message-deleted",
    "chat/_message_deleted.html",
    fields=lambda message: {"id": message.id, "room": message.room.name},
    context=lambda message: {"message_id": message.id},
    stream=_message_stream,
    to=_message_channel,
)

# Someone is typing in the room (not numbered: over in seconds).
TYPING = Broadcast(
    "chat:typing",
    "chat/_typing.html",
    fields=lambda room, user: {"room": room.name, "user": user.username},
    to=lambda room, user: channel(room),
)

# A member's status changed, told to every room they are a member of (not numbered: the member
# list catches up as a whole).
PRESENCE = Broadcast(
    "chat:presence",
    "chat/_member_presence.html",
    fields=lambda rooms, user, status: {"user": user.username, "status": status},
    context=lambda rooms, user, status: {"user": user, "status": status},
    to=lambda rooms, user, status: [channel(room) for room in rooms],
)

# A member left the room or was removed: every member list that shows them drops them (not
# numbered: the member list catches up as a whole).
MEMBER_LEFT = Broadcast(
    "chat:member-left",
    "chat/_member_left.html",
    fields=lambda room, user: {"room": room.name, "user": user.username},
    context=lambda room, user: {"user": user},
    to=lambda room, user: channel(room),
)
