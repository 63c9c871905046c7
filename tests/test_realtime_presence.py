"""webapp/realtime/presence: the store (memory and Redis backends, one status rule), the reaper
that expires dead workers, and the chat's hooks."""

import contextlib
import time
import uuid

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from webapp.auth import services as auth_services
from webapp.chat import services
from webapp.extensions import socketio
from webapp.realtime import presence
from webapp.realtime.presence import (
    AWAY,
    OFFLINE,
    ONLINE,
    Connection,
    MemoryPresence,
    RedisPresence,
)

from .e2e.server import free_port
from .services import require


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def redis_stores():
    """Two Redis stores (two workers) on one unique key prefix; the keys are removed after."""
    url = require("TEST_REDIS_URL")
    prefix = f"test-presence-{uuid.uuid4().hex[:12]}:"
    made = []

    def make(worker_id):
        store = RedisPresence(url, prefix=prefix, worker_id=worker_id)
        made.append(store)
        return store

    yield make
    if made:
        keys = list(made[0].redis.scan_iter(prefix + "*"))
        if keys:
            made[0].redis.delete(*keys)


@pytest.fixture(params=["memory", "redis"])
def two_workers(request):
    """(live, dead, expire): two workers sharing one store; ``expire`` lets ``dead`` time out."""
    if request.param == "memory":
        clock = Clock()
        live = MemoryPresence("live", clock=clock)
        dead = MemoryPresence("dead", state=live.state, clock=clock)

        def expire():
            clock.now += 100

        return live, dead, expire
    make = request.getfixturevalue("redis_stores")
    live, dead = make("live"), make("dead")

    def expire():
        dead.redis.delete(dead._key("alive", "dead"))

    return live, dead, expire


def connect(store, sid, user_id, status=ONLINE):
    store.add(Connection(sid, user_id, f"user{user_id}", store.worker_id, status))


def test_status_follows_the_tabs(two_workers):
    store, other, _ = two_workers
    assert store.status(1) == OFFLINE
    connect(store, "a1", 1)
    connect(other, "a2", 1)
    assert store.status(1) == ONLINE
    store.update("a1", status=AWAY)
    assert store.status(1) == ONLINE  # one tab still online
    assert store.statuses([1, 2]) == {1: ONLINE, 2: OFFLINE}
    other.update("a2", status=AWAY)
    assert store.statuses([1, 2]) == {1: AWAY, 2: OFFLINE}
    store.update("a1", status=ONLINE, room="general")
    assert store.get("a1").room == "general" and store.get("a1").status == ONLINE
    assert store.remove("a1").user_id == 1
    assert store.remove("a1") is None
    assert store.status(1) == AWAY
    other.remove("a2")
    assert store.status(1) == OFFLINE
    assert store.update("a2", status=ONLINE) is None


def test_the_status_rule():
    """Online > away > offline, and a chosen away beats an online tab."""
    assert presence.user_status([]) == OFFLINE
    assert presence.user_status([], AWAY) == OFFLINE
    assert presence.user_status([AWAY]) == AWAY
    assert presence.user_status([AWAY, ONLINE]) == ONLINE
    assert presence.user_status([AWAY, ONLINE], AWAY) == AWAY
    assert presence.user_status([ONLINE], ONLINE) == ONLINE


TAB_SETS = [(), (ONLINE,), (AWAY,), (ONLINE, AWAY), (AWAY, AWAY), (ONLINE, ONLINE)]


def test_both_backends_answer_by_the_one_rule(two_workers):
    """Every combination of tabs (on two workers) and chosen status: the store's answer, one
    user at a time and many at once (Redis: the statuses.lua script), is user_status's."""
    store, other, _ = two_workers
    expected = {}
    for user_id, (tabs, chosen) in enumerate(
        ((tabs, chosen) for tabs in TAB_SETS for chosen in (None, AWAY)), start=1
    ):
        for n, status in enumerate(tabs):
            connect((store, other)[n % 2], f"u{user_id}-{n}", user_id, status)
        if chosen:
            store.choose(user_id, chosen)
        expected[user_id] = presence.user_status(tabs, chosen)
    assert store.statuses(expected) == expected
    assert other.statuses(expected) == expected
    assert {user_id: store.status(user_id) for user_id in expected} == expected


def test_entry_has_user_worker_and_last_seen(two_workers):
    store, _, _ = two_workers
    before = time.time()
    connect(store, "s1", 7)
    entry = store.get("s1")
    assert (entry.user_id, entry.username, entry.worker) == (7, "user7", "live")
    assert entry.last_seen >= before - 1


def test_reaper_drops_the_entries_of_a_dead_worker(two_workers):
    live, dead, expire = two_workers
    live.heartbeat(60)
    dead.heartbeat(60)
    connect(live, "l1", 1)
    connect(dead, "d1", 1)
    connect(dead, "d2", 2)
    assert live.reap() == set()  # both alive
    expire()
    assert live.reap() == {1, 2}
    assert live.statuses([1, 2]) == {1: ONLINE, 2: OFFLINE}
    assert live.get("d1") is None and live.get("l1") is not None
    assert live.reap() == set()  # done once


