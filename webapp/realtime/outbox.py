"""The outbox: each change's event is stored with the change, published after the commit, and
relayed by a server worker when it was not.

A service records the event of a change in the change's own transaction (:func:`record`): the
stream's next number (``seq``), the event's name, its data fields and the fragment rendered
once for everyone. After the commit it publishes it (:func:`publish`). Between the two, an
event can be lost: the change was made by a process that cannot reach the browsers (``flask
table add-row`` without a message queue), the worker was killed just after its commit, or the
queue refused the publish. So every server worker runs a :class:`Relay` that publishes, within
about a second, any committed event it has not seen go by:

- a worker notes the (stream, seq) of every event it publishes or its queue listener receives:
  no database write per event (an UPDATE after each publish would be a second write
  transaction per change);
- every ``OUTBOX_RELAY_INTERVAL`` it reads the head of each stream that moved in the last
  minute (one small query); a number still unseen ``OUTBOX_RELAY_GRACE`` after it was found,
  once the queue listener has read everything delivered to it by then, is missing (a busy
  worker whose listener is behind does not take what is only on its way for lost; the grace
  also grows while events are seen to come late);
- a missing event is claimed in the database (one UPDATE of ``relayed_at`` that only one
  worker wins) and the winner publishes it to every worker through the queue;
- while its queue listener is away a worker relays nothing: it cannot tell what the others
  published, and its clients catch up from the database once the listener is back.

A relayed event that was late rather than lost reaches some clients twice; realtime.js drops
the second copy (it drops inserted elements it already shows; edits and deletions apply the
same way twice). The relay also deletes events older than ``OUTBOX_RETENTION_SECONDS``.

The relay also tells its own worker's sockets each stream's head (``stream:head``, ``stream``
and ``seq``) once this worker has sent them every event up to it, at most every
``STREAM_HEAD_INTERVAL`` seconds per stream and only when it moved: a client whose last event
of a stream was lost learns of the gap within a few seconds, even when nothing follows it.
"""

import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import bindparam, delete, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from ..clock import utcnow
from ..extensions import db, socketio
from . import broadcast, notify_local, resync_local_clients, streams
from .models import EventStream, StoredEvent

log = logging.getLogger(__name__)

_streams = EventStream.__table__.c
_events = StoredEvent.__table__.c

# Streams whose head moved longer ago than this are settled: the relay does not read them.
LOOKBACK = timedelta(seconds=60)
# More events missing at once than this is no lost publish but a listener that was away: the
# worker's clients are asked to catch up from the database instead of being sent each one.
RELAY_BATCH = 100
SCAN_MAX = 10_000  # unsettled numbers of one stream a relay looks at one by one
PRUNE_EVERY = 60.0  # seconds between two prunes by one worker (with some jitter)
PRUNE_BATCH = 5000  # events deleted by one statement: a short write lock on SQLite
LAG_HALF_LIFE = 10.0  # seconds for a listener lag once observed to count half as much


@dataclass(frozen=True)
class StreamEvent:
    """A recorded event: what :func:`publish` sends once its transaction has committed."""

    stream: str
    seq: int
    event: str
    data: dict[str, Any]
    html: str
    to: str | None = None

    def payload(self) -> dict[str, Any]:
        """The data fields, with the event's place in its stream (``html`` is added on send)."""
        return {**self.data, "stream": self.stream, "seq": self.seq}


def record(
    stream: str, event: str, data: dict[str, Any], html: str, to: str | None = None
) -> StreamEvent:
    """Number ``event`` in ``stream`` and store it in the current transaction, before its commit.

    ``html`` is rendered once, before the commit, for every receiver. ``to`` is the Socket.IO
    room it goes to (None: every socket). Call :func:`publish` with the result after the commit.
    """
    now = utcnow()
    seq = _next_seq(stream, now)
    db.session.execute(
        _INSERT_EVENT,
        {
            "stream": stream,
            "seq": seq,
            "event": event,
            "payload": data,
            "html": html,
            "target": to,
            "created_at": now,
        },
    )
    return StreamEvent(stream, seq, event, data, html, to)


