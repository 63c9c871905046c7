import threading
import uuid

import pytest

from webapp.errors import NotFound, ValidationError
from webapp.realtime import outbox
from webapp.table import services
from webapp.table.models import Row

from .conftest import count_rows


@pytest.mark.parametrize(
    "value, expected",
    [
        ("7", 7),
        ("-12", -12),
        (" 3 ", 3),
        ("+5", 5),
        ("1000000000", 10**9),
        ("-1000000000", -(10**9)),
        (4, 4),
        ("\u22125", -5),  # the minus sign, as the help text writes it
        ("\u22121000000000", -(10**9)),
        ("\uff0d\uff14\uff12", -42),  # fullwidth, as a CJK input method types it
        ("\ufe637", -7),
        ("\uff0b\uff17", 7),
    ],
)
def test_parse_operand_accepts_integers_in_range(value, expected):
    assert services.parse_operand("a", value) == expected


@pytest.mark.parametrize(
    "value, message",
    [
        (None, "A is required."),
        ("", "A is required."),
        ("   ", "A is required."),
        ("abc", "whole number"),
        ("1.5", "whole number"),
        ("1e3", "whole number"),
        ("٣", "whole number"),  # an Arabic-Indic digit is a digit to Python, not to us
        ("5²", "whole number"),  # NFKC would read it as 52
        ("①", "whole number"),
        ("\u20135", "whole number"),  # an en dash is punctuation, not a sign
        ("\u2212\u22125", "whole number"),
        ("\u22121000000001", "between"),
        ("1000000001", "between"),
        ("-1000000001", "between"),
        ("9" * 5000, "too long"),
        (True, "whole number"),
    ],
)
def test_parse_operand_rejects_with_readable_message(value, message):
    with pytest.raises(ValidationError, match=message):
        services.parse_operand("a", value)


def test_add_row_stores_the_sum_and_broadcasts_after_commit(app, monkeypatch):
    sent = []

    def fake_broadcast(event, data, html, to=None):
        # The row is committed before anyone hears of it: a fresh session sees it.
        from webapp.extensions import db

        with db.engine.connect() as other:
            stored = other.execute(
                db.text("SELECT sum FROM table_rows WHERE id = :i"), {"i": data["id"]}
            )
            sent.append((event, data, html, stored.scalar()))

    monkeypatch.setattr(outbox, "broadcast", fake_broadcast)
    with app.app_context():
        row = services.add_row("2", "40")
        assert (row.a, row.b, row.sum) == (2, 40, 42)
    [(event, data, html, stored_sum)] = sent
    assert event == "table:row"
    assert data["id"] == row.id and data["sum"] == 42 and stored_sum == 42
    assert f'id="row-{row.id}"' in html and 'hx-swap-oob="afterbegin:#rows"' in html
    assert 'id="table-footer"' in html


def test_invalid_row_is_neither_stored_nor_broadcast(app, monkeypatch):
    sent = []
    monkeypatch.setattr(outbox, "broadcast", lambda *args, **kwargs: sent.append(args))
    with app.app_context(), pytest.raises(ValidationError):
        services.add_row("1", "x")
    assert sent == [] and count_rows(app) == 0


def test_totals_and_paging(app):
    with app.app_context():
        for i in range(1, 8):
            services.add_row(i, i)
        assert services.totals() == services.Totals(7, sum(2 * i for i in range(1, 8)))
        # The live-list protocol answers oldest first, like every live list.
        assert [r.id for r in services.ROWS.newest(3)] == [5, 6, 7]
        assert [r.id for r in services.ROWS.before(5, 3)] == [2, 3, 4]
        assert [r.id for r in services.ROWS.after(4, 10)] == [5, 6, 7]
        assert [r.id for r in services.ROWS.after(2, 2)] == [3, 4]


def test_delete_row(app):
    with app.app_context():
        row = services.add_row(1, 2)
        services.delete_row(row.id)
        assert Row.query.count() == 0
        with pytest.raises(NotFound):
            services.delete_row(row.id)


def test_two_resends_at_once_store_one_row(app, monkeypatch):
    """Both look the client id up before either has stored it: the database keeps one."""
    both_looked = threading.Barrier(2, timeout=10)
    lookup = services._row_by_client_id
    first_lookup = threading.local()

    def look_then_wait(client_id):
        found = lookup(client_id)
        if not getattr(first_lookup, "done", False):
            first_lookup.done = True
            both_looked.wait()
        return found

    monkeypatch.setattr(services, "_row_by_client_id", look_then_wait)
    client_id = str(uuid.uuid4())
    answers = []

    def resend():
        with app.app_context():
            row, stored = services.add_row_once("1", "2", client_id=client_id)
            answers.append((row.id, stored))

    threads = [threading.Thread(target=resend) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [(1, False), (1, True)]
    assert count_rows(app) == 1
    with app.app_context():
        assert services.totals().count == 1
