"""Presence kept up to date: sockets that open, close and change status, the heartbeat and the
reaper, and the hooks through which a feature hears about it.

Whoever shows presence (the chat) registers two hooks: :func:`on_change`, called with the users
whose status may have changed (to announce them), and :func:`on_stop_showing`, called with a
connection whose tab stopped showing its room to someone looking at it (to count what it showed
as read). Nothing here knows what a room is beyond the name a connection carries.
"""

import logging
from collections.abc import Callable

from flask import current_app

from ...config import presence_key_prefix, presence_url
from ...errors import ValidationError
from ...extensions import socketio
from .. import notify, resync_everyone
from .memory import MemoryPresence
from .redis_store import RedisPresence
from .store import AWAY, ONLINE, STORE_ERRORS, TAB_STATUSES, Connection, PresenceStore, status_of

log = logging.getLogger(__name__)

_hooks: dict[str, list[Callable]] = {"change": [], "stop_showing": []}


def on_change(fn: Callable[[set[int]], object]) -> Callable:
    """Register ``fn(user_ids)``: these users' status may have changed (announce it)."""
    _hooks["change"].append(fn)
    return fn


def on_stop_showing(fn: Callable[[Connection], object]) -> Callable:
    """Register ``fn(connection)``: its tab stopped showing ``connection.room`` to its user."""
    _hooks["stop_showing"].append(fn)
    return fn


def _changed(user_ids: set[int]) -> None:
    for fn in _hooks["change"]:
        fn(user_ids)


def _stopped_showing(connection: Connection) -> None:
    for fn in _hooks["stop_showing"]:
        fn(connection)


def store() -> PresenceStore:
    """This app's presence store."""
    return current_app.extensions["presence"]


def store_down(what: str, error: Exception) -> None:
    """Log that the store could not be reached for ``what`` (the caller degrades)."""
    current_app.logger.warning("presence store unavailable (%s): %s", what, error)


def showed(connection: Connection | None) -> bool:
    """A socket whose page shows a room to someone looking at it (tab shown and used)."""
    return bool(connection and connection.room and connection.status == ONLINE)


# Sockets ----------------------------------------------------------------------------------


def _announce_if_changed(connection: Connection, others: list[Connection]) -> None:
    """Announce the user of ``connection`` if it alone, opening or closing beside ``others``
    (their other sockets), changes their status."""
    chosen = store().chosen(connection.user_id)
    if status_of(others, chosen) != status_of([*others, connection], chosen):
        _changed({connection.user_id})


def connected(sid: str, user, auth=None) -> None:
    """A logged-in socket opened; its auth data ``{"status": "away"}`` says its tab is hidden."""
    status = auth.get("status") if isinstance(auth, dict) else None
    status = status if status in TAB_STATUSES else ONLINE
    connection = Connection(sid, user.id, user.username, store().worker_id, status)
    try:
        start_worker(current_app._get_current_object(), store(), beat_and_reap)
    finally:
        # Even when the store is down: this worker then remembers the socket, and its
        # heartbeat writes it once the store is back.
        store().add(connection)
    _announce_if_changed(connection, [c for c in store().connections(user.id) if c.sid != sid])


def disconnected(sid: str) -> None:
    """A socket closed: what it showed stops showing, and its user may now be Away or Offline."""
    # Removed first: a socket that closed while the store was down must not be written back.
    connection = store().remove(sid)
    if connection is None:
        return
    if showed(connection):
        _stopped_showing(connection)
    _announce_if_changed(connection, store().connections(connection.user_id))


