"""Numbered streams against a message queue that loses publishes: two hosts of two workers on
PostgreSQL, whose Redis is reached through a proxy that silently drops a share (2%) of the
PUBLISHes on the queue channel and answers each as Redis would; concurrent writers, whose commits
land out of id order; and a kill -9 of a worker right after a commit (the proxy holds that
commit's publish, so the event is committed and never published).

Clients keep their lists as static/js/streams.js does (tests/e2e/clients.py, StreamClient):
events in seq order, a gap fetched from GET /events at once, a stream:head ahead of the list
fetched too. Every list ends equal to a fresh load, every dropped event reached every client,
the clients of the surviving workers never reconnected (those of the killed one reconnect and
catch up), and the time from noticing a gap to having repaired it is printed with its p99 (the
target is 1 s; only a loose bound is asserted, since this machine may be running other tests).
"""

import concurrent.futures
import os
import signal
import time
from collections import Counter

import pytest
import redis

from tests.services import require, unique_channel

from .clients import BrowserSession, LiveSocket, StreamClient, live_list, logged_in
from .faults import Writers, accounted, children, pid_of_connection, query, stored, wait
from .lossy_redis import LossyRedis

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLIENTS = int(os.environ.get("LOSSY_CLIENTS", "12"))
SHARE = float(os.environ.get("LOSSY_SHARE", "0.02"))
SEED = int(os.environ.get("LOSSY_SEED", "12"))
SECONDS = float(os.environ.get("LOSSY_SECONDS", "36"))  # of writing
# Loose on purpose: this machine may be running other tests. A gap is fetched the moment it is
# noticed, so its repair takes one GET /events (tens of milliseconds when the machine is quiet).
REPAIR_P99_MAX = float(os.environ.get("LOSSY_REPAIR_P99_MAX", "3"))
BURST, BURST_EVERY = 8, 3.0  # rows posted at the same moment, every so many seconds
ROOM = "general"
STREAMS = ("table", f"room:{ROOM}")


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


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def seconds(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 0.5):.3f} s, p99 {percentile(values, 0.99):.3f} s, "
        f"max {max(values, default=0):.3f} s ({len(values)})"
    )


def out_of_id_order(database_url: str) -> dict[str, int]:
    """Per stream, the items whose commit (seq) came after that of an item with a higher id."""
    [added] = query(
        database_url,
        "SELECT stream, (payload->>'id')::bigint FROM events "
        "WHERE event IN ('table:row', 'chat:message') ORDER BY stream, seq",
    )
    late: Counter = Counter()
    highest: dict[str, int] = {}
    for stream, item in added:
        if item < highest.get(stream, 0):
            late[stream] += 1
        highest[stream] = max(highest.get(stream, 0), item)
    return dict(late)


