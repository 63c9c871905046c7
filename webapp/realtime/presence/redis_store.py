"""The presence store in Redis, shared by every worker and host that uses the same URL and
key prefix. Its atomic steps are Lua scripts, files in ``scripts/`` beside this module."""

import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, replace
from pathlib import Path

from ... import redis_client
from .store import AWAY, ONLINE, Connection, PresenceStore, user_status

SCRIPTS = Path(__file__).with_name("scripts")


def script(name: str) -> str:
    """The text of ``scripts/<name>.lua``."""
    return (SCRIPTS / f"{name}.lua").read_text()


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
        super().__init__(worker_id)
        # A blocking pool: when a thousand sockets close at once (a proxy restarts, a network
        # blips) their disconnect handlers queue for a connection instead of failing with
        # "Too many connections" once redis-py's default 100 are in use.
        self.redis = redis_client.client(
            url,
            pool_size=max_connections,
            retries=1,
            decode_responses=True,
            health_check_interval=30,
        )
        self.prefix = prefix
        self._allow = self.redis.register_script(script("allow"))
        self._update = self.redis.register_script(script("update"))
        self._statuses = self.redis.register_script(script("statuses"))
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
        facts = self._statuses(args=[*prefixes, *user_ids])
        # Per user: the best status among their tabs ("" without one), and what they chose.
        return {
            user_id: user_status([best] if best else [], chosen or None)
            for user_id, best, chosen in zip(user_ids, facts[::2], facts[1::2])
        }

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
