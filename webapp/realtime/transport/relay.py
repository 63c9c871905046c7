"""The message queue that relays Socket.IO events between workers and hosts.

python-socketio's own Redis and RabbitMQ managers reconnect a lost listener with a back-off that
grows to 60 s, keep a request waiting for seconds (Redis) or for ever (RabbitMQ) while the broker
is down, never notice a connection that died silently, and tell nobody about the events that
were published while they were not listening. The managers here:

- reconnect the listener with a back-off capped at a few seconds;
- ping the broker while the channel is quiet, and reconnect when no answer comes back;
- give up publishing quickly: the change is already committed and clients catch up from the
  database;
- call ``on_subscribed`` each time the listener is (re)subscribed, so this worker can ask its own
  clients to catch up from the database on what was published while it was not listening;
- call ``on_received`` with each emit another worker or process published, and note when the
  listener last had nothing left to read (``caught_up_at``), so the outbox relay knows which
  events went by and does not take one that is still queued for a lost one
  (webapp/realtime/outbox.py).

They override private methods of python-socketio 5.18.1's managers (the listen loops, the
publish with its retry, the emit handler), listed in ``PINNED``: ``client_manager`` refuses to
run when the installed code of those differs from that version's (:mod:`.pinned`).
"""

import logging
import select
import time
from collections.abc import Callable, Iterator

import socketio

from ... import redis_client
from ...config import QUEUE_SCHEMES
from .pinned import Pinned, check
from .rooms import ExceptRooms, LocalManager

logger = logging.getLogger(__name__)

_MANAGERS = {
    # Wrapped: every emit another worker published passes here first (on_received).
    "socketio.pubsub_manager:PubSubManager._handle_emit": "f1fb64e2d84161f6",
    # Replaced by _listen_once with _retrying (Redis, then RabbitMQ).
    "socketio.redis_manager:RedisManager._redis_listen_with_retries": "a19262da0295db20",
    "socketio.kombu_manager:KombuManager._listen": "350d79f8ebf835e2",
    # Relied on: a publish is tried twice, reconnecting in between.
    "socketio.redis_manager:RedisManager._publish": "9218e2786bc47d26",
    "socketio.kombu_manager:KombuManager._publish": "735e1c6cdf121e40",
    # Replaced: kombu's ensure() would retry for ever.
    "socketio.kombu_manager:KombuManager._producer_publish": "cb9ee39295c34bb1",
}
PINNED = Pinned("python-socketio", "5.18.1", tuple(_MANAGERS.items()), __name__)

# Seconds to reach the broker before publishing or listening gives up (as for every Redis client).
CONNECT_TIMEOUT = redis_client.CONNECT_TIMEOUT


def client_manager(
    url: str | None,
    channel: str,
    on_subscribed: Callable[[], None] | None = None,
    on_received: Callable[[dict], None] | None = None,
) -> socketio.Manager:
    """The Socket.IO client manager for ``url``; without a queue, the one of a single process.

    Each of them takes lists of rooms with some left out (:mod:`.rooms`)."""
    if not url:
        return LocalManager()
    check(PINNED)
    hooks = {"on_subscribed": on_subscribed, "on_received": on_received}
    if url.startswith(("redis://", "rediss://")):
        return RedisRelay(url, channel=channel, **hooks)
    if url.startswith(("amqp://", "amqps://")):
        return AmqpRelay(url, channel=channel, **hooks)
    raise RuntimeError(
        f"MESSAGE_QUEUE_URL must start with one of {', '.join(QUEUE_SCHEMES)}; got {url.split(':')[0]}:"
    )


class _Resubscribing:
    """What both relays share: a listener loop that retries and reports each subscription."""

    on_subscribed: Callable[[], None] | None = None
    on_received: Callable[[dict], None] | None = None
    # Whether the listener is subscribed now (the outbox relay sends nothing while it is not).
    subscribed = False
    # time.monotonic() when the listener last had nothing more to read: everything the queue
    # delivered before then has been handled. A quiet listener notes it every idle_wait s.
    caught_up_at = 0.0
    idle_wait = 0.2
    retry_first = 0.5  # first pause before the listener reconnects, doubled up to retry_max
    retry_max = 2.0
    ping_after = 5.0  # a quiet Redis listener pings after this many seconds ...
    dead_after = 15.0  # ... and reconnects when it heard nothing for this long

    def __init__(self, url: str, channel: str, on_subscribed=None, on_received=None, **options):
        super().__init__(url, channel=channel, **self.manager_options(), **options)
        self.on_subscribed = on_subscribed
        self.on_received = on_received

    @classmethod
    def manager_options(cls) -> dict:
        """The options of python-socketio's manager that bound each wait on the broker."""
        raise NotImplementedError

    def _subscribed(self) -> None:
        logger.info("message queue listener subscribed to %r", self.channel)
        self.subscribed = True
        self.caught_up_at = time.monotonic()
        if self.on_subscribed is not None:
            try:
                self.on_subscribed()
            except Exception:  # a failing hook must not stop the relay
                logger.exception("on_subscribed failed")

    def _handle_emit(self, message: dict) -> None:
        # Called for this worker's own emits too (host_id is ours): those are not received.
        if self.on_received is not None and message.get("host_id") != self.host_id:
            try:
                self.on_received(message)
            except Exception:  # a failing hook must not stop the delivery
                logger.exception("on_received failed")
        super()._handle_emit(message)

    def _retrying(self, listen_once: Callable[[], Iterator]) -> Iterator:
        delay = self.retry_first
        while True:
            started = time.monotonic()
            try:
                yield from listen_once()
            except Exception as error:  # noqa: BLE001 - any broker or network failure: reconnect
                self.subscribed = False
                logger.warning(
                    "message queue listener lost its connection (%s); reconnecting in %.1f s",
                    str(error) or type(error).__name__,
                    delay,
                )
            if time.monotonic() - started > self.dead_after:
                delay = self.retry_first  # it had been working: start the back-off afresh
            time.sleep(delay)
            delay = min(delay * 2, self.retry_max)