def test_lost_publishes_reordered_commits_and_a_kill_9_leave_every_list_as_a_fresh_load(
    lossy, cluster, balancer, postgres_url
):
    upstream = require("TEST_REDIS_URL")
    group = cluster(
        lossy.url(upstream), SOCKETIO_CHANNEL=lossy.channel.decode(), PRESENCE_URL=upstream
    )
    hosts = [group.start_host(workers=2), group.start_host(workers=2)]
    nginx = balancer(hosts)
    names = [f"tab{i:02d}" for i in range(CLIENTS)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        sessions = list(pool.map(lambda i: logged_in(hosts[i % 2].url, names[i]), range(CLIENTS)))
        tabs = list(
            pool.map(
                lambda i: StreamClient(sessions[i], ROOM, username=names[i]).connect(timeout=60),
                range(CLIENTS),
            )
        )
    for tab in tabs:
        wait(lambda t=tab: t.worker, 10, "the tab knows its worker")
    worker_before = {tab.username: tab.worker for tab in tabs}

    # Rows from 4 writers at once and messages from 2, through nginx to any worker of either
    # host, and every few seconds a burst of rows posted at the same moment.
    writers = Writers(nginx.url, sessions, rate=3.0, row_threads=4, message_threads=2).start()
    writing = time.monotonic()

    def write_until(end: float) -> None:
        while time.monotonic() + BURST_EVERY < end:
            time.sleep(BURST_EVERY)
            writers.burst(BURST)
        time.sleep(max(0.0, end - time.monotonic()))

    try:
        write_until(writing + SECONDS / 3)
        # The next row's publish is held by the proxy: its worker has committed it and waits
        # for Redis's answer. Kill that worker now.
        held = lossy.hold_next(lambda emit: emit.event == "table:row")
        emit = held.wait(15)
        workers = {pid: host.process.pid for host in hosts for pid in children(host.process.pid)}
        victim = pid_of_connection(emit.peer_port, workers)
        assert victim, f"no worker holds the connection from port {emit.peer_port}"
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        master = workers[victim]
        wait(lambda: len(children(master) - {victim}) == 2, 60, "gunicorn replaced the worker")
        replaced_after = time.monotonic() - killed
        write_until(writing + SECONDS)
    finally:
        writers.finish()

    db_rows, db_messages = stored(postgres_url)
    [heads] = query(postgres_url, "SELECT stream, seq FROM event_streams")
    heads = dict(heads)
    for tab in tabs:
        tab.wait(
            lambda t=tab: all(t.streams[s].seq >= heads.get(s, 0) for s in STREAMS),
            30,
            f"every list at its stream's head {heads}",
        )
    fresh = {
        "table": live_list(BrowserSession(hosts[0].url).load("/")),
        STREAMS[1]: live_list(sessions[0].load(f"/chat/{ROOM}")),
    }
    expected = {"table": set(db_rows.values()), STREAMS[1]: set(db_messages.values())}

    # Every list equals a fresh load: the same seq, the same newest page, and everything stored.
    for tab in tabs:
        for stream, (_, fresh_seq, fresh_ids) in fresh.items():
            shown = sorted(tab.shown(stream))
            assert tab.last_seq(stream) == fresh_seq == heads[stream], (tab.username, stream)
            assert shown[len(shown) - len(fresh_ids) :] == sorted(fresh_ids), (tab.username, stream)
            missing, extra = expected[stream] - set(shown), set(shown) - expected[stream]
            assert not missing and not extra, (tab.username, stream, missing, extra)
        assert not tab.expired, (tab.username, tab.expired)

    # The clients of the killed worker reconnected; no other client ever did.
    victims = [t for t in tabs if t.disconnects]
    survivors = [t for t in tabs if not t.disconnects]
    dead_worker = {worker_before[t.username] for t in victims}
    assert len(dead_worker) <= 1, f"clients of several workers reconnected: {dead_worker}"
    assert all(t.connects == 1 for t in survivors)
    assert not {worker_before[t.username] for t in survivors} & dead_worker
    assert len(survivors) >= CLIENTS // 2

    # Every dropped (and the held) numbered event reached every client.
    dropped = [e for e in lossy.dropped if e.numbered and e.stream in STREAMS]
    assert len(dropped) >= 3, f"too few publishes dropped to prove anything: {lossy.dropped}"
    lost = [e for e in (*dropped, emit) for t in tabs if (e.stream, e.seq) not in t.applied]
    assert not lost, lost
    how = Counter(t.applied[(e.stream, e.seq)][1] for e in dropped for t in survivors)
    drop_to_shown = [
        max(0.0, t.applied[(e.stream, e.seq)][0] - e.at) for e in dropped for t in survivors
    ]
    held_to_shown = [t.applied[(emit.stream, emit.seq)][0] - emit.at for t in survivors]
    repairs = [s for t in tabs for s, _ in t.repairs]
    fetched = [s for t in tabs for s, by_fetch in t.repairs if by_fetch]
    by_socket = [s for t in tabs for s, by_fetch in t.repairs if not by_fetch]

    acked_rows, failed_rows, failed_but_stored, acked_messages, unacked = accounted(
        writers, db_rows
    )
    reordered = out_of_id_order(postgres_url)
    # Not numbered, so not repaired: a member list that missed a dropped chat:presence.
    members = LiveSocket(sessions[0]).connect()
    fresh_members = {
        m["user"]: m["status"] for m in members.client.call("chat:join", {"room": ROOM})["members"]
    }
    members.disconnect()
    stale = [t.username for t in survivors if t.members != fresh_members]
    not_numbered = Counter(e.event or e.method for e in lossy.dropped if not e.numbered)
    print(
        f"\nlossy queue: {len(lossy.published)} PUBLISHes on the channel, {len(lossy.dropped)} "
        f"dropped (share {SHARE}, seed {SEED}): {len(dropped)} numbered events "
        f"{sorted((e.stream, e.seq) for e in dropped)}, others {dict(not_numbered)}"
    )
    print(
        f"  {CLIENTS} clients on {len(set(worker_before.values()))} workers of 2 hosts "
        f"({sorted(Counter(worker_before.values()).values())}); writing {SECONDS:.0f} s: "
        f"rows {len(acked_rows)} acknowledged, {len(failed_rows)} failed "
        f"({len(failed_but_stored)} of them stored), messages {len(acked_messages)} "
        f"acknowledged, {len(unacked)} not; commits out of id order {reordered}"
    )
    print(
        f"  kill -9 of the worker holding {emit.stream} seq {emit.seq} unpublished after its "
        f"commit: replaced after {replaced_after:.1f} s; {len(victims)} of its clients "
        f"reconnected, {len(survivors)} others never did; the held event reached them "
        f"{seconds(held_to_shown)} after its commit"
    )
    print(
        f"  dropped events on the surviving clients: {dict(how)} (socket: the relay published "
        f"it again, or the publisher's own worker; fetch: GET /events); dropped to shown "
        f"{seconds(drop_to_shown)}"
    )
    print(
        f"  gap noticed to repaired, every gap (late or lost): {seconds(repairs)}; those a fetch "
        f"repaired: {seconds(fetched)}; those the socket filled first: {seconds(by_socket)}"
    )
    print(
        f"  GET /events: {seconds([s for t in tabs for s in t.fetch_seconds])}, failed "
        f"{sum(t.fetch_failures for t in tabs)}"
    )
    print(
        f"  member lists unlike a fresh join (presence is not numbered): {len(stale)} of "
        f"{len(survivors)} surviving clients"
    )
    assert not unacked
    assert set(db_rows.values()) == acked_rows | failed_but_stored
    assert reordered.get("table"), "no rows committed out of id order: nothing reordered"
    assert percentile(repairs, 0.99) <= REPAIR_P99_MAX
    for tab in tabs:
        tab.close()