# Core statements built once: building and keying a statement cost more than running it (a
# third of record()'s time when built per call), and an ORM object would add a flush.
_NEXT_SEQ = (
    update(EventStream.__table__)
    .where(_streams.stream == bindparam("of_stream"))
    .values(seq=_streams.seq + 1, updated_at=bindparam("now"))
    .returning(_streams.seq)
)
_INSERT_EVENT = insert(StoredEvent.__table__)


def _next_seq(stream: str, now) -> int:
    """The stream's next number; its counter row stays locked until this transaction ends."""
    seq = db.session.execute(_NEXT_SEQ, {"of_stream": stream, "now": now}).scalar()
    if seq is not None:
        return seq
    # The stream's first event. Another writer may be creating the row at this very moment:
    # one statement that inserts it or, when it is there, counts on from it.
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    first = dialect.insert(EventStream.__table__).values(stream=stream, seq=1, updated_at=now)
    return db.session.execute(
        first.on_conflict_do_update(
            index_elements=[_streams.stream],
            set_={"seq": _streams.seq + 1, "updated_at": now},
        ).returning(_streams.seq)
    ).scalar_one()


def publish(event: StreamEvent) -> None:
    """Send a recorded event to its clients; call it right after the commit."""
    relay = current_app.extensions.get("outbox")
    if relay is not None:
        relay.saw(event.stream, event.seq)
    broadcast(event.event, event.payload(), event.html, to=event.to)


def prune(retention_seconds: float) -> int:
    """Delete events older than ``retention_seconds`` (at most PRUNE_BATCH); how many went."""
    cutoff = utcnow() - timedelta(seconds=retention_seconds)
    # A long backlog (after OUTBOX_RETENTION_SECONDS was lowered) goes in several statements.
    oldest = (
        select(_events.stream, _events.seq)
        .where(_events.created_at < cutoff)
        .order_by(_events.created_at)
        .limit(PRUNE_BATCH)
    )
    result = db.session.execute(
        delete(StoredEvent.__table__).where(tuple_(_events.stream, _events.seq).in_(oldest))
    )
    db.session.commit()
    return result.rowcount


class Expired(LookupError):
    """The events asked for are older than the outbox keeps (or were never given out)."""


@dataclass(frozen=True)
class Page:
    """Events of one stream after a number, in order: ``last_seq`` is where they bring a
    reader (the last one's seq, or the number asked after), ``head`` the stream's last."""

    events: list[StreamEvent]
    last_seq: int
    head: int

    @property
    def more(self) -> bool:
        return self.last_seq < self.head


def events_after(stream: str, after_seq: int, limit: int, retention_seconds: float) -> Page:
    """The stored events of ``stream`` numbered after ``after_seq``, at most ``limit``.

    Expired when the next one is no longer kept (pruned, or older than the retention, which
    pruning reaches only every minute or so), or when ``after_seq`` is beyond the stream's
    head (a number this database never gave out: a client of another database).
    """
    # The head first: every event up to it has committed, so the events read next include
    # them all (numbers follow commit order).
    head = db.session.scalar(select(_streams.seq).where(_streams.stream == stream)) or 0
    if after_seq > head:
        raise Expired(f"'{stream}' has no event {after_seq}: reload the list.")
    rows = db.session.execute(
        select(
            _events.seq,
            _events.event,
            _events.payload,
            _events.html,
            _events.target,
            _events.created_at,
        )
        .where(_events.stream == stream, _events.seq > after_seq)
        .order_by(_events.seq)
        .limit(limit)
    ).all()
    cutoff = utcnow() - timedelta(seconds=retention_seconds)
    expected = after_seq + 1
    if after_seq < head and (
        not rows or rows[0].seq != expected or _aware(rows[0].created_at) < cutoff
    ):
        raise Expired(
            f"The events of '{stream}' after {after_seq} are no longer kept: reload the list."
        )
    events = []
    for seq, event, payload, html, target, _created in rows:
        if seq != expected:  # a hole pruned meanwhile: the next page will say it is gone
            break
        events.append(StreamEvent(stream, seq, event, payload, html, target))
        expected += 1
    last = events[-1].seq if events else after_seq
    return Page(events, last, max(head, last))