class RedisRelay(_Resubscribing, ExceptRooms, socketio.RedisManager):
    """Redis pub/sub relay whose listener recovers within seconds of Redis coming back."""

    @classmethod
    def manager_options(cls) -> dict:
        # No retry inside redis-py: the manager already tries a publish twice, reconnecting
        # in between.
        return {"redis_options": redis_client.options()}

    def _listen_once(self) -> Iterator[dict]:
        import redis

        client = redis.Redis.from_url(self.redis_url, **self.redis_options)
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(self.channel)
            heard = pinged = time.monotonic()
            while True:
                message = pubsub.get_message(timeout=self.idle_wait)
                now = time.monotonic()
                if message is not None:
                    heard = now
                    if message["type"] == "subscribe":
                        self._subscribed()
                    yield message
                    if not pubsub.connection.can_read(timeout=0):
                        self.caught_up_at = time.monotonic()
                    continue
                self.caught_up_at = now  # nothing came while it waited
                if now - heard > self.dead_after:
                    raise ConnectionError(f"no answer from Redis for {self.dead_after:.0f} s")
                elif now - heard > self.ping_after and now - pinged > self.ping_after:
                    pubsub.ping()  # answered by a "pong" message while the link is alive
                    pinged = now
        finally:
            pubsub.close()
            client.close()

    def _redis_listen_with_retries(self):
        return self._retrying(self._listen_once)


class AmqpRelay(_Resubscribing, ExceptRooms, socketio.KombuManager):
    """RabbitMQ (AMQP) relay with bounded publishing and a listener that recovers."""

    HEARTBEAT = 10

    @classmethod
    def manager_options(cls) -> dict:
        return {"connection_options": cls.bounded_options()}

    @staticmethod
    def bounded_options() -> dict:
        # kombu otherwise retries a connection for ever (or for many seconds) before giving up.
        return {
            "connect_timeout": CONNECT_TIMEOUT,
            "transport_options": {
                "max_retries": 0,
                "interval_start": 0,
                "interval_step": 0.5,
                "interval_max": 0.5,
            },
        }

    def _producer_publish(self, connection):
        # kombu's default ensure() retries for ever: a request would hang while RabbitMQ is down.
        producer = connection.Producer(exchange=self._exchange(), **self.producer_options)
        return connection.ensure(
            producer,
            producer.publish,
            max_retries=1,
            interval_start=0,
            interval_step=0.5,
            interval_max=0.5,
        )

    def _listen_once(self) -> Iterator:
        import kombu

        with (
            kombu.Connection(
                self.url, heartbeat=self.HEARTBEAT, **self.bounded_options()
            ) as connection,
            connection.SimpleQueue(self._queue()) as queue,
        ):
            # The queue is declared and bound: from here on nothing published is missed.
            self._subscribed()
            checked = time.monotonic()
            while True:
                if time.monotonic() - checked >= 1.0:
                    connection.heartbeat_check()  # raises when RabbitMQ stopped answering
                    checked = time.monotonic()
                try:
                    message = queue.get(block=True, timeout=self.idle_wait)
                except queue.Empty:
                    self.caught_up_at = time.monotonic()
                    continue
                message.ack()
                yield message.payload
                if not queue.buffer and not _unread_data(connection):
                    self.caught_up_at = time.monotonic()

    def _listen(self):
        return self._retrying(self._listen_once)


def _unread_data(connection) -> bool:
    """Whether the AMQP connection's socket holds data not read yet (True when unknown)."""
    try:
        sock = connection.connection.transport.sock
        return bool(select.select([sock], [], [], 0)[0])
    except (AttributeError, OSError, ValueError):
        return True
