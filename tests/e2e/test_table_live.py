"""The live table end to end: gunicorn with the gevent websocket worker and real sockets."""

import re
import threading
import uuid

import pytest
import requests
import socketio

from .clients import BrowserSession, LiveSocket

pytestmark = pytest.mark.e2e


# A script's request: JSON, not htmx (None drops BrowserSession's HX-Request header).
JSON = {"Accept": "application/json", "HX-Request": None}


def row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="row-(\d+)"', html)]


def test_two_clients_receive_a_row_posted_over_http(live_server):
    alice, bob = BrowserSession(live_server.url), BrowserSession(live_server.url)
    sockets = [LiveSocket(alice).connect(), LiveSocket(bob).connect()]
    response = alice.post("/table/rows", {"a": "19", "b": "23"})
    assert response.status_code == 201
    for sock in sockets:
        sock.wait_for(lambda events: any(e == "table:row" for e, _ in events))
        [row] = sock.of("table:row")
        assert row["sum"] == 42 and (row["a"], row["b"]) == (19, 23)
        assert row["id"] == 1 and 'id="row-1"' in row["html"]
        assert "hx-swap-oob" in row["html"]
    for sock in sockets:
        sock.disconnect()


def test_reconnected_client_catches_up_exactly_the_missed_rows(live_server):
    alice, bob = BrowserSession(live_server.url), BrowserSession(live_server.url)
    alice_socket, bob_socket = LiveSocket(alice).connect(), LiveSocket(bob).connect()
    alice.post("/table/rows", {"a": "1", "b": "1"})
    bob_socket.wait_for(lambda events: len(events) >= 1)
    last_seen = bob_socket.of("table:row")[-1]["id"]
    bob_socket.disconnect()

    missed = [alice.post("/table/rows", {"a": str(i), "b": "0"}) for i in range(2, 6)]
    assert all(r.status_code == 201 for r in missed)
    alice_socket.wait_for(lambda events: len(events) >= 5)

    bob_socket = LiveSocket(bob).connect()
    catchup = bob.http.get(f"{live_server.url}/table/rows?after={last_seen}", timeout=10).text
    assert sorted(row_ids(catchup)) == [2, 3, 4, 5]
    ack = bob_socket.client.call("table:catchup", {"after": last_seen}, timeout=10)
    assert [r["id"] for r in ack["rows"]] == [2, 3, 4, 5]

    # After the catch-up the page equals a fresh load: same rows, no gaps, no duplicates.
    fresh = bob.load("/")
    assert row_ids(fresh) == [5, 4, 3, 2, 1]
    bob_socket.disconnect()
    alice_socket.disconnect()


def test_foreign_origin_cannot_open_a_socket(live_server):
    session = BrowserSession(live_server.url)
    foreign = LiveSocket(session, origin="http://evil.example")
    # The server refuses the handshake; the client sees a refused or closed connection.
    with pytest.raises((socketio.exceptions.ConnectionError, ValueError)):
        foreign.connect()
    assert not foreign.client.connected
    same_origin = LiveSocket(session).connect()
    assert same_origin.client.connected
    same_origin.disconnect()


def test_long_polling_is_refused(live_server):
    response = requests.get(f"{live_server.url}/socket.io/?EIO=4&transport=polling", timeout=5)
    assert response.status_code == 400


def test_an_id_is_never_handed_out_again_after_the_newest_row_is_deleted(live_server):
    """A client that saw an id catches up with ?after=ID: a row added after that id was
    deleted must get a greater id, or such a client never sees it."""
    alice, bob = BrowserSession(live_server.url), BrowserSession(live_server.url)
    watcher = LiveSocket(bob).connect()
    assert alice.post("/table/rows", {"a": "1", "b": "1"}).status_code == 201
    newest = alice.post("/table/rows", {"a": "2", "b": "2"})
    assert newest.status_code == 201
    watcher.wait_for(lambda events: len(watcher.of("table:row")) == 2)
    deleted_id = watcher.of("table:row")[-1]["id"]

    headers = {"X-CSRFToken": alice.token, "HX-Request": "true"}
    gone = alice.http.delete(f"{live_server.url}/table/rows/{deleted_id}", headers=headers)
    assert gone.status_code == 200
    watcher.wait_for(lambda events: watcher.of("table:row-deleted"))
    assert alice.post("/table/rows", {"a": "3", "b": "3"}).status_code == 201
    watcher.wait_for(lambda events: len(watcher.of("table:row")) == 3)

    new_id = watcher.of("table:row")[-1]["id"]
    assert new_id > deleted_id
    # Catching up from the deleted id (the last one this client saw) finds the new row.
    catchup = bob.http.get(f"{live_server.url}/table/rows?after={deleted_id}", timeout=10).text
    assert row_ids(catchup) == [new_id]
    ack = watcher.client.call("table:catchup", {"after": deleted_id}, timeout=10)
    assert [(r["id"], r["sum"]) for r in ack["rows"]] == [(new_id, 6)]
    watcher.disconnect()


