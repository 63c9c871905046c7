"""Who is connected, shared by every worker: one entry per socket connection.

Each entry holds its user, the worker that holds the socket, the tab's status (online while
the tab is shown and used, away while hidden or idle), the room it has joined and when it was
last heard from. A user is Offline without a connection; Away when they chose "Appear away" (a
choice stored per user, so it holds in every tab and browser until they change it) or when all
of their tabs are away; Online otherwise.

Workers die without saying goodbye (kill -9, a lost host), so disconnects are not the ground
truth: every worker refreshes a heartbeat key of its own with a time to live, and any worker's
reaper drops the entries of workers whose key has expired and announces the users who changed.
A worker also clears entries left under its own id (a reused pid) when it starts.

The same store counts sends for flood control and throttles typing events, so the limits hold
across workers. Backends: Redis when ``PRESENCE_URL`` or ``MESSAGE_QUEUE_URL`` is redis://...,
else process memory (one process, or tests).
"""

import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace

from ..config import REDIS_SCHEMES
from ..extensions import socketio

log = logging.getLogger(__name__)

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


def user_status(connections: Iterable[Connection], chosen: str | None = None) -> str:
    """Offline without a tab; Away if the user chose it or every tab is away; else Online."""
    statuses = {c.status for c in connections}
    if not statuses:
        return OFFLINE
    return ONLINE if ONLINE in statuses and chosen != AWAY else AWAY


def default_worker_id() -> str:
    # Host and pid: a pid is unique among the live processes of a host, so entries found under
    # this id at start belong to a dead process that had the same pid.
    return f"{socket.gethostname()}:{os.getpid()}"


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
        return user_status(self.connections(user_id), self.chosen(user_id))

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


class _MemoryState:
    def __init__(self):
        self.lock = threading.Lock()
        self.connections: dict[str, Connection] = {}
        self.chosen: dict[int, str] = {}
        self.alive: dict[str, float] = {}
        self.counters: dict[str, deque] = {}
        self.throttles: dict[str, float] = {}