def _aware(moment):
    # SQLite hands back naive times (stored in UTC).
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_HEADS = select(_streams.stream, _streams.seq)
_HEADS_SINCE = _HEADS.where(_streams.updated_at > bindparam("since"))


def heads(since=None, connection=None) -> dict[str, int]:
    """The last number of each stream (that moved after ``since``)."""
    run = (connection or db.session).execute
    rows = run(_HEADS) if since is None else run(_HEADS_SINCE, {"since": since})
    return {stream: seq for stream, seq in rows}


class Relay:
    """Publishes the committed events this worker has not seen published (one per worker)."""

    def __init__(
        self,
        app: Flask,
        listening: Callable[[], bool] | None = None,
        caught_up: Callable[[], float] | None = None,
    ):
        self.app = app
        self.interval = app.config["OUTBOX_RELAY_INTERVAL"]
        self.grace = app.config["OUTBOX_RELAY_GRACE"]
        self.retention = app.config["OUTBOX_RETENTION_SECONDS"]
        self.head_interval = app.config["STREAM_HEAD_INTERVAL"]
        self.heads_told: dict[str, int] = {}  # the last stream:head sent, per stream
        self.heads_told_at: dict[str, float] = {}
        # Whether this worker has sockets to deliver to (and a queue listener, if any).
        self.listening = listening or _listening
        # When (time.monotonic()) the listener last had read everything delivered to it.
        self.caught_up = caught_up or _caught_up
        self.lock = threading.Lock()
        self.started = False
        self.tracking = False  # noting what goes by, from start() on
        self.loaded = False
        self.settle_all = False
        self.done: dict[str, int] = {}  # every event of the stream up to this seq is settled
        self.seen: dict[str, set[int]] = defaultdict(set)  # seen above ``done``
        self.found: dict[tuple[str, int], float] = {}  # (stream, seq) -> first found unseen
        self.lag = 0.0  # how late the listener delivered an event found unseen, decaying
        self.lag_at = time.monotonic()
        self.next_prune = time.monotonic() + random.uniform(0, PRUNE_EVERY)
        self.failing = False
        self.connection = None  # the relay's own, for its frequent look at the heads

    # What goes by ----------------------------------------------------------------------------
    def saw(self, stream: str, seq: int) -> None:
        """This worker published or received the event ``seq`` of ``stream``."""
        if not self.tracking:
            return
        now = time.monotonic()
        with self.lock:
            since = self.found.pop((stream, seq), None)
            if seq > self.done.get(stream, 0):
                self.seen[stream].add(seq)
            if since is not None:
                self.lag = max(self._decayed_lag(now), now - since)
                self.lag_at = now

    def received(self, message: dict) -> None:
        """The queue listener brought an emit of another worker or process (relay.py)."""
        data = message.get("data")
        if isinstance(data, list) and len(data) == 1:
            data = data[0]
        if isinstance(data, dict):
            stream, seq = data.get("stream"), data.get("seq")
            if isinstance(stream, str) and isinstance(seq, int):
                self.saw(stream, seq)

    def resubscribed(self) -> None:
        """The queue listener (re)subscribed: this worker's clients are catching up from the
        database, so what it missed while away is settled rather than sent to everyone again."""
        self.settle_all = True

    # The loop --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the relay loop of this worker (once)."""
        with self.lock:
            if self.started:
                return
            self.started = True
        self.tracking = True
        socketio.start_background_task(self._run)

    def _run(self) -> None:
        while True:
            try:
                with self.app.app_context():
                    self.tick()
                if self.failing:
                    log.info("outbox relay works again")
                    self.failing = False
            except Exception:  # the database is down for a moment: try again next time
                if not self.failing:
                    log.exception("outbox relay failed; retrying every %.2f s", self.interval)
                self.failing = True
            socketio.sleep(self.interval)

    def tick(self) -> list[StreamEvent]:
        """One round: publish what is missing, prune when due; the events it published."""
        now = time.monotonic()
        if not self.loaded:
            self._load()
        moved = self._heads(utcnow() - LOOKBACK)
        with self.lock:
            if self.settle_all or not self.listening():
                self.settle_all = False
                for stream, head in moved.items():
                    self._settle(stream, head)
                due, overflow = [], False
            else:
                due, overflow = self._due(moved, now)
        sent: list[StreamEvent] = []
        if overflow or len(due) > RELAY_BATCH:
            log.warning("many events went by unseen: this worker's clients catch up instead")
            resync_local_clients()
        elif due:
            sent = self._claim_and_publish(due)
        published = {(event.stream, event.seq) for event in sent}
        with self.lock:
            for stream, seq in due:
                if (stream, seq) not in published:
                    # Another worker won it, or this worker's clients catch up: when it comes
                    # by now, it tells nothing about how late the listener is.
                    self.found.pop((stream, seq), None)
                if seq > self.done.get(stream, 0):
                    self.seen[stream].add(seq)
            for stream in moved:
                self._advance(stream)
            for key, since in list(self.found.items()):
                if now - since > LOOKBACK.total_seconds():
                    del self.found[key]
            heads_due = self._heads_due(moved, now)
        self._tell_heads(heads_due)
        if now >= self.next_prune:
            self.next_prune = now + PRUNE_EVERY * random.uniform(0.8, 1.2)
            if prune(self.retention) >= PRUNE_BATCH:
                self.next_prune = now  # more to delete: the next round goes on

        return sent

    def _heads_due(self, moved: dict[str, int], now: float) -> dict[str, int]:
        """The streams whose settled head moved since last told, and not told lately."""
        due: dict[str, int] = {}
        if not self.listening():
            return due
        for stream in moved:
            done = self.done.get(stream, 0)
            if done > self.heads_told.get(stream, 0) and (
                now - self.heads_told_at.get(stream, float("-inf")) >= self.head_interval
            ):
                due[stream] = done
                self.heads_told[stream] = done
                self.heads_told_at[stream] = now
        return due

    def _tell_heads(self, due: dict[str, int]) -> None:
        # Sent by each worker to its own sockets, after every event up to the head went out to
        # them (their packets keep that order): a head never announces an event still on its way.
        for stream, seq in due.items():
            try:
                to = streams.channel(stream)
            except streams.StreamRefused:  # a stream no blueprint declares (any more)
                continue
            notify_local("stream:head", {"stream": stream, "seq": seq}, to=to)

    def _heads(self, since) -> dict[str, int]:
        # A connection of its own in autocommit: one round trip per look, where a pooled one
        # would add a ping, BEGIN and ROLLBACK (three quarters of the relay's CPU on PostgreSQL).
        if self.connection is None:
            self.connection = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            return heads(since, self.connection)
        except Exception:
            self.connection.invalidate()  # the database went away: a new one next round
            self.connection.close()
            self.connection = None
            raise

    def _load(self) -> None:
        """Everything committed before this worker started is settled."""
        current = heads()
        with self.lock:
            for stream, head in current.items():
                self._settle(stream, head)
            self.loaded = True

    def _settle(self, stream: str, head: int) -> None:
        if head > self.done.get(stream, 0):
            self.done[stream] = head
        for key in [key for key in self.found if key[0] == stream and key[1] <= head]:
            del self.found[key]
        self._advance(stream)

    def _advance(self, stream: str) -> None:
        done, seen = self.done.get(stream, 0), self.seen.get(stream)
        if seen is None:
            return
        while done + 1 in seen:
            done += 1
        self.done[stream] = done
        seen.difference_update([s for s in seen if s <= done])
        if not seen:
            del self.seen[stream]

    def _decayed_lag(self, now: float) -> float:
        return self.lag * 0.5 ** ((now - self.lag_at) / LAG_HALF_LIFE)

    def _due(self, moved: dict[str, int], now: float) -> tuple[list[tuple[str, int]], bool]:
        """The numbers unseen for longer than the grace (a lagging listener lengthens it), and
        whether a stream was too far behind to look at one by one (it is settled instead)."""
        grace = max(self.grace, 2 * self._decayed_lag(now))
        caught_up = min(now, self.caught_up())
        due, overflow = [], False
        for stream, head in moved.items():
            done = self.done.get(stream, 0)
            if head - done > SCAN_MAX:  # a worker that stalled for long
                self._settle(stream, head)
                overflow = True
                continue
            seen = self.seen.get(stream, ())
            for seq in range(done + 1, head + 1):
                if seq in seen:
                    continue
                if caught_up - self.found.setdefault((stream, seq), now) >= grace:
                    due.append((stream, seq))
        return due, overflow

    def _claim_and_publish(self, due: list[tuple[str, int]]) -> list[StreamEvent]:
        """Claim each missing event (only one worker wins it) and publish the ones won."""
        wanted: dict[str, list[int]] = defaultdict(list)
        for stream, seq in due:
            wanted[stream].append(seq)
        won = []
        claimed_at = utcnow()
        for stream, seqs in wanted.items():
            won += db.session.execute(
                update(StoredEvent.__table__)
                .where(
                    _events.stream == stream, _events.seq.in_(seqs), _events.relayed_at.is_(None)
                )
                .values(relayed_at=claimed_at)
                .returning(
                    _events.stream,
                    _events.seq,
                    _events.event,
                    _events.payload,
                    _events.html,
                    _events.target,
                )
            ).all()
        db.session.commit()
        sent = [StreamEvent(*row) for row in sorted(won, key=lambda row: (row[0], row[1]))]
        for event in sent:
            # Not publish(): the relay's own sends must not count as the listener's deliveries.
            broadcast(event.event, event.payload(), event.html, to=event.to)
        if sent:
            log.info("outbox relay published %d event(s) nobody had published", len(sent))
        return sent


