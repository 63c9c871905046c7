"""Two hosts behind nginx (deploy/nginx.conf) sharing Redis and PostgreSQL: rows and chat
messages flow both ways."""

import pytest
import requests

from .clients import BrowserSession, logged_in
from .cluster import ChatClient, TableClient, post_row, spread

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


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

    # Chat: members of one room on both hosts; messages from each host reach everyone once.
    members: list[ChatClient] = []
    while len({host_of[m.worker] for m in members}) < 2 or len(members) < 3:
        assert len(members) < 12, "nginx sent every chat socket to one host"
        name = f"member{len(members) + 1}"
        members.append(ChatClient(logged_in(nginx.url, name), name).join())
    sent = {}
    for member in members:
        body = f"from {member.username}"
        ack = member.client.call("chat:send", {"room": "general", "body": body}, timeout=10)
        assert ack["ok"], ack
        sent[ack["id"]] = host_of[member.worker]
    assert set(sent.values()) == {0, 1}
    for member in members:
        member.wait_until(lambda m: set(sent) <= m.message_ids)
        pushed = [data["id"] for event, data in member.events if event == "chat:message"]
        assert sorted(pushed) == sorted(sent), "a message came twice or not at all"
    print(
        f"chat sockets per host through nginx: "
        f"{[sum(host_of[m.worker] == h for m in members) for h in (0, 1)]}; "
        f"{len(sent)} messages x {len(members)} members delivered once each"
    )
    for member in members:
        member.disconnect()
