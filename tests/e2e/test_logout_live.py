"""Logout ends the session everywhere on two gunicorn workers with Redis and PostgreSQL: the
other browser's sockets on both workers are closed, its pages need a login again, and a socket it
opens with the old cookie cannot chat."""

import time

import pytest

from .clients import LiveSocket, logged_in
from .cluster import worker_of

pytestmark = pytest.mark.e2e


def test_logout_closes_the_users_sockets_on_every_worker(cluster):
    web = cluster("redis").start_host(workers=2)
    laptop = logged_in(web.url, "alice")
    phone = logged_in(web.url, "alice", register=False)
    bystander = logged_in(web.url, "bob")
    phone_sockets, on = [], set()
    while on != web.workers:
        assert len(phone_sockets) < 16, f"the sockets did not spread over the workers: {on}"
        sock = LiveSocket(phone).connect()
        phone_sockets.append(sock)
        on.add(worker_of(sock))
    bob_socket = LiveSocket(bystander).connect()

    response = laptop.http.post(
        web.url + "/logout", data={"csrf_token": laptop.token}, allow_redirects=False, timeout=10
    )
    assert response.status_code == 303

    deadline = time.monotonic() + 15
    while any(s.client.connected for s in phone_sockets) and time.monotonic() < deadline:
        time.sleep(0.1)
    still_open = [worker_of(s) for s in phone_sockets if s.client.connected]
    assert not still_open, f"sockets left open on workers {still_open}"
    print(f"\nlogout closed {len(phone_sockets)} sockets on {len(on)} workers")

    page = phone.http.get(web.url + "/chat", allow_redirects=False, timeout=10)
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    again = LiveSocket(phone).connect()
    ack = again.client.call("chat:send", {"room": "general", "body": "still alice?"}, timeout=10)
    assert ack["ok"] is False
    again.disconnect()
    # Someone else is not affected.
    assert bob_socket.client.connected
    ack = bob_socket.client.call("chat:send", {"room": "general", "body": "hi"}, timeout=10)
    assert ack["ok"] is True
    bob_socket.disconnect()
