"""Two gunicorn workers on one host, relayed by Redis or RabbitMQ, on PostgreSQL."""

import time

import pytest

from .cluster import TableClient, post_row, spread

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLIENTS = 50
ROWS = 20


@pytest.mark.parametrize("queue", ["redis", "amqp"])
def test_every_client_on_both_workers_gets_every_row_exactly_once(cluster, queue):
    group = cluster(queue)
    web = group.start_host(workers=2)
    clients = [TableClient(web.url).connect() for _ in range(CLIENTS)]
    per_worker = spread(clients)
    assert set(per_worker) == web.workers
    assert min(per_worker.values()) >= 5, f"clients not spread over the workers: {per_worker}"

    posted, served_by = {}, []
    for i in range(ROWS):  # each POST on a new connection, so both workers store some
        row_id, worker = post_row(clients[i].session, i, 1000 * i)
        posted[row_id] = i + 1000 * i
        served_by.append(worker)
    assert set(served_by) == web.workers, "every worker should have stored some of the rows"

    # The command line is another process, not a worker: it publishes through the queue.
    started = time.monotonic()
    result = group.flask("table", "add-row", "40", "2", timeout=30)
    command_seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    row_id = int(result.stdout.split()[2].rstrip(":"))  # "Added row 21: 40 + 2 = 42"
    posted[row_id] = 42

    missing = 0
    for client in clients:
        client.wait_for_rows(posted)
        pushed = {row["id"]: row for row in client.live}
        missing += len(set(posted) - set(pushed))
        assert client.duplicates() == 0
        assert all(
            row["sum"] == posted[row["id"]] == row["a"] + row["b"] for row in pushed.values()
        )
        assert sum(row["sum"] for row in pushed.values()) == sum(posted.values())
    print(
        f"\n{queue}: clients per worker {sorted(per_worker.values())}, rows stored per worker "
        f"{sorted(served_by.count(w) for w in web.workers)} + 1 from the command line "
        f"({command_seconds:.1f} s); {len(posted) * CLIENTS} deliveries, {missing} missing, "
        f"0 duplicated"
    )
    assert missing == 0, "some rows reached a client only by catching up"
    for client in clients:
        client.disconnect()