def set_status(sid: str, user, status, chosen=False) -> str:
    """A tab is shown and used (online) or hidden or idle (away); returns the user's status.

    ``chosen``: the user picked the status for their account ("Appear away"): it holds in every
    tab and browser until they pick again, and each of their pages' switches follows it.
    """
    if status not in TAB_STATUSES:
        raise ValidationError("'status' must be 'online' or 'away'.")
    if not isinstance(chosen, bool):
        raise ValidationError("'chosen' must be true or false.")
    before = store().status(user.id)
    if chosen:
        store().choose(user.id, status)
        for connection in store().connections(user.id):
            notify("presence:chosen", {"status": status}, to=connection.sid)
    else:
        shown = store().update(sid, status=status)
        if shown is None:
            store().add(Connection(sid, user.id, user.username, store().worker_id, status))
        elif status == AWAY and showed(shown):
            _stopped_showing(shown)  # hidden or idle now: what it showed until now is read
    after = store().status(user.id)
    if after != before:
        _changed({user.id})
    return after


def appears_away(user) -> bool:
    """Whether ``user`` chose to appear away (False while the store cannot say)."""
    try:
        return store().chosen(user.id) == AWAY
    except STORE_ERRORS as error:
        store_down("chosen status", error)
        return False


# Workers ----------------------------------------------------------------------------------


def beat_and_reap(changed: set[int] = frozenset()) -> set[int]:
    """This worker is alive; entries of dead workers go, and their users' new status is told."""
    changed = set(changed)
    changed |= store().heartbeat(current_app.config["PRESENCE_TTL_SECONDS"])
    changed |= store().reap()
    if store().reaped:
        # A worker died: what it stored just before may never have been relayed to the others.
        resync_everyone("worker")
    if changed:
        _changed(changed)
    return changed


def start_worker(app, store: PresenceStore, tick: Callable[[set[int]], object]) -> None:
    """Once per worker process: clear our stale entries, then beat and reap every few seconds.

    ``tick(users)`` beats, reaps and announces the users whose status changed, ``users`` too.
    A tick can take long: announcing a hundred users reaped after a worker died, while the
    reconnecting tabs hold every pooled database connection, waited for the pool for seconds.
    So a second loop does nothing but keep this worker's heartbeat key alive: a busy worker is
    never taken for a dead one (which dropped all of its users and announced them Offline).
    ``stop_worker`` ends both loops.
    """
    if store.started:
        return
    store.started = True
    try:
        tick(store.clear_worker())
    except Exception:
        store.started = False  # the store is down: the next connection tries again
        raise
    if not app.config["PRESENCE_BACKGROUND"]:
        return

    interval = app.config["PRESENCE_HEARTBEAT_SECONDS"]
    ttl = app.config["PRESENCE_TTL_SECONDS"]

    def keep_alive_forever():
        while store.started:
            socketio.sleep(interval)
            try:
                store.keep_alive(ttl)
            except STORE_ERRORS:  # the store is down for a moment: the tick logs it
                pass

    def beat_and_reap_forever():
        while store.started:
            socketio.sleep(interval)
            try:
                with app.app_context():
                    tick(set())
            except Exception:  # the store is down for a moment: try again next beat
                log.exception("presence heartbeat failed")

    socketio.start_background_task(keep_alive_forever)
    socketio.start_background_task(beat_and_reap_forever)


def stop_worker(store: PresenceStore) -> None:
    """End the loops of :func:`start_worker` (after their current pause)."""
    store.started = False


# The store of an app ----------------------------------------------------------------------


def create_store(app) -> PresenceStore:
    """The store this app's configuration asks for (``PRESENCE_URL``, see webapp/config.py)."""
    url = presence_url(app.config)
    if url:
        return RedisPresence(url, prefix=presence_key_prefix(app.config))
    if app.config["MESSAGE_QUEUE_URL"]:
        # gunicorn.conf.py refuses several workers like this; several hosts it cannot see.
        log.warning(
            "MESSAGE_QUEUE_URL is not Redis and PRESENCE_URL is not set: chat presence is kept "
            "in this process's memory, right for one worker on one host only. Set PRESENCE_URL "
            "to a redis:// URL so that every worker and host shares it."
        )
    return MemoryPresence()


def init_app(app) -> None:
    app.extensions["presence"] = create_store(app)
