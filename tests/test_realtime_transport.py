"""webapp/realtime/transport: the relay a queue URL picks, the send-queue bound's setting, and
the check every patch of a pinned library makes at start.

Over real sockets: tests/e2e/test_packets_live.py (packets), test_limits_live.py (frame limit),
test_fault_slow_consumer.py (send queue), test_scale_relay.py (relay).
"""

import pytest

from webapp import config
from webapp.realtime.connections import closing, guard
from webapp.realtime.transport import frame_limit, packets, pinned, relay, rooms, send_queue


@pytest.mark.parametrize(
    "url, kind",
    [
        (None, rooms.LocalManager),
        ("", rooms.LocalManager),
        ("redis://q:6379/0", relay.RedisRelay),
        ("rediss://q:6380/0", relay.RedisRelay),
        ("amqp://guest:guest@q:5672//", relay.AmqpRelay),
    ],
)
def test_the_queue_url_picks_the_relay(url, kind):
    assert isinstance(relay.client_manager(url, "channel"), kind)


def test_an_unknown_queue_scheme_is_refused_with_the_supported_ones():
    with pytest.raises(RuntimeError, match="redis://, rediss://, amqp://, amqps://"):
        relay.client_manager("kafka://q:9092", "channel")


def test_the_send_queue_bound_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("SOCKET_SEND_QUEUE_MAX", raising=False)
    assert config._env_int("SOCKET_SEND_QUEUE_MAX", 1000, minimum=0) == 1000
    monkeypatch.setenv("SOCKET_SEND_QUEUE_MAX", "0")
    assert config._env_int("SOCKET_SEND_QUEUE_MAX", 1000, minimum=0) == 0
    for bad in ("many", "-1"):
        monkeypatch.setenv("SOCKET_SEND_QUEUE_MAX", bad)
        with pytest.raises(RuntimeError, match="SOCKET_SEND_QUEUE_MAX"):
            config._env_int("SOCKET_SEND_QUEUE_MAX", 1000, minimum=0)


PATCHES = [
    send_queue.PINNED,
    frame_limit.PINNED,
    relay.PINNED,
    packets.PINNED,
    *closing.PINNED,
    *guard.PINNED,
]


@pytest.mark.parametrize("patch", PATCHES, ids=lambda p: f"{p.patch}:{p.distribution}")
def test_each_patch_matches_the_installed_code_of_its_pinned_version(patch):
    pinned.check(patch)  # raises when the installed code differs
    with open("pyproject.toml") as pyproject:
        assert f'"{patch.distribution}=={patch.version}"' in pyproject.read().replace(
            "gunicorn[gevent]", "gunicorn"
        )


def test_gunicorn_handlers_patch_checks_its_pinned_code():
    """gunicorn.conf.py's RefusesMalformedRequests (loaded the way gunicorn loads it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gunicorn_conf", "gunicorn.conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    assert {p.distribution for p in conf.PINNED} == {"gevent", "gunicorn"}
    for patch in conf.PINNED:
        conf.pinned.check(patch)


def test_a_patch_refuses_to_start_when_the_patched_code_changed():
    target, _digest = send_queue.PINNED.sources[0]
    changed = pinned.Pinned("python-engineio", "4.15.1", ((target, "0" * 16),), "some.patch")
    with pytest.raises(RuntimeError) as refused:
        pinned.check(changed)
    message = str(refused.value)
    assert "some.patch patches python-engineio 4.15.1" in message
    assert target in message and "python-engineio==4.15.1" in message