class MemoryPresence(PresenceStore):
    """Everything in this process: right for one worker. ``state`` may be shared in tests."""

    def __init__(
        self,
        worker_id: str | None = None,
        state: _MemoryState | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(worker_id)
        self.state = state or _MemoryState()
        self.clock = clock

    def add(self, connection: Connection) -> None:
        with self.state.lock:
            self.state.connections[connection.sid] = connection

    def get(self, sid: str) -> Connection | None:
        with self.state.lock:
            return self.state.connections.get(sid)

    def update(self, sid: str, **fields) -> Connection | None:
        with self.state.lock:
            connection = self.state.connections.get(sid)
            if connection is None:
                return None
            before = replace(connection)
            for name, value in fields.items():
                setattr(connection, name, value)
            connection.last_seen = time.time()
            return before

    def remove(self, sid: str) -> Connection | None:
        with self.state.lock:
            return self.state.connections.pop(sid, None)

    def connections(self, user_id: int) -> list[Connection]:
        with self.state.lock:
            return [c for c in self.state.connections.values() if c.user_id == user_id]

    def chosen(self, user_id: int) -> str | None:
        with self.state.lock:
            return self.state.chosen.get(user_id)

    def choose(self, user_id: int, status: str) -> None:
        with self.state.lock:
            if status == AWAY:
                self.state.chosen[user_id] = AWAY
            else:
                self.state.chosen.pop(user_id, None)

    def keep_alive(self, ttl: float) -> None:
        with self.state.lock:
            self.state.alive[self.worker_id] = self.clock() + ttl

    def heartbeat(self, ttl: float) -> set[int]:
        self.keep_alive(ttl)
        return set()

    def reap(self) -> set[int]:
        now = self.clock()
        with self.state.lock:
            dead = {w for w, until in self.state.alive.items() if until <= now}
            # Entries of a worker that never beat at all are dead too (except our own).
            dead |= {
                c.worker
                for c in self.state.connections.values()
                if c.worker not in self.state.alive and c.worker != self.worker_id
            }
            for worker in dead:
                self.state.alive.pop(worker, None)
        users: set[int] = set()
        self.reaped = sorted(dead - {self.worker_id})
        for worker in self.reaped:
            users |= self.clear_worker(worker)
        return users

    def clear_worker(self, worker_id: str | None = None) -> set[int]:
        worker_id = worker_id or self.worker_id
        with self.state.lock:
            gone = [c for c in self.state.connections.values() if c.worker == worker_id]
            for connection in gone:
                del self.state.connections[connection.sid]
        return {c.user_id for c in gone}

    def allow(self, key: str, limit: int, window: float) -> bool:
        now = self.clock()
        with self.state.lock:
            hits = self.state.counters.setdefault(key, deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= limit:
                return False
            hits.append(now)
            return True

    def retry_after(self, key: str, limit: int, window: float) -> float:
        now = self.clock()
        with self.state.lock:
            hits = [t for t in self.state.counters.get(key, ()) if t > now - window]
        # Allowed again once the limit-th newest hit has left the window.
        return max(0.0, hits[-limit] + window - now) if len(hits) >= limit else 0.0

    def throttle(self, key: str, interval: float) -> bool:
        now = self.clock()
        with self.state.lock:
            if self.state.throttles.get(key, 0) > now:
                return False
            self.state.throttles[key] = now + interval
            if len(self.state.throttles) > 10_000:  # forget expired keys now and then
                self.state.throttles = {k: t for k, t in self.state.throttles.items() if t > now}
            return True


# Count within a sliding window atomically, so that workers racing never let an 11th through.
_ALLOW_SCRIPT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
return 1
"""

# Change fields of an entry only if it still exists; answer the whole entry as it was before.
_UPDATE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local before = redis.call('HGETALL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV))
return before
"""

# Every user's status in one call, worked out inside Redis: a room page's join asks for all of
# its members at once, and one command per open tab made that O(tabs) round-trip replies per
# join (a 5000-member room joined by all its tabs at once spent its time parsing them).
# ARGV: the "user:", "conn:" and "chosen:" key prefixes, then user ids. Answers per user (the
# rule of user_status): 2 online (a tab online, away not chosen), 1 away (tabs, none online, or
# away chosen), 0 offline (no tab).
_STATUSES_SCRIPT = """
local answers = {}
for i = 4, #ARGV do
  local best = 0
  for _, sid in ipairs(redis.call('SMEMBERS', ARGV[1] .. ARGV[i])) do
    local status = redis.call('HGET', ARGV[2] .. sid, 'status')
    if status == 'online' then best = 2 break end
    if status then best = 1 end
  end
  if best == 2 and redis.call('GET', ARGV[3] .. ARGV[i]) == 'away' then best = 1 end
  answers[#answers + 1] = best
end
return answers
"""
_STATUS_CODES = {2: ONLINE, 1: AWAY, 0: OFFLINE}


class RedisPresence(PresenceStore):
    """Entries in Redis, shared by every worker and host that uses the same URL and prefix.

    Keys: ``conn:<sid>`` (hash), ``user:<id>`` and ``worker:<id>`` (sets of sids), ``workers``
    (set), ``alive:<worker>`` (heartbeat with a TTL), ``chosen:<id>`` (a user's chosen status,
    no TTL: it holds until changed), ``flood:*`` and ``throttle:*``.
    """

    def __init__(
        self,
        url: str,
        prefix: str = "presence:",
        worker_id: str | None = None,
        max_connections: int = 50,
    ):
        import redis

        super().__init__(worker_id)
        # A blocking pool: when a thousand sockets close at once (a proxy restarts, a network
        # blips) their disconnect handlers queue for a connection instead of failing with
        # "Too many connections" once redis-py's default 100 are in use.
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=10,
            decode_responses=True,
            socket_timeout=5,
            socket_connect_timeout=5,
            health_check_interval=30,
        )
        self.redis = redis.Redis(connection_pool=pool)
        self.prefix = prefix
        self._allow = self.redis.register_script(_ALLOW_SCRIPT)
        self._update = self.redis.register_script(_UPDATE_SCRIPT)
        self._statuses = self.redis.register_script(_STATUSES_SCRIPT)
        # This worker's own connections: what the store must hold for it (see heartbeat).
        self.local: dict[str, Connection] = {}

    def _key(self, *parts) -> str:
        return self.prefix + ":".join(str(p) for p in parts)

    @staticmethod
    def _decode(sid: str, data: dict) -> Connection | None:
        if not data or "user_id" not in data:
            return None
        return Connection(
            sid=sid,
            user_id=int(data["user_id"]),
            username=data["username"],
            worker=data["worker"],
            status=data.get("status", ONLINE),
            room=data.get("room") or None,
            last_seen=float(data.get("last_seen", 0)),
        )

    def add(self, connection: Connection) -> None:
        if connection.worker == self.worker_id:
            self.local[connection.sid] = connection
        self._write([connection])

    def _write(self, connections: Iterable[Connection]) -> None:
        pipe = self.redis.pipeline()
        for connection in connections:
            self._queue_write(pipe, connection)
        pipe.execute()

    def _queue_write(self, pipe, connection: Connection) -> None:
        data = {k: ("" if v is None else v) for k, v in asdict(connection).items() if k != "sid"}
        pipe.hset(self._key("conn", connection.sid), mapping=data)
        pipe.sadd(self._key("user", connection.user_id), connection.sid)
        pipe.sadd(self._key("worker", connection.worker), connection.sid)
        pipe.sadd(self._key("workers"), connection.worker)

    def get(self, sid: str) -> Connection | None:
        return self._decode(sid, self.redis.hgetall(self._key("conn", sid)))

    def update(self, sid: str, **fields) -> Connection | None:
        values = {k: ("" if v is None else v) for k, v in fields.items()}
        values["last_seen"] = time.time()
        args = [item for pair in values.items() for item in pair]
        # Atomic: a disconnect racing this update must not leave half an entry behind.
        data = self._update(keys=[self._key("conn", sid)], args=args)
        before = self._decode(sid, dict(zip(data[::2], data[1::2]))) if data else None
        if before is not None and sid in self.local:
            self.local[sid] = replace(before, **fields, last_seen=values["last_seen"])
        return before

    def remove(self, sid: str) -> Connection | None:
        self.local.pop(sid, None)
        connection = self.get(sid)
        if connection is None:
            return None
        self._drop([connection])
        return connection

    def _drop(self, connections: list[Connection]) -> None:
        pipe = self.redis.pipeline()
        for c in connections:
            pipe.delete(self._key("conn", c.sid))
            pipe.srem(self._key("user", c.user_id), c.sid)
            pipe.srem(self._key("worker", c.worker), c.sid)
        pipe.execute()

    def _load(self, sids: Iterable[str]) -> list[Connection]:
        sids = list(sids)
        pipe = self.redis.pipeline()
        for sid in sids:
            pipe.hgetall(self._key("conn", sid))
        found = [self._decode(sid, data) for sid, data in zip(sids, pipe.execute())]
        return [c for c in found if c is not None]

    def connections(self, user_id: int) -> list[Connection]:
        return self._load(self.redis.smembers(self._key("user", user_id)))

    def status(self, user_id: int) -> str:
        return self.statuses([user_id])[user_id]  # one round trip

    def statuses(self, user_ids: Iterable[int]) -> dict[int, str]:
        user_ids = list(user_ids)
        if not user_ids:
            return {}
        prefixes = [self._key("user", ""), self._key("conn", ""), self._key("chosen", "")]
        codes = self._statuses(args=[*prefixes, *user_ids])
        return {user_id: _STATUS_CODES[int(code)] for user_id, code in zip(user_ids, codes)}

    def chosen(self, user_id: int) -> str | None:
        return self.redis.get(self._key("chosen", user_id)) or None

    def choose(self, user_id: int, status: str) -> None:
        if status == AWAY:
            self.redis.set(self._key("chosen", user_id), AWAY)
        else:
            self.redis.delete(self._key("chosen", user_id))

    def _queue_alive(self, pipe, ttl: float) -> None:
        pipe.set(self._key("alive", self.worker_id), "1", px=max(1, int(ttl * 1000)))
        pipe.sadd(self._key("workers"), self.worker_id)

    def keep_alive(self, ttl: float) -> None:
        pipe = self.redis.pipeline()
        self._queue_alive(pipe, ttl)
        pipe.execute()

    def heartbeat(self, ttl: float) -> set[int]:
        pipe = self.redis.pipeline()
        self._queue_alive(pipe, ttl)
        pipe.smembers(self._key("worker", self.worker_id))
        stored = pipe.execute()[-1]
        local = dict(self.local)
        if stored == set(local):
            return set()
        # A reaper dropped us while we were slow, or a disconnect was half written: make the
        # store hold exactly this worker's live connections again.
        extra = stored - set(local)
        closed = self._load(extra) if extra else []  # closed while the store was unreachable
        if extra:
            self._drop(closed)
            self.redis.srem(self._key("worker", self.worker_id), *extra)
        missing = [c for sid, c in local.items() if sid not in stored]
        self._write(missing)
        return {c.user_id for c in missing + closed}

    def reap(self) -> set[int]:
        workers = self.redis.smembers(self._key("workers"))
        others = [w for w in workers if w != self.worker_id]
        pipe = self.redis.pipeline()
        for worker in others:
            pipe.exists(self._key("alive", worker))
        users: set[int] = set()
        self.reaped = []
        for worker, alive in zip(others, pipe.execute()):
            # Only the reaper that removes the worker from the set drops its entries.
            if not alive and self.redis.srem(self._key("workers"), worker):
                self.reaped.append(worker)
                users |= self.clear_worker(worker)
        return users

    def clear_worker(self, worker_id: str | None = None) -> set[int]:
        worker_id = worker_id or self.worker_id
        connections = self._load(self.redis.smembers(self._key("worker", worker_id)))
        self._drop(connections)
        self.redis.delete(self._key("worker", worker_id))
        return {c.user_id for c in connections}

    def allow(self, key: str, limit: int, window: float) -> bool:
        # Redis' own clock: workers on several hosts agree on it.
        seconds, micros = self.redis.time()
        now = seconds + micros / 1_000_000
        member = f"{now}:{uuid.uuid4().hex[:8]}"
        return bool(self._allow(keys=[self._key("flood", key)], args=[now, window, limit, member]))

    def retry_after(self, key: str, limit: int, window: float) -> float:
        seconds, micros = self.redis.time()
        now = seconds + micros / 1_000_000
        # The limit-th newest hit: allowed again once it has left the window.
        hits = self.redis.zrange(self._key("flood", key), -limit, -limit, withscores=True)
        return max(0.0, hits[0][1] + window - now) if hits else 0.0

    def throttle(self, key: str, interval: float) -> bool:
        return bool(
            self.redis.set(
                self._key("throttle", key), "1", nx=True, px=max(1, int(interval * 1000))
            )
        )


def create_store(app) -> PresenceStore:
    """The store this app's configuration asks for."""
    configured = app.config.get("PRESENCE_URL")
    url = configured or app.config.get("MESSAGE_QUEUE_URL") or ""
    if url.startswith(REDIS_SCHEMES):
        prefix = (
            app.config.get("PRESENCE_KEY_PREFIX") or f"{app.config['SOCKETIO_CHANNEL']}:presence:"
        )
        return RedisPresence(url, prefix=prefix)
    if configured:
        raise RuntimeError(
            f"PRESENCE_URL must be a redis:// URL (got {configured.split(':', 1)[0]}://...): "
            "presence is kept in Redis or, without PRESENCE_URL, in process memory."
        )
    if url:
        # gunicorn.conf.py refuses several workers like this; several hosts it cannot see.
        log.warning(
            "MESSAGE_QUEUE_URL is not Redis and PRESENCE_URL is not set: chat presence is kept "
            "in this process's memory, right for one worker on one host only. Set PRESENCE_URL "
            "to a redis:// URL so that every worker and host shares it."
        )
    return MemoryPresence()


def init_app(app) -> None:
    app.config.setdefault("CHAT_PAGE_SIZE", 50)
    app.config.setdefault("CHAT_CATCHUP_MAX", 1000)
    app.config.setdefault("PRESENCE_HEARTBEAT_SECONDS", 5.0)
    app.config.setdefault("PRESENCE_TTL_SECONDS", 15.0)
    # Tests drive the heartbeat and the reaper by hand.
    app.config.setdefault("PRESENCE_BACKGROUND", not app.testing)
    app.extensions["presence"] = create_store(app)


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
