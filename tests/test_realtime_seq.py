"""Seq assignment under concurrent writers, on SQLite and (with TEST_POSTGRES_URL) PostgreSQL.

Hypothesis draws writers (threads, each with its own session and connection) that record
events in a few streams, some rolled back, with pauses inside their transactions so that they
interleave. Whatever the draw: in each stream the committed events are numbered 1..n with no gap
and no duplicate, a rolled-back event leaves no number behind, and numbers follow commit order:
once a writer's commit of number s returns, every number below s in its stream is visible too
(a reader following a stream never sees s before s - 1).
"""

import threading
import time

import flask_migrate
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from webapp import create_app
from webapp.extensions import db
from webapp.realtime import outbox
from webapp.realtime.models import EventStream, StoredEvent

from .conftest import make_config
from .services import fresh_postgres_database, require

STREAMS = ["table", "room:a", "room:b"]

step = st.tuples(
    st.sampled_from(STREAMS),
    st.sampled_from([False, False, False, True]),  # rolled back instead of committed?
    st.sampled_from([0, 0, 0.001, 0.004]),  # a pause inside the transaction
)
writers = st.lists(st.lists(step, min_size=1, max_size=6), min_size=2, max_size=5)


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def seq_app(request, tmp_path_factory):
    if request.param == "sqlite":
        url, drop = f"sqlite:///{tmp_path_factory.mktemp('seq') / 'seq.db'}", None
    else:
        url, drop = fresh_postgres_database(require("TEST_POSTGRES_URL"))
    app = create_app(make_config(url))
    with app.app_context():
        flask_migrate.upgrade()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    if drop:
        drop()


def run_writer(app, steps, name, start, committed, problems):
    with app.app_context():
        start.wait()
        for index, (stream, rollback, pause) in enumerate(steps):
            try:
                event = outbox.record(stream, "test:event", {"by": f"{name}.{index}"}, "")
                time.sleep(pause)
                if rollback:
                    db.session.rollback()
                    continue
                db.session.commit()
            except Exception as error:  # reported by the test below
                db.session.rollback()
                problems.append(f"{name}.{index}: {error!r}")
                continue
            committed.append((stream, event.seq, f"{name}.{index}"))
            # Commit order: every lower number of the stream is visible now.
            below = db.session.scalars(
                select(StoredEvent.seq).where(
                    StoredEvent.stream == stream, StoredEvent.seq <= event.seq
                )
            ).all()
            db.session.rollback()
            if sorted(below) != list(range(1, event.seq + 1)):
                problems.append(f"{stream} {event.seq} committed before {sorted(below)}")
        db.session.remove()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plans=writers)
def test_numbers_have_no_gap_no_duplicate_and_follow_commit_order(seq_app, plans):
    with seq_app.app_context():
        db.session.execute(delete(StoredEvent))
        db.session.execute(delete(EventStream))
        db.session.commit()
    start = threading.Barrier(len(plans))
    committed, problems = [], []
    threads = [
        threading.Thread(
            target=run_writer, args=(seq_app, plan, f"w{n}", start, committed, problems)
        )
        for n, plan in enumerate(plans)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert problems == []
    with seq_app.app_context():
        stored = db.session.execute(
            select(StoredEvent.stream, StoredEvent.seq, StoredEvent.payload)
        ).all()
        heads = dict(db.session.execute(select(EventStream.stream, EventStream.seq)).all())
        db.session.rollback()
    assert sorted((s, q, p["by"]) for s, q, p in stored) == sorted(committed)
    for stream in STREAMS:
        numbers = sorted(q for s, q, _ in stored if s == stream)
        assert numbers == list(range(1, len(numbers) + 1)), stream
        assert heads.get(stream, 0) == len(numbers), stream
