"""The presence store: one entry per socket connection, shared by every worker.

Each entry holds its user, the worker that holds the socket, the tab's status (online while
the tab is shown and used, away while hidden or idle), the room it shows and when it was last
heard from. :func:`user_status` is the one rule that turns a user's entries into their status;
both backends (:mod:`.memory`, :mod:`.redis_store`) answer through it.

Workers die without saying goodbye (kill -9, a lost host), so disconnects are not the ground
truth: every worker refreshes a heartbeat key of its own with a time to live, and any worker's
reaper drops the entries of workers whose key has expired (:mod:`.tracking` runs the loop).
A worker also clears entries left under its own id (a reused pid) when it starts.

The same store counts sends for flood control and throttles typing events, so the limits hold
across workers.
"""

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..connections.worker import worker_id as default_worker_id

ONLINE, AWAY, OFFLINE = "online", "away", "offline"
TAB_STATUSES = (ONLINE, AWAY)
# Shown on pages while the store cannot be reached: nobody knows who is connected just then.
UNKNOWN = "unknown"


def _store_errors() -> tuple[type[BaseException], ...]:
    try:
        import redis
    except ImportError:  # memory only
        return (ConnectionError, TimeoutError)
    return (redis.RedisError, ConnectionError, TimeoutError)


# What a store that cannot be reached raises: callers degrade instead of failing the request.
STORE_ERRORS = _store_errors()


@dataclass
class Connection:
    sid: str
    user_id: int
    username: str
    worker: str
    status: str = ONLINE
    room: str | None = None
    last_seen: float = field(default_factory=time.time)


def user_status(tab_statuses: Iterable[str], chosen: str | None = None) -> str:
    """The status rule, written once: Offline without a tab; Away if the user chose it or no
    tab is online; else Online. ``tab_statuses``: the status of each of the user's tabs (or
    just the best of them); ``chosen``: AWAY when the user chose to appear away."""
    statuses = set(tab_statuses)
    if not statuses:
        return OFFLINE
    return ONLINE if ONLINE in statuses and chosen != AWAY else AWAY


def status_of(connections: Iterable[Connection], chosen: str | None = None) -> str:
    """The status of a user with these ``connections`` (see :func:`user_status`)."""
    return user_status((c.status for c in connections), chosen)


class PresenceStore:
    """The interface both backends implement."""

    def __init__(self, worker_id: str | None = None):
        self.worker_id = worker_id or default_worker_id()
        self.started = False
        # Workers the last reap() found dead (their events may never have been relayed).
        self.reaped: list[str] = []

    # Connections ---------------------------------------------------------------------------
    def add(self, connection: Connection) -> None:
        raise NotImplementedError

    def get(self, sid: str) -> Connection | None:
        raise NotImplementedError

    def update(self, sid: str, **fields) -> Connection | None:
        """Change ``status``/``room`` of a connection (and refresh last_seen).

        Answers the entry as it was before the change (what the tab showed until now), or None
        if the connection is gone.
        """
        raise NotImplementedError

    def remove(self, sid: str) -> Connection | None:
        raise NotImplementedError

    def connections(self, user_id: int) -> list[Connection]:
        raise NotImplementedError

    def status(self, user_id: int) -> str:
        return status_of(self.connections(user_id), self.chosen(user_id))

    def statuses(self, user_ids: Iterable[int]) -> dict[int, str]:
        return {user_id: self.status(user_id) for user_id in user_ids}

    # The status a user chose ------------------------------------------------------------
    def chosen(self, user_id: int) -> str | None:
        """AWAY when the user chose to appear away, else None (their tabs decide)."""
        raise NotImplementedError

    def choose(self, user_id: int, status: str) -> None:
        """Remember the user's choice: AWAY holds until they choose ONLINE again."""
        raise NotImplementedError

    # Workers -------------------------------------------------------------------------------
    def keep_alive(self, ttl: float) -> None:
        """Mark this worker alive for ``ttl`` seconds, and nothing else (no database, no
        announcement: it must not wait behind them)."""
        raise NotImplementedError

    def heartbeat(self, ttl: float) -> set[int]:
        """Mark this worker alive for ``ttl`` seconds and write its entries again if needed.

        Returns the users whose entries had to be written again because a reaper dropped them
        while this worker was too slow to beat (a reaper on another worker thought it dead).
        """
        raise NotImplementedError

    def reap(self) -> set[int]:
        """Drop the entries of workers whose heartbeat expired; the user ids that lost some."""
        raise NotImplementedError

    def clear_worker(self, worker_id: str | None = None) -> set[int]:
        """Drop every entry of a worker (this one by default); the user ids that lost some."""
        raise NotImplementedError

    # Limits --------------------------------------------------------------------------------
    def allow(self, key: str, limit: int, window: float) -> bool:
        """Count one event for ``key`` unless ``limit`` were counted in the last ``window`` s."""
        raise NotImplementedError

    def retry_after(self, key: str, limit: int, window: float) -> float:
        """Seconds until ``allow(key, limit, window)`` would count one more (0: now)."""
        raise NotImplementedError

    def throttle(self, key: str, interval: float) -> bool:
        """True at most once per ``interval`` seconds for ``key``."""
        raise NotImplementedError
