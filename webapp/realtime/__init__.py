"""The one place that emits Socket.IO events.

Services call :func:`broadcast` after they have committed. The payload is the event's data
fields plus ``html``, a fragment rendered once for every receiver (:func:`render_fragment`);
browsers apply it with one generic out-of-band swap, other clients read the data fields. With a
message queue configured the emit reaches the clients of every worker and host, also from a
process that is not a web worker (the CLI).

A stored change (a table row, a chat message) is not broadcast directly: its event is recorded
in the change's own transaction and published after the commit by :mod:`.outbox`, whose relay
publishes whatever was committed but never published.

The package: :mod:`.broadcasts` (how a blueprint declares its events), :mod:`.streams` (which
streams exist and who reads them), :mod:`.outbox` and :mod:`.models` (numbering, storing,
relaying, ``stream:head``), :mod:`.routes` (``GET /events``) and :mod:`.live_list` (paging and
catch-up of every live list); :mod:`.presence` (who is connected), :mod:`.connections` (opening,
limiting and closing connections) and :mod:`.transport` (the relay between workers, the bounds
on what goes to and comes from a client).
"""

from typing import Any

from flask import current_app, render_template

from ..extensions import socketio


def render_fragment(template: str, **context: Any) -> str:
    """Render a fragment that is the same for every viewer.

    It is rendered outside the request that caused it, so nothing of that viewer (session,
    CSRF token, login) can leak into what everyone receives, and the CLI can render it too.
    """
    with current_app.test_request_context("/"):
        return render_template(template, **context)


def broadcast(
    event: str, data: dict[str, Any], html: str, to: str | list[str] | None = None
) -> None:
    """Send ``event`` with ``data`` and its rendered ``html`` to everyone (or a room, or rooms:
    each socket gets it once)."""
    payload = dict(data)
    payload["html"] = html
    socketio.emit(event, payload, to=to)


def notify(event: str, data: dict[str, Any], to: str | list[str] | None = None) -> None:
    """Send a data-only ``event`` (no page changes with it), e.g. development reloads."""
    socketio.emit(event, dict(data), to=to)


def notify_local(event: str, data: dict[str, Any], to: str | None = None) -> None:
    """Send a data-only ``event`` to the sockets of this worker only (every worker sends its own)."""
    socketio.emit(event, dict(data), to=to, ignore_queue=True)


def resync_local_clients() -> None:
    """Ask the clients of this worker only to catch up from the database (``server:resync``).

    Called whenever the message-queue listener (re)subscribes: what other workers published
    while it was not listening never reached this worker's clients.
    """
    socketio.emit("server:resync", {"reason": "queue"}, ignore_queue=True)


def resync_everyone(reason: str) -> None:
    """Ask every client of every worker to catch up from the database (``server:resync``).

    Sent when a worker died: changes it committed just before may never have been relayed.
    """
    socketio.emit("server:resync", {"reason": reason})
