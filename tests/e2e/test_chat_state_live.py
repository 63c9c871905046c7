"""What the chat keeps for a person, over gunicorn and real sockets on two workers: what they
have read and the status they chose, whichever worker holds each tab and renders each page.
And the edges a new user meets: /register while logged in, a room that does not exist, and
the address `make run` prints."""

import os
import re
import shlex
import subprocess
import time

import pytest
import requests

from .clients import LiveSocket, logged_in
from .cluster import worker_of
from .server import BIN, LOOPBACK_LIMITS, ROOT, free_port

pytestmark = pytest.mark.e2e

ROOM_LINK = re.compile(r'<a id="room-link-\d+"[^>]*data-room="([^"]+)".*?</a>', re.DOTALL)
UNREAD = re.compile(r'data-role="unread" title="(\d+) unread"')


def unread_counts(session, worker: str | None = None) -> dict[str, int]:
    """The room list's unread counts on ``session``'s room list page, rendered by ``worker``.

    Each try opens a new connection, which the kernel hands to one of the workers' sockets.
    """
    for _ in range(50):
        page = requests.get(
            session.base_url + "/chat",
            cookies=session.http.cookies,
            headers={"Connection": "close"},
            timeout=10,
        )
        page.raise_for_status()
        if worker is None or page.headers["X-Worker"] == worker:
            counts = {}
            for link in ROOM_LINK.finditer(page.text):
                found = UNREAD.search(link.group(0))
                counts[link.group(1)] = int(found.group(1)) if found else 0
            return counts
    raise AssertionError(f"worker {worker} never answered")


def tab(session, worker: str | None = None, avoid: str | None = None, **auth) -> LiveSocket:
    """A logged-in socket (a tab), on ``worker`` or on any worker but ``avoid``."""
    for _ in range(40):
        sock = LiveSocket(session)
        sock.client.connect(
            session.base_url,
            transports=["websocket"],
            headers={"Cookie": session.cookie_header()},
            auth=auth or None,
            wait_timeout=10,
        )
        on = worker_of(sock)
        if (worker is None or on == worker) and on != avoid:
            sock.worker = on
            return sock
        sock.disconnect()
    raise AssertionError("the sockets did not reach the worker asked for")


def call(sock, event, data):
    ack = sock.client.call(event, data, timeout=10)
    assert ack["ok"], ack
    return ack


def messages_in(sock, count):
    sock.wait_for(lambda events: sum(e == "chat:message" for e, _ in events) >= count)


def test_what_a_shown_tab_got_live_is_read_on_every_worker_and_a_hidden_tab_reads_nothing(
    cluster,
):
    web = cluster("redis").start_host(workers=2)
    alice, bob = logged_in(web.url, "alice"), logged_in(web.url, "bob")
    assert bob.post("/chat/rooms", {"name": "design"}).status_code == 201
    assert alice.post("/chat/design/join", {}).status_code == 200  # unread counts are members'
    writer = tab(bob)
    call(writer, "chat:join", {"room": "design"})
    shown = tab(alice)
    call(shown, "chat:join", {"room": "design"})
    elsewhere = next(w for w in web.workers if w != shown.worker)

    # Read live by a tab that shows the room: no worker counts it unread.
    for number in range(3):
        call(writer, "chat:send", {"room": "design", "body": f"live {number}"})
    messages_in(shown, 3)
    assert unread_counts(alice, elsewhere)["design"] == 0
    assert unread_counts(alice, shown.worker)["design"] == 0

    # The tab is hidden: what reaches it now is unread, until it is looked at again.
    assert call(shown, "presence:set", {"status": "away"})["status"] == "away"
    for number in range(2):
        call(writer, "chat:send", {"room": "design", "body": f"unseen {number}"})
    messages_in(shown, 5)
    assert unread_counts(alice, elsewhere)["design"] == 2
    # A tab that opens hidden (a background tab) and closes again reads nothing either.
    background = tab(alice, avoid=shown.worker, status="away")
    call(background, "chat:join", {"room": "design"})
    call(writer, "chat:send", {"room": "design", "body": "one more"})
    messages_in(background, 1)
    background.disconnect()
    assert unread_counts(alice, shown.worker)["design"] == 3
    assert call(shown, "presence:set", {"status": "online"})["status"] == "online"
    assert unread_counts(alice, elsewhere)["design"] == 0

    # Hidden, then switched to another room: what it showed before counts, the rest does not.
    call(shown, "presence:set", {"status": "away"})
    call(writer, "chat:send", {"room": "design", "body": "while hidden"})
    messages_in(shown, 7)
    call(shown, "chat:join", {"room": "general"})
    call(shown, "presence:set", {"status": "online"})
    assert unread_counts(alice, elsewhere)["design"] == 1
    for sock in (shown, writer):
        sock.disconnect()


def presence_of(sock, user):
    return [d["status"] for e, d in list(sock.events) if e == "chat:presence" and d["user"] == user]


