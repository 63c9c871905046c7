"""The Redis relay notices a connection that died without a word (a NAT or firewall dropping
the flow, a host that vanished) and subscribes again, telling its worker so."""

import queue
import socket
import threading
import time

import pytest
import redis

from tests.services import unique_channel
from webapp.realtime.transport.relay import RedisRelay

pytestmark = pytest.mark.e2e


class FreezableProxy:
    """A TCP proxy to ``port``; ``freeze()`` silently drops all traffic of the connections open
    now, without closing them, while new connections work."""

    def __init__(self, port: int):
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frozen: set[int] = set()
        self.links = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.links += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(src, dst, self.links), daemon=True
                ).start()

    def _pump(self, src, dst, link):
        try:
            while data := src.recv(65536):
                if link not in self.frozen:
                    dst.sendall(data)
        except OSError:
            pass

    def freeze(self):
        self.frozen.update(range(1, self.links + 1))

    def close(self):
        self.listener.close()


def test_a_silently_dead_connection_is_replaced_and_reported(own_redis):
    proxy = FreezableProxy(own_redis.port)
    subscriptions = []
    relay = RedisRelay(
        f"redis://127.0.0.1:{proxy.port}/0",
        channel=unique_channel(),
        on_subscribed=lambda: subscriptions.append(time.monotonic()),
    )
    relay.ping_after, relay.dead_after = 0.3, 1.5
    received, stop = queue.Queue(), threading.Event()

    def listen():
        for data in relay._listen():
            received.put(data)
            if stop.is_set():
                return

    threading.Thread(target=listen, daemon=True).start()
    publisher = redis.Redis.from_url(own_redis.url)  # straight to Redis, not through the proxy

    def wait(predicate, timeout=15):
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.05)

    wait(lambda: len(subscriptions) == 1)
    publisher.publish(relay.channel, "before")
    assert received.get(timeout=10) == b"before"

    proxy.freeze()
    frozen = time.monotonic()
    publisher.publish(relay.channel, "lost")  # nobody hears it: the link is dead
    wait(lambda: len(subscriptions) == 2)
    print(
        f"\nsilent connection replaced after {subscriptions[1] - frozen:.1f} s "
        f"(pings after {relay.ping_after} s of silence, gives up after {relay.dead_after} s)"
    )

    stop.set()
    publisher.publish(relay.channel, "after")
    assert received.get(timeout=10) == b"after"
    assert received.empty()
    proxy.close()