def test_the_minus_sign_of_the_help_text_is_accepted(live_server):
    session = BrowserSession(live_server.url)
    # The help text writes its range with U+2212; a person copies that or types it on a phone.
    assert "\u22121,000,000,000" in session.load("/")
    response = session.post("/table/rows", {"a": "\u22125", "b": "\uff13"})  # −5 and fullwidth 3
    assert response.status_code == 201, response.text
    assert "-5 + 3 = -2" in response.text
    as_json = session.post("/table/rows", {"a": "\u22121000000000", "b": "7"}, headers=JSON)
    assert as_json.status_code == 201
    assert (as_json.json()["a"], as_json.json()["sum"]) == (-(10**9), -(10**9) + 7)


def test_a_resend_with_the_same_client_id_answers_the_same_row_and_stores_nothing(live_server):
    session = BrowserSession(live_server.url)
    watcher = LiveSocket(BrowserSession(live_server.url)).connect()
    form = {"a": "3", "b": "4", "client_id": str(uuid.uuid4())}
    first = session.post("/table/rows", form, headers=JSON)
    assert first.status_code == 201
    resend = session.post("/table/rows", form, headers=JSON)
    assert resend.status_code == 200
    assert resend.json()["id"] == first.json()["id"]
    # The page's own resend (htmx) gets the same confirmation, with 200.
    again = session.post("/table/rows", form)
    assert again.status_code == 200 and "3 + 4 = 7" in again.text
    # Another client id is another row; a malformed one is refused.
    other = session.post("/table/rows", {**form, "client_id": str(uuid.uuid4())})
    assert other.status_code == 201
    bad = session.post("/table/rows", {**form, "client_id": "not-a-uuid"})
    assert bad.status_code == 422 and "client_id" in bad.text

    watcher.wait_for(lambda events: len(watcher.of("table:row")) == 2)
    csv = session.http.get(f"{live_server.url}/table/rows.csv", timeout=10).text
    assert len(csv.strip().splitlines()) == 1 + 2
    assert len(watcher.of("table:row")) == 2
    watcher.disconnect()


def test_simultaneous_resends_on_two_workers_store_one_row(cluster):
    web = cluster("redis").start_host(workers=2)
    session = BrowserSession(web.url)
    answers = []

    def post(form, ready):
        ready.wait()
        response = requests.post(  # a connection of its own: any worker
            f"{web.url}/table/rows",
            data=form,
            headers={"X-CSRFToken": session.token, "Accept": "application/json"},
            cookies=session.http.cookies,
            timeout=20,
        )
        answers.append((form["client_id"], response.status_code, response.json().get("id")))

    forms = [{"a": str(n), "b": "1", "client_id": str(uuid.uuid4())} for n in range(20)]
    for form in forms:
        ready = threading.Barrier(4)
        sending = [threading.Thread(target=post, args=(form, ready)) for _ in range(4)]
        for thread in sending:
            thread.start()
        for thread in sending:
            thread.join()

    by_client = {}
    for client_id, status, row_id in answers:
        by_client.setdefault(client_id, []).append((status, row_id))
    for client_id, answered in by_client.items():
        assert sorted(status for status, _ in answered) == [200, 200, 200, 201], answered
        assert len({row_id for _, row_id in answered}) == 1, answered
    csv = session.http.get(f"{web.url}/table/rows.csv", timeout=10).text
    assert len(csv.strip().splitlines()) == 1 + len(forms)
