"""Every event a chat room sends, in one place.

Messages, their edits and deletions are numbered in the room's stream (``room:<name>``, by the
room's lower-case name, which never changes); presence and typing are not (a page's member list
catches up on its own, and typing is over in seconds). Each goes to the room's channel only.
Events per user (``presence:chosen``) are not a room's and are sent by the services.

The sidebar's events go to people, not to a room's page: each user's own channel
(webapp/realtime/users.py). ``chat:activity`` is one emit per message to the channels of all the
room's members, with data fields only (each page raises its own count); ``chat:unread`` and
``chat:mention`` go to one user, with that user's counts of the room's sidebar entry; ``chat:room`` to every
logged-in user (a new public room) or to the users named.
"""

from ..clock import iso_utc
from ..realtime.broadcasts import Broadcast
from ..realtime.transport.rooms import but_not
from ..realtime.users import LOGGED_IN, user_channel, user_channels
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


# A new message, told to every member of its room wherever they are (their sidebars), except
# the sockets showing the room: chat:message tells them already.
ACTIVITY = Broadcast(
    "chat:activity",
    None,
    # room, id, author: read before the message's commit, so that sending costs no query.
    fields=lambda activity, room_key, member_ids: activity,
    to=lambda activity, room_key, member_ids: (
        [
            *user_channels(member_ids),
            but_not(channel_of(room_key)),
        ]
        if member_ids
        else []
    ),
)


# One user's counts of one room changed on their side (read elsewhere, all marked read).
UNREAD = Broadcast(
    "chat:unread",
    "chat/_room_badges.html",
    fields=lambda entry, user_id: {
        "room": entry.room.name,
        "unread": entry.unread,
        "mentions": entry.mentions,
    },
    context=lambda entry, user_id: {**entry._asdict(), "oob": True},
    to=lambda entry, user_id: user_channel(user_id),
)

# A message names this user (who may read its room) as @username.
MENTION = Broadcast(
    "chat:mention",
    "chat/_room_badges.html",
    fields=lambda message, entry, user_id, excerpt: {
        "room": message.room.name,
        "id": message.id,
        "author": message.author.username,
        "excerpt": excerpt,
    },
    context=lambda message, entry, user_id, excerpt: {**entry._asdict(), "oob": True},
    to=lambda message, entry, user_id, excerpt: user_channel(user_id),
)

# A room became visible: to every logged-in user (``user_ids`` None) or to those users.
ROOM = Broadcast(
    "chat:room",
    "chat/_room_added.html",
    fields=lambda entry, user_ids: {"room": entry.room.name},
    context=lambda entry, user_ids: entry._asdict(),
    to=lambda entry, user_ids: LOGGED_IN if user_ids is None else user_channels(user_ids),
)
