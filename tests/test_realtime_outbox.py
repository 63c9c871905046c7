"""The outbox: events stored in the change's transaction, numbered per stream, relayed once."""

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from webapp.chat.broadcasts import room_stream
from webapp.chat.models import Room
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.realtime import outbox
from webapp.realtime.models import EventStream, StoredEvent
from webapp.table import services
from webapp.table.models import Row


@pytest.fixture
def sent(monkeypatch):
    """What the outbox sends: (event, data, html, to)."""
    events = []
    monkeypatch.setattr(
        outbox,
        "broadcast",
        lambda event, data, html, to=None: events.append((event, data, html, to)),
    )
    return events


def stored(stream: str | None = None) -> list[tuple]:
    query = select(StoredEvent.stream, StoredEvent.seq, StoredEvent.event, StoredEvent.payload)
    if stream:
        query = query.where(StoredEvent.stream == stream)
    return [tuple(r) for r in db.session.execute(query.order_by(StoredEvent.seq)).all()]


def worker(app, grace: float = 0.0, listening: bool = True) -> outbox.Relay:
    """A relay as a server worker runs it, driven by hand (``tick``) instead of its loop."""
    relay = outbox.Relay(app, listening=lambda: listening)
    relay.grace = grace
    relay.tracking = True
    return relay


def test_each_stream_is_numbered_from_one_in_its_own_order(app):
    with app.app_context():
        numbered = [
            outbox.record("table", "table:row", {"id": 1}, "<p>1</p>"),
            outbox.record("room:general", "chat:message", {"id": 1}, "<p>m</p>", to="chat:general"),
            outbox.record("table", "table:row", {"id": 2}, "<p>2</p>"),
        ]
        db.session.commit()
        assert [(e.stream, e.seq) for e in numbered] == [
            ("table", 1),
            ("room:general", 1),
            ("table", 2),
        ]
        assert numbered[1].payload() == {"id": 1, "stream": "room:general", "seq": 1}
        event = db.session.get(StoredEvent, ("room:general", 1))
        assert (event.event, event.payload, event.html, event.target) == (
            "chat:message",
            {"id": 1},
            "<p>m</p>",
            "chat:general",
        )
        assert event.created_at is not None and event.relayed_at is None


def test_a_rolled_back_change_leaves_no_event_and_no_gap(app):
    with app.app_context():
        db.session.add(Row(a=1, b=2, sum=3))
        db.session.flush()
        outbox.record("table", "table:row", {"id": 1}, "<tr></tr>")
        db.session.rollback()
        assert db.session.scalar(select(func.count(Row.id))) == 0
        assert stored() == [] and db.session.scalar(select(func.count(EventStream.stream))) == 0

        row = services.add_row(2, 3)
        services.delete_row(row.id)
        assert stored("table") == [
            ("table", 1, "table:row", row.to_dict()),
            ("table", 2, "table:row-deleted", {"id": row.id}),
        ]


def test_the_table_services_publish_what_they_stored(app, sent):
    with app.app_context():
        row = services.add_row(20, 22)
        services.delete_row(row.id)
        events = {
            seq: html
            for _stream, seq, html in db.session.execute(
                select(StoredEvent.stream, StoredEvent.seq, StoredEvent.html)
            )
        }
    [(added, data1, html1, to1), (deleted, data2, html2, to2)] = sent
    assert (added, data1["seq"], to1, html1) == ("table:row", 1, None, events[1])
    assert (deleted, data2, to2, html2) == (
        "table:row-deleted",
        {"id": row.id, "stream": "table", "seq": 2},
        None,
        events[2],
    )
    assert f'id="row-{row.id}"' in html1


