"""The presence store in process memory: right for one worker process (and for tests)."""

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from .store import AWAY, Connection, PresenceStore


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
