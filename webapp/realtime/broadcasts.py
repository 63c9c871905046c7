"""Event declarations: each blueprint lists the events it sends in its own ``broadcasts.py``.

A :class:`Broadcast` says, in one place, an event's name, its stream (numbered events only),
the Socket.IO room it goes to, its data fields and the fragment rendered once for everyone,
the way a model's broadcasts are declared in turbo-rails. Services call :meth:`Broadcast.record`
before their commit (numbered events, stored by the outbox in the change's transaction) and
:func:`outbox.publish` after it, or :meth:`Broadcast.send` after the commit for the events that
are not numbered (presence, typing). An event that changes no page by itself (``template`` None)
is sent with its data fields only.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import broadcast, notify, outbox, render_fragment


def _nowhere(**subject: Any) -> None:
    return None


@dataclass(frozen=True)
class Broadcast:
    name: str
    # The fragment every receiver gets as ``html``; None: data fields only (the page decides).
    template: str | None
    # The data fields from the subject (keyword arguments of record/send).
    fields: Callable[..., dict[str, Any]]
    # The template's context from the subject (default: the subject itself).
    context: Callable[..., dict[str, Any]] | None = None
    # The stream it is numbered in; None: not numbered (then only send() applies).
    stream: Callable[..., str] | None = None
    # The Socket.IO room (or rooms) it goes to; None: every socket.
    to: Callable[..., str | list[str] | None] = _nowhere

    def render(self, **subject: Any) -> str:
        context = self.context(**subject) if self.context else subject
        return render_fragment(self.template, **context)

    def record(self, **subject: Any) -> outbox.StreamEvent:
        """Number and store the event in the current transaction; publish it after the commit."""
        if self.stream is None:
            raise TypeError(f"{self.name} is not numbered: send() it after the commit")
        return outbox.record(
            self.stream(**subject),
            self.name,
            self.fields(**subject),
            self.render(**subject),
            to=self.to(**subject),
        )

    def send(self, **subject: Any) -> None:
        """Send an event that is not numbered (call it after the commit)."""
        if self.stream is not None:
            raise TypeError(f"{self.name} is numbered: record() it before the commit")
        to = self.to(**subject)
        if isinstance(to, list) and not to:
            return  # nobody to tell (an empty list of rooms would mean every socket)
        if self.template is None:
            return notify(self.name, self.fields(**subject), to=to)
        broadcast(self.name, self.fields(**subject), self.render(**subject), to=to)
