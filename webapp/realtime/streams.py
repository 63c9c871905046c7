"""Which streams exist and who may read them.

A stream is named ``kind`` or ``kind:key`` (``table``, ``room:general``). Each blueprint
registers its kinds here (``webapp/table/broadcasts.py``, ``webapp/chat/broadcasts.py``): who
may read a stream of that kind (``GET /events``) and which Socket.IO room watches it (where its
``stream:head`` goes). The realtime package itself knows no blueprint.
"""

from collections.abc import Callable
from dataclasses import dataclass


class StreamRefused(Exception):
    """The viewer may not read this stream; ``str(error)`` says why, ``status`` how to answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class StreamKind:
    # Raises StreamRefused unless the current viewer may read the stream with this key
    # (None for a stream named by its kind alone).
    check_readable: Callable[[str | None], None]
    # The Socket.IO room of every socket that watches the stream (None: every socket).
    channel: Callable[[str | None], str | None]


_kinds: dict[str, StreamKind] = {}


def register(kind: str, check_readable, channel) -> None:
    """Declare the streams named ``kind`` or ``kind:<key>`` (once per kind, at import)."""
    _kinds[kind] = StreamKind(check_readable, channel)


def parse(stream: str) -> tuple[StreamKind, str | None]:
    """The kind and key of a stream's name; StreamRefused for a name no blueprint declared."""
    kind, _sep, key = stream.partition(":")
    found = _kinds.get(kind)
    if found is None or (_sep and not key):
        raise StreamRefused(f"There is no stream '{stream}'.")
    return found, key if _sep else None


def check_readable(stream: str) -> None:
    """Raise StreamRefused unless the current viewer may read ``stream``."""
    kind, key = parse(stream)
    kind.check_readable(key)


def channel(stream: str) -> str | None:
    """The Socket.IO room that watches ``stream`` (None: every socket)."""
    kind, key = parse(stream)
    return kind.channel(key)
