"""Two hosts behind nginx (deploy/nginx.conf) sharing Redis and PostgreSQL."""

import pytest
import requests

from .cluster import TableClient, post_row, spread
from .clients import BrowserSession

pytestmark = pytest.mark.e2e


def test_two_hosts_behind_nginx_share_every_row(cluster, balancer):
    group = cluster("redis")
    hosts = [group.start_host(workers=2), group.start_host(workers=2)]
    nginx = balancer(hosts)
    host_of = {worker: n for n, host in enumerate(hosts) for worker in host.workers}
    assert len(host_of) == 4
    # nginx takes turns between the hosts (it keeps one idle connection to each open).
    answered = [requests.get(nginx.url + "/healthz", timeout=10) for _ in range(4)]
    assert all(response.status_code == 200 for response in answered)
    assert {host_of[response.headers["X-Worker"]] for response in answered} == {0, 1}

    # Browser-like clients through nginx: page, cookie and CSRF token from whichever host
    # answered; then the websockets (Origin checked behind the proxy), which nginx hands out
    # in turn, so each host gets some.
    sessions = [BrowserSession(nginx.url) for _ in range(4)]
    clients = [TableClient(nginx.url, session).connect() for session in sessions]
    on_host = [host_of[next(iter(spread([client])))] for client in clients]
    print(f"\nsockets per host through nginx: {[on_host.count(0), on_host.count(1)]}")
    assert set(on_host) == {0, 1}, "nginx sent every socket to one host"

    # Rows posted through nginx land on both hosts and reach the clients of both hosts.
    posted, by_host = {}, set()
    for i in range(8):
        row_id, worker = post_row(clients[i % len(clients)].session, i, 100)
        posted[row_id] = i + 100
        by_host.add(host_of[worker])
    assert by_host == {0, 1}, "every POST went to the same host"
    for client in clients:
        client.wait_for_rows(posted)
        assert {row["id"]: row["sum"] for row in client.live} == posted
        assert client.duplicates() == 0
    for client in clients:
        client.disconnect()