def test_worker_clears_its_own_stale_entries_at_start(two_workers):
    _, dead, _ = two_workers
    connect(dead, "old", 3)
    assert dead.clear_worker() == {3}
    assert dead.status(3) == OFFLINE


def test_flood_limit_and_typing_throttle(two_workers):
    store, other, _ = two_workers
    key = f"send:{uuid.uuid4().hex}"
    assert [store.allow(key, 3, 10) for _ in range(3)] == [True] * 3
    assert other.allow(key, 3, 10) is False  # shared by every worker
    assert store.allow(key + "-other", 3, 10) is True
    assert store.throttle("typing:1:1", 5) is True
    assert other.throttle("typing:1:1", 5) is False


def test_memory_flood_window_slides():
    clock = Clock()
    store = MemoryPresence(clock=clock)
    assert all(store.allow("k", 2, 10) for _ in range(2)) and not store.allow("k", 2, 10)
    clock.now += 10.1
    assert store.allow("k", 2, 10)


def test_redis_worker_restores_its_entries_after_being_reaped_while_slow(redis_stores):
    live, slow = redis_stores("live"), redis_stores("slow")
    slow.heartbeat(60)
    connect(slow, "s1", 5)
    slow.redis.delete(slow._key("alive", "slow"))  # it did not beat in time
    assert live.reap() == {5}
    assert live.status(5) == OFFLINE
    # Its next beat writes back the connections it still holds.
    assert slow.heartbeat(60) == {5}
    assert live.status(5) == ONLINE
    assert slow.heartbeat(60) == set()


def test_store_is_chosen_from_the_configuration(app):
    assert isinstance(app.extensions["presence"], MemoryPresence)
    url = "redis://127.0.0.1:6379/0"
    config = {
        "PRESENCE_URL": None,
        "PRESENCE_KEY_PREFIX": None,
        "MESSAGE_QUEUE_URL": url,
        "SOCKETIO_CHANNEL": "chan",
    }
    store = presence.create_store(type("App", (), {"config": config})())
    assert isinstance(store, RedisPresence) and store.prefix == "chan:presence:"
    config["MESSAGE_QUEUE_URL"] = "amqp://guest:guest@127.0.0.1//"
    assert isinstance(presence.create_store(type("App", (), {"config": config})()), MemoryPresence)


def test_users_of_a_dead_worker_go_offline_for_everyone(app, accounts):
    """The expiry path end to end in one process: a stale heartbeat, the reaper, the broadcast."""
    alice, bob = accounts("alice"), accounts("bob")
    watcher = bob.socket()
    watcher.emit("chat:join", {"room": "general"}, callback=True)
    alice.client.get("/chat/general")  # alice is a member of general
    store = app.extensions["presence"]
    # alice's tab lives on another worker, which then dies without a word.
    ghost = MemoryPresence("ghost-worker", state=store.state, clock=store.clock)
    ghost.heartbeat(0.5)
    with app.app_context():
        alice_id = auth_services.find_user("alice").id
        ghost.add(Connection("ghost-sid", alice_id, "alice", "ghost-worker"))
        assert store.status(alice_id) == ONLINE
        watcher.get_received()
        assert presence.beat_and_reap() == set()  # still alive
        time.sleep(0.6)
        assert presence.beat_and_reap() == {alice_id}
    [change] = [e["args"][0] for e in watcher.get_received() if e["name"] == "chat:presence"]
    assert (change["user"], change["status"]) == ("alice", OFFLINE)
    assert 'data-status="offline"' in change["html"]
    page = bob.client.get("/chat/general").get_data(as_text=True)
    assert 'data-user="alice" data-status="offline"' in page


def test_presence_url_that_is_not_redis_stops_the_app():
    config = {
        "PRESENCE_URL": "amqp://guest:guest@127.0.0.1//",
        "PRESENCE_KEY_PREFIX": None,
        "MESSAGE_QUEUE_URL": None,
        "SOCKETIO_CHANNEL": "chan",
    }
    with pytest.raises(RuntimeError, match="PRESENCE_URL must be a redis:// URL"):
        presence.create_store(type("App", (), {"config": config})())


@pytest.fixture
def redis_app(app, redis_stores):
    """The app with its presence in Redis (one worker), and ``down()``: a context in which
    that Redis refuses every connection, as while it restarts."""
    store = redis_stores("this-worker")
    app.extensions["presence"] = store
    real = store.redis

    @contextlib.contextmanager
    def down():
        store.redis = redis.Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
        try:
            yield
        finally:
            store.redis = real

    return app, store, down