def _listening() -> bool:
    """Whether this worker has sockets to deliver to and, with a queue, hears the others.

    python-socketio starts the manager (and its queue listener) at the first connection. While
    the listener is away the relay sends nothing: this worker did not see what the others
    published, and its clients catch up from the database once the listener is back.
    """
    server = socketio.server
    if server is None or not server.manager_initialized:
        return False
    return getattr(server.manager, "subscribed", True)  # no queue: nothing to subscribe to


def _caught_up() -> float:
    # Without a queue there is nothing to wait for: what this worker publishes it has seen.
    caught_up_at = getattr(socketio.server.manager, "caught_up_at", None)
    return time.monotonic() if caught_up_at is None else caught_up_at


class _StartRelay:
    """WSGI middleware: the first request a process serves starts its relay.

    Only server processes serve requests: the CLI, migrations and the shell never start one.
    """

    def __init__(self, wsgi_app, relay: Relay):
        self.wsgi_app = wsgi_app
        self.relay = relay

    def __call__(self, environ, start_response):
        if not self.relay.started:
            self.relay.start()
        return self.wsgi_app(environ, start_response)


def init_app(app: Flask) -> Relay:
    """Give the app its relay (:func:`start_with_first_request` makes servers run it)."""
    config = app.config
    if config["OUTBOX_RELAY_INTERVAL"] <= 0 or config["OUTBOX_RELAY_GRACE"] < 0:
        raise RuntimeError(
            "OUTBOX_RELAY_INTERVAL must be above 0 and OUTBOX_RELAY_GRACE 0 or more."
        )
    if config["OUTBOX_RETENTION_SECONDS"] <= 0:
        raise RuntimeError("OUTBOX_RETENTION_SECONDS must be above 0 (seconds events are kept).")
    relay = Relay(app)
    app.extensions["outbox"] = relay
    return relay


def start_with_first_request(app: Flask) -> None:
    """With OUTBOX_RELAY on, the first request the process serves starts its relay.

    Installed outside the Socket.IO middleware, so that a socket's connection counts too.
    """
    if app.config["OUTBOX_RELAY"]:
        app.wsgi_app = _StartRelay(app.wsgi_app, app.extensions["outbox"])
