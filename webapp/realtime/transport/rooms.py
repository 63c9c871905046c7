"""Emits to some rooms except the sockets of another: ``to=[*rooms, but_not(room)]``.

A chat message goes to the room's channel (every socket showing the room gets ``chat:message``)
and, as ``chat:activity``, to the channels of all the room's members, for their sidebars. A
socket showing the room needs only the first: without this, a room of 1000 people all looking
at it would send 2000 packets per message instead of 1000. The exclusion travels in the emit's
list of rooms, so it crosses the message queue like any emit and every worker applies it to its
own sockets; it rests on ``get_participants``, the manager method python-socketio's emits ask
for their receivers.
"""

import socketio

EXCEPT = "!"


def but_not(room: str) -> str:
    """A name in an emit's list of rooms: the sockets in ``room`` get nothing of that emit."""
    return EXCEPT + room


class ExceptRooms:
    """Mixed in before a python-socketio manager: lists of rooms may name rooms to leave out."""

    def get_participants(self, namespace, room):
        if not isinstance(room, list | tuple) or not any(_excluded(r) for r in room):
            yield from super().get_participants(namespace, room)
            return
        include = [r for r in room if not _excluded(r)]
        exclude = [r[len(EXCEPT) :] for r in room if _excluded(r)]
        if not include:
            return
        skip = {sid for sid, _eio_sid in super().get_participants(namespace, exclude)}
        for sid, eio_sid in super().get_participants(namespace, include):
            if sid not in skip:
                yield sid, eio_sid


def _excluded(room) -> bool:
    return isinstance(room, str) and room.startswith(EXCEPT)


class LocalManager(ExceptRooms, socketio.Manager):
    """python-socketio's manager for one process (no message queue)."""
