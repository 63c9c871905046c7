"""GET /events: a stream's numbered events after a seq, for clients that saw a gap."""

from datetime import timedelta

from sqlalchemy import update

from webapp.clock import utcnow
from webapp.extensions import db
from webapp.realtime.models import StoredEvent
from webapp.table import services


def add_rows(app, count: int) -> list[int]:
    with app.app_context():
        return [services.add_row(i, 1).id for i in range(count)]


def test_json_lists_the_events_after_a_seq_in_order(app, client):
    ids = add_rows(app, 3)
    with app.app_context():
        services.delete_row(ids[0])
    answer = client.get("/events?stream=table&after_seq=1")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["ok"] is True and body["last_seq"] == 4 and body["head"] == 4
    assert body["more"] is False
    assert [(e["event"], e["seq"], e["id"]) for e in body["events"]] == [
        ("table:row", 2, ids[1]),
        ("table:row", 3, ids[2]),
        ("table:row-deleted", 4, ids[0]),
    ]
    first = body["events"][0]
    assert first["stream"] == "table" and first["sum"] == 2 and 'id="row-' in first["html"]


def test_nothing_after_the_head_and_an_empty_stream_answer_no_events(app, client):
    assert client.get("/events?stream=table&after_seq=0").get_json() == {
        "ok": True,
        "stream": "table",
        "events": [],
        "last_seq": 0,
        "head": 0,
        "more": False,
    }
    add_rows(app, 2)
    body = client.get("/events?stream=table&after_seq=2").get_json()
    assert (body["events"], body["last_seq"]) == ([], 2)


def test_htmx_gets_the_fragments_and_the_seq_they_reach(app, client):
    ids = add_rows(app, 2)
    answer = client.get("/events?stream=table&after_seq=0", headers={"HX-Request": "true"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and answer.headers["X-Last-Seq"] == "2"
    assert html.index(f'id="row-{ids[0]}"') < html.index(f'id="row-{ids[1]}"')
    assert 'hx-swap-oob="afterbegin:#rows"' in html


def test_a_page_is_bounded_and_the_client_pages_on_from_last_seq(app, client):
    app.config["EVENTS_PAGE_MAX"] = 2
    add_rows(app, 5)
    seqs, after = [], 0
    while True:
        body = client.get(f"/events?stream=table&after_seq={after}").get_json()
        assert len(body["events"]) <= 2
        seqs += [e["seq"] for e in body["events"]]
        after = body["last_seq"]
        if not body["more"]:
            break
    assert seqs == [1, 2, 3, 4, 5] and after == 5


def test_events_older_than_the_retention_answer_410(app, client):
    add_rows(app, 3)
    with app.app_context():
        old = utcnow() - timedelta(seconds=app.config["OUTBOX_RETENTION_SECONDS"] + 5)
        db.session.execute(update(StoredEvent).where(StoredEvent.seq <= 2).values(created_at=old))
        db.session.commit()
    answer = client.get("/events?stream=table&after_seq=0")
    assert answer.status_code == 410 and answer.get_json()["ok"] is False
    assert "no longer kept" in answer.get_json()["error"]
    # Pruned: the same.
    with app.app_context():
        db.session.execute(StoredEvent.__table__.delete().where(StoredEvent.seq == 1))
        db.session.commit()
    assert client.get("/events?stream=table&after_seq=0").status_code == 410
    # After the kept ones: fine.
    assert [
        e["seq"] for e in client.get("/events?stream=table&after_seq=2").get_json()["events"]
    ] == [3]
    # A number never given out: the client's list is not of this database.
    assert client.get("/events?stream=table&after_seq=9").status_code == 410


def test_bad_input_answers_400_with_a_readable_message(client):
    for query, words in [
        ("", "'stream' is required"),
        ("?after_seq=0", "'stream' is required"),
        ("?stream=table", "'after_seq' must be a whole number"),
        ("?stream=table&after_seq=-1", "'after_seq' must be a whole number"),
        ("?stream=table&after_seq=1.5", "'after_seq' must be a whole number"),
        ("?stream=table&after_seq=x", "'after_seq' must be a whole number"),
        ("?stream=table&after_seq=%EF%BC%91", "'after_seq' must be a whole number"),
        ("?stream=table&after_seq=99999999999999999999999", "'after_seq' must be a whole number"),
        ("?stream=nope&after_seq=0", "There is no stream 'nope'"),
        ("?stream=table:x&after_seq=0", "There is no stream 'table:x'"),
        ("?stream=room:&after_seq=0", "There is no stream 'room:'"),
    ]:
        answer = client.get(f"/events{query}")
        assert answer.status_code == 400, query
        assert answer.get_json()["ok"] is False and words in answer.get_json()["error"], query
    htmx = client.get("/events?stream=nope&after_seq=0", headers={"HX-Request": "true"})
    assert htmx.status_code == 400 and "There is no stream" in htmx.get_data(as_text=True)


def test_a_room_stream_is_for_those_who_may_read_the_room(app, client, accounts):
    alice = accounts("alice")
    alice.browser.post("/chat/general/messages", {"body": "hello"})
    answer = client.get("/events?stream=room:general&after_seq=0")
    assert answer.status_code == 401 and "Log in" in answer.get_json()["error"]
    body = alice.client.get("/events?stream=room:general&after_seq=0").get_json()
    [event] = body["events"]
    assert (event["event"], event["stream"], event["seq"], event["body"]) == (
        "chat:message",
        "room:general",
        1,
        "hello",
    )
    # A room that does not exist answers as one the viewer may not read.
    for name in ("room:nowhere", "room:General"):
        answer = alice.client.get(f"/events?stream={name}&after_seq=0")
        assert answer.status_code == 400 and "There is no stream" in answer.get_json()["error"]
