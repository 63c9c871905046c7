"""Who is connected, shared by every worker: one entry per socket connection.

- :mod:`.store`: the entry (``Connection``), the status rule (``user_status``: online > away >
  offline, written once) and the interface both backends implement;
- :mod:`.memory` and :mod:`.redis_store`: the backends (process memory for one worker, Redis for
  several; Redis' atomic steps are the Lua files in ``scripts/``);
- :mod:`.tracking`: sockets that open, close or change status, the heartbeat and reaper loop,
  and the hooks (``on_change``, ``on_stop_showing``) through which the chat hears about it.

A user is Offline without a connection; Away when they chose "Appear away" (a choice stored per
user, so it holds in every tab and browser until they change it) or when all of their tabs are
away; Online otherwise.
"""

from .memory import MemoryPresence
from .redis_store import RedisPresence
from .store import (
    AWAY,
    OFFLINE,
    ONLINE,
    STORE_ERRORS,
    TAB_STATUSES,
    UNKNOWN,
    Connection,
    PresenceStore,
    status_of,
    user_status,
)
from .tracking import (
    appears_away,
    beat_and_reap,
    connected,
    create_store,
    disconnected,
    init_app,
    on_change,
    on_stop_showing,
    set_status,
    showed,
    start_worker,
    stop_worker,
    store,
    store_down,
)

__all__ = [
    "AWAY",
    "OFFLINE",
    "ONLINE",
    "STORE_ERRORS",
    "TAB_STATUSES",
    "UNKNOWN",
    "Connection",
    "MemoryPresence",
    "PresenceStore",
    "RedisPresence",
    "appears_away",
    "beat_and_reap",
    "connected",
    "create_store",
    "disconnected",
    "init_app",
    "on_change",
    "on_stop_showing",
    "set_status",
    "showed",
    "start_worker",
    "status_of",
    "stop_worker",
    "store",
    "store_down",
    "user_status",
]
