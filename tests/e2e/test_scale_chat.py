"""The chat on two gunicorn workers sharing a queue (Redis or RabbitMQ), presence in Redis and
one PostgreSQL database: a room whose members sit on different workers behaves as one room."""

import os
import signal
import time
from collections import Counter

import pytest
import requests

from .clients import logged_in
from .cluster import ChatClient
from .faults import children

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def join_spread(url: str, workers: set[str], per_worker: int = 2, limit: int = 16):
    """New users who opened #general, at least ``per_worker`` of their sockets on each worker."""
    clients: list[ChatClient] = []
    while True:
        on = Counter(c.worker for c in clients)
        if all(on[w] >= per_worker for w in workers):
            return clients
        assert len(clients) < limit, f"the sockets did not spread over the workers: {on}"
        name = f"user{len(clients) + 1}"
        clients.append(ChatClient(logged_in(url, name), name).join())


def member_lists(url: str, session, count: int = 2) -> dict[str, list[dict]]:
    """The room's member list as each of ``count`` workers answers it: worker -> members."""
    answers: dict[str, list[dict]] = {}
    for _ in range(40):  # a new connection each time, handed to any worker
        response = requests.get(
            url + "/chat/general/members",
            cookies=session.http.cookies,
            headers={"Accept": "application/json"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        answers[response.headers["X-Worker"]] = response.json()["members"]
        if len(answers) == count:
            return answers
    raise AssertionError(f"only {len(answers)} workers answered")


def post_over_http(session, body: str) -> tuple[int, str]:
    """POST /chat/general/messages on a new connection; (message id, worker that stored it)."""
    response = requests.post(
        session.base_url + "/chat/general/messages",
        data={"body": body},
        headers={"X-CSRFToken": session.token, "Accept": "application/json"},
        cookies=session.http.cookies,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"], response.headers["X-Worker"]


def statuses(clients, status: str) -> dict[str, str]:
    return {c.username: status for c in clients}


def pushed_ids(client: ChatClient) -> list[int]:
    return [data["id"] for event, data in client.events if event == "chat:message"]


@pytest.mark.parametrize("queue", ["redis", "amqp"])
def test_a_room_over_two_workers_shares_messages_presence_typing_and_members(cluster, queue):
    web = cluster(queue).start_host(workers=2)  # amqp: PRESENCE_URL is Redis (see cluster)
    clients = join_spread(web.url, web.workers)
    per_worker = Counter(c.worker for c in clients)
    for client in clients:
        client.wait_until(lambda c: c.shows(statuses(clients, "online")))
    expected = sorted(
        ({"user": c.username, "status": "online"} for c in clients), key=lambda m: m["user"]
    )
    assert list(member_lists(web.url, clients[0].session).values()) == [expected, expected]

    # Messages: one from every member over its socket, and one over HTTP stored by each worker.
    sent = [
        c.client.call(
            "chat:send", {"room": "general", "body": f"hello from {c.username}"}, timeout=10
        )
        for c in clients
    ]
    assert all(ack["ok"] for ack in sent), sent
    ids = {ack["id"] for ack in sent}
    stored_by = set()
    for n in range(20):
        message_id, worker = post_over_http(clients[n % len(clients)].session, f"over http {n}")
        ids.add(message_id)
        stored_by.add(worker)
        if stored_by == web.workers:
            break
    assert stored_by == web.workers, "every POST was stored by the same worker"
    lost = duplicated = 0
    for client in clients:
        try:
            client.wait_until(lambda c: ids <= c.message_ids)
        except AssertionError:
            pass  # counted below
        pushed = pushed_ids(client)
        lost += len(ids - set(pushed))
        duplicated += len(pushed) - len(set(pushed))
    print(
        f"\n{queue}: chat members per worker {sorted(per_worker.values())}; "
        f"{len(ids)} messages ({len(ids) - len(sent)} over HTTP) x {len(clients)} members = "
        f"{len(ids) * len(clients)} deliveries, {lost} lost, {duplicated} duplicated"
    )
    assert lost == duplicated == 0

    # Typing and presence from a member on each worker reach everyone, on both workers.
    typists = [next(c for c in clients if c.worker == w) for w in sorted(web.workers)]
    for typist in typists:
        others = [c for c in clients if c is not typist]
        assert typist.client.call("chat:typing", {"room": "general"}, timeout=10)["ok"]
        for client in others:
            client.wait_until(
                lambda c, t=typist: any(
                    e == "chat:typing" and d["user"] == t.username for e, d in c.events
                )
            )
        for status in ("away", "online"):
            ack = typist.client.call("presence:set", {"status": status}, timeout=10)
            assert ack == {"ok": True, "status": status}
            for client in others:
                client.wait_until(lambda c, t=typist, s=status: c.shows({t.username: s}))
    for typist in typists:
        typist.disconnect()
    stayed = [c for c in clients if c not in typists]
    now = {**statuses(stayed, "online"), **statuses(typists, "offline")}
    for client in stayed:
        client.wait_until(lambda c: c.shows(now))
    expected = [{"user": user, "status": now[user]} for user in sorted(now)]
    assert list(member_lists(web.url, stayed[0].session).values()) == [expected, expected]
    for client in stayed:
        client.disconnect()


def wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def test_users_of_a_killed_worker_go_offline_within_60_s_and_online_when_back(cluster):
    web = cluster("redis").start_host(workers=2)
    clients = join_spread(web.url, web.workers)
    for client in clients:
        client.wait_until(lambda c: c.shows(statuses(clients, "online")))

    victim_pid = min(children(web.process.pid))
    os.kill(victim_pid, signal.SIGKILL)
    killed = time.monotonic()
    # Its sockets break at once; which worker it was shows from the clients that lost theirs.
    wait(lambda: any(not c.client.connected for c in clients), 10, "a socket broke")
    dead_worker = next(c.worker for c in clients if not c.client.connected)
    victims = [c for c in clients if c.worker == dead_worker]
    survivors = [c for c in clients if c.worker != dead_worker]
    wait(lambda: not any(v.client.connected for v in victims), 10, "all its sockets broke")

    # Nobody said goodbye: the survivors hear it from the reaper once the heartbeat expires.
    gone = {**statuses(victims, "offline"), **statuses(survivors, "online")}
    for client in survivors:
        client.wait_until(lambda c: c.shows(gone), timeout=60)
    victim_names = {v.username for v in victims}
    offline_after = (
        max(
            t
            for c in survivors
            for t, e, d in c.arrived
            if t > killed and e == "chat:presence" and d["user"] in victim_names
        )
        - killed
    )
    assert offline_after < 60
    expected = [{"user": user, "status": gone[user]} for user in sorted(gone)]
    assert list(member_lists(web.url, survivors[0].session).values()) == [expected, expected]

    # The victims' browsers reconnect (to the surviving worker or its replacement).
    back_at = time.monotonic()
    returned = [ChatClient(v.session, v.username).join() for v in victims]
    for client in survivors + returned:
        client.wait_until(lambda c: c.shows(statuses(clients, "online")))
    online_after = time.monotonic() - back_at
    expected = [{"user": user, "status": "online"} for user in sorted(statuses(clients, ""))]
    assert list(member_lists(web.url, survivors[0].session).values()) == [expected, expected]

    print(
        f"\nkill -9 of a worker holding {len(victims)} of {len(clients)} chat members: "
        f"shown offline to the other worker's members {offline_after:.1f} s later "
        f"(heartbeat TTL 15 s, beat and reap every 5 s); online again "
        f"{online_after:.1f} s after they reconnected"
    )
    for client in survivors + returned:
        client.disconnect()


@pytest.mark.parametrize("presence", ["the queue's Redis", "another Redis"])
def test_after_a_queue_outage_every_member_list_catches_up(cluster, own_redis, presence):
    """Redis (the queue) restarts. With presence in that Redis its entries are lost too and the
    workers write their own back; in another Redis they survive but their events were lost."""
    apart = presence == "another Redis"
    env = {"PRESENCE_URL": os.environ["TEST_REDIS_URL"]} if apart else {}
    web = cluster(own_redis.url, **env).start_host(workers=2)
    clients = join_spread(web.url, web.workers)
    for client in clients:
        client.wait_until(lambda c: c.shows(statuses(clients, "online")))
    leaver = clients[0]
    stayed = clients[1:]
    resyncs = {c.username: c.resyncs for c in stayed}

    own_redis.kill()
    time.sleep(1)
    leaver.disconnect()  # its worker cannot tell the others (nor, here, the store)
    changes = {leaver.username: "offline"}
    if apart:  # the store works: changes are stored, their events reach one worker only
        for client in (next(c for c in stayed if c.worker == w) for w in web.workers):
            ack = client.client.call("presence:set", {"status": "away"}, timeout=15)
            assert ack == {"ok": True, "status": "away"}
            changes[client.username] = "away"
    time.sleep(2)
    own_redis.start()
    restarted = time.monotonic()

    # Every page is told to catch up once its worker listens again, and then shows the truth.
    truth = {**statuses(stayed, "online"), **changes}
    for client in stayed:
        client.wait_until(lambda c: c.resyncs > resyncs[c.username] and c.shows(truth), timeout=30)
    in_sync = time.monotonic() - restarted
    expected = [{"user": user, "status": truth[user]} for user in sorted(truth)]
    assert list(member_lists(web.url, stayed[0].session).values()) == [expected, expected]
    print(
        f"\npresence in {presence}: every member list ({len(stayed)} pages on 2 workers) "
        f"was right again {in_sync:.1f} s after Redis restarted"
    )
    for client in stayed:
        client.disconnect()