def test_a_tab_closed_while_redis_was_down_is_not_written_back(redis_app, accounts):
    app, store, down = redis_app
    accounts("alice")
    with app.test_request_context():
        user = auth_services.find_user("alice")
        presence.connected("tab", user)
        assert presence.beat_and_reap() == set()
        with down(), pytest.raises(redis.ConnectionError):
            presence.disconnected("tab")  # the socket handler logs it; the tab is gone
        # Back: the next beat drops what Redis still holds of the closed tab, and says so.
        assert presence.beat_and_reap() == {user.id}
        assert store.status(user.id) == OFFLINE


def test_a_tab_opened_while_redis_was_down_is_online_once_it_is_back(redis_app, accounts):
    app, store, down = redis_app
    accounts("alice")
    with app.test_request_context():
        user = auth_services.find_user("alice")
        with down(), pytest.raises(redis.ConnectionError):
            presence.connected("first", user)  # the worker's very first connection
        assert store.status(user.id) == OFFLINE
        # The next connection starts the worker (its first beat), which writes both tabs.
        presence.connected("second", user)
        assert store.redis.exists(store._key("alive", store.worker_id))
        assert {c.sid for c in store.connections(user.id)} == {"first", "second"}
        assert store.status(user.id) == ONLINE


def test_a_chosen_away_holds_over_every_tab_until_changed(two_workers):
    store, other, _ = two_workers
    connect(store, "c1", 11)
    connect(other, "c2", 11)
    connect(store, "c3", 12)
    assert store.chosen(11) is None
    other.choose(11, AWAY)  # chosen in a tab on the other worker
    assert store.chosen(11) == AWAY
    assert store.status(11) == AWAY and store.statuses([11, 12]) == {11: AWAY, 12: ONLINE}
    # The choice outlives the tabs: a new tab finds the user Away, never Online.
    store.remove("c1")
    other.remove("c2")
    assert store.status(11) == OFFLINE
    connect(store, "c4", 11)
    assert store.statuses([11]) == {11: AWAY}
    store.choose(11, ONLINE)
    assert other.chosen(11) is None and other.statuses([11]) == {11: ONLINE}


def test_update_answers_the_entry_as_it_was(two_workers):
    store, _, _ = two_workers
    connect(store, "u1", 21)
    before = store.update("u1", status=AWAY, room="general")
    assert (before.status, before.room) == (ONLINE, None)
    now = store.get("u1")
    assert (now.status, now.room) == (AWAY, "general")
    assert store.update("u1", room=None).room == "general"
    assert store.get("u1").room is None


def test_a_room_counts_as_read_while_a_shown_tab_has_it_and_not_while_hidden(app, accounts):
    alice, bob = accounts("alice"), accounts("bob")
    tab, writer = alice.socket(), bob.socket()
    for sock in (tab, writer):
        assert sock.emit("chat:join", {"room": "general"}, callback=True)["ok"]

    def unread():
        with app.test_request_context():
            counts = services.rooms_with_unread(auth_services.find_user("alice"))
            return {entry.room.name: entry.unread for entry in counts}["general"]

    def post(body):
        assert writer.emit("chat:send", {"room": "general", "body": body}, callback=True)["ok"]

    post("seen live")
    assert unread() == 0
    tab.emit("presence:set", {"status": "away"}, callback=True)  # hidden
    post("while hidden")
    assert unread() == 1
    # A hidden tab's reconnect (it says so as it connects) and catch-up read nothing.
    tab.disconnect()
    tab = socketio.test_client(app, flask_test_client=alice.client, auth={"status": "away"})
    alice.sockets.append(tab)
    assert tab.emit("chat:join", {"room": "general"}, callback=True)["ok"]
    assert alice.client.get("/chat/general/messages?after=0").status_code == 200
    assert unread() == 1
    tab.emit("presence:set", {"status": "online"}, callback=True)  # looked at again
    assert unread() == 0


def test_a_tick_stuck_behind_the_database_does_not_get_its_worker_taken_for_dead(app, redis_stores):
    """The tick announces through the database; while it waits (a pool held by a reconnect
    storm), the worker still beats, so another worker's reaper leaves its users Online."""
    busy, other = redis_stores("busy"), redis_stores("other")
    ticks = []
    released = False

    def tick(users):
        ticks.append(users)
        while len(ticks) > 1 and not released:
            socketio.sleep(0.05)  # as a greenlet waits for a pooled connection

    app.config.update(
        PRESENCE_BACKGROUND=True, PRESENCE_HEARTBEAT_SECONDS=0.1, PRESENCE_TTL_SECONDS=0.5
    )
    presence.start_worker(app, busy, tick)  # clears what was left under its id, then beats
    connect(busy, "b1", 1)
    try:
        socketio.sleep(2)  # four times the heartbeat's time to live
        assert len(ticks) == 2  # the second tick is still stuck
        assert other.reap() == set()
        assert other.status(1) == ONLINE
    finally:
        presence.stop_worker(busy)
        released = True
        socketio.sleep(0.3)  # both loops have seen the stop
