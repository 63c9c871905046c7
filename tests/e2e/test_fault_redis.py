"""Redis (queue and presence of two workers) goes down: HTTP keeps working and stores every write,
/healthz says 503, chat pages render with presence unknown; when Redis is back relaying resumes
by itself and every client catches up, chat included.

test_scale_redis_restart.py covers the table's relay over a Redis restart; this adds what users
do meanwhile: pages, writes over HTTP and over the socket, the chat and its presence.
"""

import time
from collections import Counter

import pytest
import requests

from .clients import logged_in
from .cluster import ChatClient, TableClient, post_row, spread
from .faults import timed_request, wait

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

JSON = {"Accept": "application/json"}


def chat_members_on_both(url: str, workers: set[str], limit: int = 16) -> list[ChatClient]:
    clients: list[ChatClient] = []
    while True:
        on = Counter(c.worker for c in clients)
        if all(on[w] >= 2 for w in workers):
            return clients
        assert len(clients) < limit, f"the sockets did not spread over the workers: {on}"
        name = f"user{len(clients) + 1}"
        clients.append(ChatClient(logged_in(url, name), name).join())


def post_message(session, body: str) -> requests.Response:
    return requests.post(  # a new connection: any worker
        session.base_url + "/chat/general/messages",
        data={"body": body},
        headers={"X-CSRFToken": session.token, **JSON},
        cookies=session.http.cookies,
        timeout=15,
    )


def test_while_redis_is_down_http_works_and_everything_catches_up_when_it_is_back(
    cluster, own_redis
):
    web = cluster(own_redis.url).start_host(workers=2)
    members = chat_members_on_both(web.url, web.workers)
    watchers = []
    while len(spread(watchers)) < 2 or len(watchers) < 6:
        watchers.append(TableClient(web.url).connect())
        assert len(watchers) < 30
    everyone = {c.username for c in members}
    for client in members:
        client.wait_until(lambda c: c.shows({u: "online" for u in everyone}))
    author = members[0].session
    rows: set[int] = set()
    messages: set[int] = set()
    rows.add(post_row(watchers[0].session, 1, 1)[0])
    response = post_message(author, "before")
    assert response.status_code == 201
    messages.add(response.json()["id"])

    own_redis.kill()
    down_at = time.monotonic()
    figures: dict[str, str] = {}
    # /healthz says so, from every worker.
    answers = [timed_request("GET", web.url + "/healthz") for _ in range(6)]
    assert {r.status_code for r, _ in answers} == {503}
    assert {r.json()["queue"] for r, _ in answers} == {"down"}
    figures["/healthz"] = f"503 (slowest {max(t for _, t in answers):.2f} s)"

    # Pages render on both workers; the member list says it does not know.
    for n in range(4):
        response, took = timed_request(
            "GET", web.url + "/chat/general", cookies=members[n].session.http.cookies
        )
        assert response.status_code == 200, response.text[:500]
        assert 'data-status="unknown"' in response.text
        figures[f"GET /chat/general #{n}"] = f"200 in {took:.2f} s"
        response, took = timed_request("GET", web.url + "/", cookies=author.http.cookies)
        assert response.status_code == 200
    response, _ = timed_request(
        "GET", web.url + "/chat/general/members", headers=JSON, cookies=author.http.cookies
    )
    assert response.status_code == 200
    assert {m["status"] for m in response.json()["members"]} == {"unknown"}

    # Writes are stored: rows and messages over HTTP, messages over the socket.
    slowest = 0.0
    for i in range(6):
        started = time.monotonic()
        rows.add(post_row(watchers[i % len(watchers)].session, i, 2)[0])
        response = post_message(members[i % len(members)].session, f"during {i}")
        assert response.status_code == 201, response.text
        messages.add(response.json()["id"])
        slowest = max(slowest, time.monotonic() - started)
    for client in members[:2]:
        ack = client.client.call(
            "chat:send", {"room": "general", "body": "over the socket"}, timeout=15
        )
        assert ack["ok"], ack
        messages.add(ack["id"])
    figures["writes while down"] = f"{len(rows) - 1} rows, {len(messages) - 1} messages stored"
    figures["slowest row + message POST"] = f"{slowest:.2f} s"
    # A user who opens the room now gets the page and a working socket.
    late = ChatClient(logged_in(web.url, "latecomer"), "latecomer").join()
    members.append(late)
    everyone.add(late.username)
    time.sleep(2)  # down for a while: the listeners' back-off grows

    resyncs = {id(c): c.resyncs for c in members + watchers}
    own_redis.start()
    back_at = time.monotonic()
    for client in members + watchers:
        client.wait_for(lambda _e, c=client: c.resyncs > resyncs[id(c)], timeout=30)
    resync_after = time.monotonic() - back_at
    for client in watchers:
        client.wait_for_rows(rows, timeout=20)
    for client in members:
        client.wait_until(lambda c: messages <= c.message_ids, timeout=20)
    for client in members:
        client.wait_until(lambda c: c.shows({u: "online" for u in everyone}), timeout=30)
    online_after = time.monotonic() - back_at
    healthy = wait(
        lambda: requests.get(web.url + "/healthz", timeout=5).status_code == 200,
        20,
        "/healthz answers 200",
    )
    assert healthy

    # Relaying resumed: new writes are pushed live again, to every worker's clients.
    after = {post_row(watchers[0].session, 9, 9)[0]}
    response = post_message(author, "after")
    assert response.status_code == 201
    last_message = response.json()["id"]
    for client in watchers:
        client.wait_for_rows(after, timeout=20)
    for client in members:
        client.wait_until(lambda c: last_message in c.message_ids, timeout=20)
    rows |= after
    messages.add(last_message)

    lost = sum(len(rows - c.ids()) for c in watchers) + sum(
        len(messages - c.message_ids) for c in members
    )
    duplicated = sum(c.duplicates() for c in watchers)
    figures["outage"] = f"{back_at - down_at:.1f} s"
    figures["resync told to every client"] = f"{resync_after:.2f} s after Redis was back"
    figures["every member online again"] = f"{online_after:.2f} s after Redis was back"
    figures["deliveries"] = (
        f"{len(rows)} rows x {len(watchers)} watchers + {len(messages)} "
        f"messages x {len(members)} members; lost {lost}, "
        f"duplicated pushes {duplicated}"
    )
    print("\nRedis down (queue and presence of 2 workers):")
    for name, value in figures.items():
        print(f"  {name}: {value}")
    assert lost == 0 and duplicated == 0
    assert slowest < 10
    for client in members + watchers:
        client.disconnect()
