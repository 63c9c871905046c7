"""A message queue that loses publishes: tests/e2e/lossy_redis.py, a proxy between the workers
and Redis that silently drops a share of the PUBLISHes on the queue channel and answers each as
Redis would."""

import os

import pytest
import redis

from tests.services import require, unique_channel

from .lossy_redis import LossyRedis

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHARE = float(os.environ.get("LOSSY_SHARE", "0.02"))
SEED = int(os.environ.get("LOSSY_SEED", "12"))


@pytest.fixture
def lossy():
    """A LossyRedis in front of TEST_REDIS_URL on a channel of its own (``lossy.channel``)."""
    url = require("TEST_REDIS_URL")
    proxy = LossyRedis.to(url, unique_channel(), share=SHARE, seed=SEED).start()
    yield proxy
    proxy.stop()


def test_the_proxy_drops_publishes_unseen_and_passes_everything_else(lossy):
    upstream = require("TEST_REDIS_URL")
    channel = lossy.channel.decode()
    lossy.block = 3  # one in 3
    listener = redis.Redis.from_url(lossy.url(upstream)).pubsub()
    listener.subscribe(channel)
    assert listener.get_message(timeout=5)["type"] == "subscribe"
    publisher = redis.Redis.from_url(lossy.url(upstream))
    answers = [publisher.publish(channel, f"single {i}") for i in range(50)]
    pipe = publisher.pipeline(transaction=False)
    for i in range(50):
        pipe.publish(channel, f"piped {i}")
        pipe.set(f"{channel}:k{i}", i)
        pipe.get(f"{channel}:k{i}")
    piped = pipe.execute()
    publisher.delete(*(f"{channel}:k{i}" for i in range(50)))
    heard = []
    while (message := listener.get_message(timeout=1)) is not None:
        heard.append(message["data"].decode())
    listener.close()

    # Redis answered 1 (one subscriber) to every PUBLISH, dropped or not: the publisher cannot
    # tell. The pipeline's other answers stayed in their places.
    assert set(answers) == {1} and set(piped[0::3]) == {1}
    assert piped[1::3] == [True] * 50 and piped[2::3] == [str(i).encode() for i in range(50)]
    sent = [f"single {i}" for i in range(50)] + [f"piped {i}" for i in range(50)]
    dropped = {e.peer_port for e in lossy.dropped}
    assert len(lossy.published) == 100 and len(lossy.dropped) in (33, 34) and len(dropped) == 1
    assert len(heard) == 100 - len(lossy.dropped) and set(heard) < set(sent)
