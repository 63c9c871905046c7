"""Redis restarted under two workers: relaying resumes by itself and clients catch up."""

import time

import pytest

from .cluster import TableClient, post_row, spread

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_relaying_resumes_after_a_redis_restart_and_nothing_is_lost(cluster, own_redis):
    web = cluster(own_redis.url).start_host(workers=2)
    clients = []
    while len(spread(clients)) < 2 or len(clients) < 10:
        clients.append(TableClient(web.url).connect())
        assert len(clients) < 40, "all clients landed on one worker"
    poster = clients[0].session
    rows: dict[int, int] = {}

    def post(a: int, b: int) -> int:
        row_id, _worker = post_row(poster, a, b)
        rows[row_id] = a + b
        return row_id

    before = {post(i, 1) for i in range(3)}
    for client in clients:
        client.wait_for_rows(before)
    resyncs_before = [client.resyncs for client in clients]

    own_redis.kill()
    gap, slowest = set(), 0.0
    for i in range(4):  # stored; their events reach no other worker
        started = time.monotonic()
        gap.add(post(i, 2))
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(1)  # down for a while: the listeners' back-off grows
    own_redis.start()
    restarted = time.monotonic()

    # Every client is told to catch up once its worker's listener is back.
    for client, count in zip(clients, resyncs_before):
        client.wait_for(lambda _events, c=client, n=count: c.resyncs > n, timeout=20)
    resumed = time.monotonic() - restarted
    for client in clients:
        client.wait_for_rows(gap)

    after = {post(i, 3) for i in range(3)}
    for client in clients:
        client.wait_for_rows(after)

    print(
        f"\nslowest POST while Redis was down: {slowest:.2f} s; relaying resumed "
        f"{resumed:.2f} s after Redis restarted; {len(clients)} clients on "
        f"{len(spread(clients))} workers"
    )
    assert resumed < 15
    assert slowest < 10, "a POST waited too long on the dead queue"
    for client in clients:
        assert client.ids() == set(rows), "a row is missing on a client"
        assert client.duplicates() == 0
        pushed = {row["id"] for row in client.live}
        assert before | after <= pushed, "rows posted while Redis was up must be pushed"
        assert all(client.caught_up.get(i, {}).get("sum") == rows[i] for i in gap - pushed)
    for client in clients:
        client.disconnect()