def test_concurrent_writers_get_every_number_once(app):
    def add_rows():
        with app.app_context():
            for i in range(10):
                services.add_row(i, 1)

    writers = [threading.Thread(target=add_rows) for _ in range(6)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    with app.app_context():
        assert [seq for _s, seq, _e, _p in stored("table")] == list(range(1, 61))
        assert db.session.get(EventStream, "table").seq == 60
        # Row ids follow the same order as the numbers: the table's writers are serialised.
        by_seq = [payload["id"] for _s, _seq, _e, payload in stored("table")]
        assert sorted(by_seq) == sorted(db.session.scalars(select(Row.id)))


def test_retention_prunes_old_events_and_numbering_goes_on(app):
    with app.app_context():
        for i in range(4):
            services.add_row(i, i)
        db.session.execute(
            update(StoredEvent)
            .where(StoredEvent.seq <= 3)
            .values(created_at=utcnow() - timedelta(hours=7))
        )
        db.session.commit()
        assert outbox.prune(6 * 3600) == 3
        assert [seq for _s, seq, _e, _p in stored()] == [4]
        assert outbox.prune(6 * 3600) == 0
        services.add_row(9, 9)
        assert [seq for _s, seq, _e, _p in stored()] == [4, 5]


def test_a_long_backlog_is_pruned_in_short_statements(app, monkeypatch):
    monkeypatch.setattr(outbox, "PRUNE_BATCH", 2)
    with app.app_context():
        for i in range(5):
            services.add_row(i, i)
        db.session.execute(update(StoredEvent).values(created_at=utcnow() - timedelta(days=1)))
        db.session.commit()
        assert [outbox.prune(3600) for _ in range(4)] == [2, 2, 1, 0]


def test_the_relay_publishes_a_committed_event_nobody_published_once(app, sent):
    first, second = worker(app), worker(app)
    with app.app_context():
        first.tick(), second.tick()  # both started before the change
        event = outbox.record("table", "table:row", {"id": 7}, "<tr>7</tr>")
        db.session.commit()  # ... and the writer died before publishing
        relayed = first.tick() + second.tick()  # both find it missing; one wins the claim
        assert relayed == [event]
        assert sent == [("table:row", {"id": 7, "stream": "table", "seq": 1}, "<tr>7</tr>", None)]
        assert db.session.get(StoredEvent, ("table", 1)).relayed_at is not None
        assert first.tick() + second.tick() == [] and len(sent) == 1
        # The second worker's listener brings the first one's publish: nothing was late.
        second.received({"method": "emit", "event": "table:row", "data": [event.payload()]})
        assert second.lag == 0 and second.done == first.done == {"table": 1}


def test_a_listener_seen_to_deliver_late_lengthens_the_grace(app, sent):
    relay = worker(app, grace=0.2)
    with app.app_context():
        relay.tick()
        event = outbox.record("table", "table:row", {"id": 1}, "<tr></tr>")
        db.session.commit()
        relay.tick()  # found unseen
        relay.found[("table", 1)] -= 5  # ... five seconds ago, and only now it comes by
        relay.received({"method": "emit", "event": "table:row", "data": [event.payload()]})
        assert relay.lag >= 5
        outbox.record("table", "table:row", {"id": 2}, "<tr></tr>")
        db.session.commit()
        relay.tick()
        relay.found[("table", 2)] -= 1  # unseen for a second: more than 0.2, less than 2 x 5
        assert relay.tick() == [] and sent == []


def test_the_relay_waits_for_the_grace_before_it_publishes(app, sent):
    relay = worker(app, grace=60)
    with app.app_context():
        relay.tick()
        outbox.record("table", "table:row", {"id": 1}, "<tr></tr>")
        db.session.commit()
        assert relay.tick() == [] and relay.tick() == [] and sent == []
        assert ("table", 1) in relay.found


def test_an_event_still_queued_for_a_busy_listener_is_not_taken_for_lost(app, sent):
    listener = {"caught_up_at": time.monotonic()}
    relay = outbox.Relay(app, listening=lambda: True, caught_up=lambda: listener["caught_up_at"])
    relay.grace, relay.tracking = 0.2, True
    with app.app_context():
        relay.tick()
        outbox.record("table", "table:row", {"id": 1}, "<tr></tr>")
        db.session.commit()
        relay.tick()
        relay.found[("table", 1)] -= 10  # unseen for ten seconds, but the listener has been
        listener["caught_up_at"] -= 20  # behind since before: it may be further down its queue
        assert relay.tick() == [] and sent == []
        listener["caught_up_at"] = time.monotonic()  # it has read all it was sent: lost
        assert [event.seq for event in relay.tick()] == [1] and len(sent) == 1


def test_events_published_or_received_are_not_relayed(app, sent):
    relay = worker(app)
    app.extensions["outbox"] = relay
    with app.app_context():
        relay.tick()
        services.add_row(1, 1)  # published by this worker
        other = outbox.record("table", "table:row", {"id": 99}, "<tr></tr>")
        db.session.commit()
        # Another worker published it; this one's queue listener brings it.
        relay.received({"method": "emit", "event": "table:row", "data": [other.payload()]})
        relay.received({"method": "emit", "event": "chat:typing", "data": [{"room": "x"}]})
        assert relay.tick() + relay.tick() == []
        assert [event for event, *_ in sent] == ["table:row"]
        assert relay.done == {"table": 2} and not relay.seen and not relay.found


def test_without_sockets_or_after_resubscribing_events_are_settled_not_sent(app, sent):
    idle = worker(app, listening=False)
    relay = worker(app)
    with app.app_context():
        idle.tick(), relay.tick()
        outbox.record("table", "table:row", {"id": 1}, "<tr></tr>")
        db.session.commit()
        # This worker's clients are catching up from the database (server:resync).
        relay.resubscribed()
        for _ in range(3):
            assert idle.tick() == [] and relay.tick() == []
        assert idle.done == relay.done == {"table": 1} and sent == []


def test_events_committed_before_the_relay_started_are_settled(app, sent):
    with app.app_context():
        services.add_row(1, 2)
        sent.clear()
        relay = worker(app)
        assert relay.tick() + relay.tick() == [] and sent == []
        assert relay.done == {"table": 1}


@pytest.fixture
def heads(monkeypatch):
    """The stream:head notices a relay sends to its worker's sockets: (data, to)."""
    told = []
    monkeypatch.setattr(
        outbox, "notify_local", lambda event, data, to=None: told.append((event, data, to))
    )
    return told


def test_the_relay_tells_each_streams_head_once_it_sent_every_event_up_to_it(app, sent, heads):
    relay = worker(app, grace=0.5)
    relay.head_interval = 0
    app.extensions["outbox"] = relay
    with app.app_context():
        relay.tick()
        services.add_row(1, 1)
        services.add_row(2, 2)
        # A room's message committed by a writer that died before publishing it.
        room = db.session.scalar(select(Room).where(Room.name_key == "general"))
        message = outbox.record(
            room_stream(room),
            "chat:message",
            {"id": 1},
            "<p></p>",
            to="chat:general",
        )
        db.session.commit()
        relay.tick()
        # The table's events went out: its head is told to every socket. The room's event is
        # still missing here (within the grace): its head waits.
        assert heads == [("stream:head", {"stream": "table", "seq": 2}, None)]
        relay.found[("room:general", message.seq)] -= 1
        relay.tick()  # relayed now, and its head is told to the room's channel after it
        assert heads[1:] == [("stream:head", {"stream": "room:general", "seq": 1}, "chat:general")]
        assert sent[-1][0] == "chat:message"
        relay.tick()
        assert len(heads) == 2  # nothing moved: nothing told again


def test_heads_are_told_at_most_every_interval_and_not_without_sockets(app, sent, heads):
    relay = worker(app)
    relay.head_interval = 60
    app.extensions["outbox"] = relay
    with app.app_context():
        relay.tick()
        services.add_row(1, 1)
        relay.tick()
        services.add_row(2, 2)
        relay.tick()
        assert [data["seq"] for _e, data, _to in heads] == [1]
        relay.heads_told_at["table"] -= 60
        relay.tick()
        assert [data["seq"] for _e, data, _to in heads] == [1, 2]
        idle = worker(app, listening=False)
        idle.head_interval = 0
        idle.tick()
        services.add_row(3, 3)
        idle.tick()
        assert len(heads) == 2