def test_appear_away_holds_for_the_account_in_every_tab_on_every_worker(cluster):
    web = cluster("redis").start_host(workers=2)
    alice, bob = logged_in(web.url, "alice"), logged_in(web.url, "bob")
    watcher = tab(bob)
    call(watcher, "chat:join", {"room": "general"})
    first = tab(alice)
    call(first, "chat:join", {"room": "general"})
    watcher.wait_for(lambda _: presence_of(watcher, "alice")[-1:] == ["online"])

    ack = call(first, "presence:set", {"status": "away", "chosen": True})
    assert ack["status"] == "away"
    watcher.wait_for(lambda _: presence_of(watcher, "alice")[-1:] == ["away"])
    told = len(presence_of(watcher, "alice"))

    # A second tab, on the other worker, shown and used: she stays Away to others.
    second = tab(alice, avoid=first.worker)
    members = call(second, "chat:join", {"room": "general"})["members"]
    assert {"user": "alice", "status": "away"} in members
    page = alice.http.get(web.url + "/chat/general", timeout=10).text
    assert re.search(r'id="appear-away" data-action="appear-away" checked>', page)
    call(second, "presence:set", {"status": "online"})  # what a visible tab reports
    second.disconnect()
    second = tab(alice, avoid=first.worker)
    call(second, "chat:join", {"room": "general"})
    time.sleep(1)  # anything announced by now has reached the watcher
    assert presence_of(watcher, "alice")[told:] == []
    members = requests.get(
        web.url + "/chat/general/members", cookies=bob.http.cookies, timeout=10
    ).text
    assert 'data-user="alice" data-status="away"' in members
    assert 'data-user="alice" data-status="online"' not in members

    # She switches back in the first tab: Online for everyone, and the other tab's switch follows.
    ack = call(first, "presence:set", {"status": "online", "chosen": True})
    assert ack["status"] == "online"
    watcher.wait_for(lambda _: presence_of(watcher, "alice")[-1:] == ["online"])
    second.wait_for(lambda events: ("presence:chosen", {"status": "online"}) in events)
    page = alice.http.get(web.url + "/chat/general", timeout=10).text
    assert re.search(r'id="appear-away" data-action="appear-away">', page)
    for sock in (first, second, watcher):
        sock.disconnect()


def test_a_logged_in_user_who_opens_register_is_sent_on_with_a_note(live_server):
    anonymous = requests.get(live_server.url + "/register", timeout=10)
    assert anonymous.status_code == 200 and 'name="username"' in anonymous.text

    alice = logged_in(live_server.url, "alice")
    response = alice.http.get(live_server.url + "/register", allow_redirects=False, timeout=10)
    assert response.status_code in (302, 303)
    assert response.headers["Location"].endswith("/chat")
    page = alice.http.get(live_server.url + "/register", timeout=10)
    assert page.url == live_server.url + "/chat"
    assert "You are logged in as alice. Log out first to create another account." in page.text
    onward = alice.http.get(
        live_server.url + "/register?next=/chat/general", allow_redirects=False, timeout=10
    )
    assert onward.headers["Location"].endswith("/chat/general")
    elsewhere = alice.http.get(
        live_server.url + "/register?next=https://evil.example/", allow_redirects=False, timeout=10
    )
    assert elsewhere.headers["Location"].endswith("/chat")


def test_an_unknown_room_is_a_chat_page_that_offers_to_create_it(live_server):
    alice = logged_in(live_server.url, "alice")
    response = alice.http.get(live_server.url + "/chat/ideas", timeout=10)
    assert response.status_code == 404
    page = response.text
    assert "Something went wrong" not in page and "Back to the table" not in page
    assert "<title>No room #ideas · Chat</title>" in page
    assert re.search(r'<nav class="list-group[^"]*" aria-label="Rooms"', page)
    assert 'data-room="general"' in page  # the room list
    assert '<input type="hidden" name="name" value="ideas">' in page
    assert "Create # ideas" in page

    created = alice.post(
        "/chat/rooms", {"name": "ideas"}, headers={"HX-Request": ""}, allow_redirects=False
    )
    assert created.status_code == 303
    assert alice.http.get(live_server.url + "/chat/ideas", timeout=10).status_code == 200

    # A name no room can have: the same page, without the offer.
    odd = alice.http.get(live_server.url + "/chat/a~b", timeout=10)
    assert odd.status_code == 404 and 'aria-label="Rooms"' in odd.text
    assert 'name="name" value="a~b"' not in odd.text and "Create # " not in odd.text
    # Clients that ask for JSON still get JSON.
    answer = alice.http.get(
        live_server.url + "/chat/nothing", headers={"Accept": "application/json"}, timeout=10
    )
    assert answer.status_code == 404 and answer.json()["ok"] is False


def test_make_run_prints_the_address_to_open(tmp_path):
    # The command `make run` ends with, as make itself prints it.
    planned = subprocess.run(
        ["make", "--no-print-directory", "-n", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    [command] = [line for line in planned if re.search(r"\bgunicorn\b", line)]
    port = free_port()
    env = {
        **os.environ,
        **LOOPBACK_LIMITS,
        "PORT": str(port),
        "SECRET_KEY": "run-secret",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
        "MESSAGE_QUEUE_URL": "",
    }
    for name in ("BIND", "WEB_CONCURRENCY", "REUSE_PORT"):
        env.pop(name, None)
    subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            shlex.split(command),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while not (found := re.search(r"\bOpen (https?://\S+)", log.read_text())):
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no address printed:\n{log.read_text()}"
            time.sleep(0.1)
        url = found.group(1)
        assert url == f"http://127.0.0.1:{port}"
        while True:
            try:
                page = requests.get(url + "/", timeout=30)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        assert page.status_code == 200 and "Live table" in page.text
    finally:
        os.killpg(server.pid, 3)  # SIGQUIT: gunicorn's quick stop
        server.wait(10)
