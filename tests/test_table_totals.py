"""The footer's totals are kept in step with the rows instead of counted on every event."""

import flask_migrate
import pytest
from sqlalchemy import func, insert, select

from webapp.errors import NotFound
from webapp.extensions import db
from webapp.table import services
from webapp.table.models import Row, TableTotals


def counted() -> services.Totals:
    count, total = db.session.execute(
        select(func.count(Row.id), func.coalesce(func.sum(Row.sum), 0))
    ).one()
    return services.Totals(count, total)


def test_totals_follow_adds_and_deletes(app):
    with app.app_context():
        assert services.totals() == services.Totals(0, 0)
        rows = [services.add_row(a, b) for a, b in [(1, 2), (-10, 4), (10**9, 10**9)]]
        assert services.totals() == services.Totals(3, 3 - 6 + 2 * 10**9) == counted()
        services.delete_row(rows[1].id)
        assert services.totals() == services.Totals(2, 3 + 2 * 10**9) == counted()


def test_deleting_a_row_twice_subtracts_it_once(app):
    with app.app_context():
        keep, gone = services.add_row(5, 5), services.add_row(7, 0)
        services.delete_row(gone.id)
        with pytest.raises(NotFound):
            services.delete_row(gone.id)
        assert services.totals() == services.Totals(1, keep.sum) == counted()


def test_page_footer_shows_the_kept_totals(app, browser, client):
    browser.post("/table/rows", {"a": "20", "b": "22"})
    browser.post("/table/rows", {"a": "1", "b": "1"})
    page = client.get("/").get_data(as_text=True)
    assert '<span data-role="row-count">2</span> rows' in page
    assert 'data-role="sum-total">44</td>' in page


def test_migration_starts_the_totals_from_existing_rows(tmp_path):
    from webapp import create_app

    from .conftest import make_config

    app = create_app(make_config(f"sqlite:///{tmp_path / 'old.db'}"))
    with app.app_context():
        flask_migrate.upgrade(revision="0001")
        db.session.execute(insert(Row), [{"a": i, "b": 1, "sum": i + 1} for i in range(100)])
        db.session.commit()
        flask_migrate.upgrade()
        assert services.totals() == services.Totals(100, sum(i + 1 for i in range(100)))
        db.session.remove()
        db.engine.dispose()


def test_recount_after_rows_were_loaded_in_bulk(app):
    with app.app_context():
        services.add_row(1, 1)
        db.session.execute(insert(Row), [{"a": 3, "b": 4, "sum": 7}] * 10)
        services.recount_totals()
        db.session.commit()
        assert services.totals() == services.Totals(11, 72) == counted()


def test_totals_are_counted_when_the_kept_row_is_missing(app):
    with app.app_context():
        services.add_row(2, 3)
        db.session.execute(TableTotals.__table__.delete())
        db.session.commit()
        assert services.totals() == services.Totals(1, 5)


def test_each_event_shows_the_row_as_stored_and_the_totals_it_left(app, monkeypatch):
    from sqlalchemy import event

    from webapp.auth import services as auth
    from webapp.realtime import outbox

    sent = []
    monkeypatch.setattr(outbox, "broadcast", lambda *args, **kwargs: sent.append(args))
    with app.app_context():
        user = auth.register("totals_author", "a-long-password-1")
        transactions = []

        def began(conn):
            transactions.append(conn)

        event.listen(db.engine, "begin", began)
        try:
            first = services.add_row(1, 2)
            second = services.add_row(30, 4, user=user)
            services.delete_row(first.id)
        finally:
            event.remove(db.engine, "begin", began)
        # One transaction per change: the event needs no reading after the commit.
        assert len(transactions) == 3
        db.session.expire_all()
        stored = {row.id: row.to_dict() for row in db.session.scalars(select(Row))}
    [(added1, data1, html1), (added2, data2, html2), (deleted, data3, html3)] = sent
    assert (added1, added2, deleted) == ("table:row", "table:row", "table:row-deleted")
    assert data2 == {**stored[second.id], "stream": "table", "seq": 2}
    assert data2["user"] == "totals_author"
    assert data1["id"] == first.id and data1["sum"] == 3 and data1["user"] is None
    assert '<span data-role="row-count">1</span> row' in html1 and ">3</td>" in html1
    assert '<span data-role="row-count">2</span> rows' in html2 and ">37</td>" in html2
    assert "by totals_author" in html2
    assert data3 == {"id": first.id, "stream": "table", "seq": 3}
    assert '<span data-role="row-count">1</span> row' in html3 and ">34</td>" in html3
