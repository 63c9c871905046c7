"""Table use cases: validate, record the event, commit, then publish it. Routes, events and the
CLI call these."""

from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from ..client_ids import check_client_id
from ..errors import NotFound, ValidationError
from ..extensions import ID_MAX, db
from ..realtime import live_list, outbox
from .broadcasts import ROW_ADDED, ROW_DELETED, STREAM
from .models import Row, TableTotals

LIMIT = 1_000_000_000
TOTALS_ID = 1
MAX_INPUT_LENGTH = 32
# What a person types or pastes for -12 or +7 besides ASCII: the minus sign U+2212 (the help
# text itself writes it, and so does typeset text), and the fullwidth forms that CJK input
# methods type. Not NFKC as a whole: it would also read "5²" as 52 and "①" as 1.
SIGNS_AND_DIGITS = str.maketrans(
    {
        "\u2212": "-",  # MINUS SIGN
        "\ufe63": "-",  # SMALL HYPHEN-MINUS
        "\uff0d": "-",  # FULLWIDTH HYPHEN-MINUS
        "\uff0b": "+",  # FULLWIDTH PLUS SIGN
        **{chr(0xFF10 + digit): str(digit) for digit in range(10)},  # FULLWIDTH DIGITs
    }
)


@dataclass(frozen=True)
class Totals:
    count: int
    total: int


def parse_operand(name: str, value) -> int:
    """An integer in -1,000,000,000 ... 1,000,000,000 from form input, or a ValidationError."""

    def invalid(reason: str) -> ValidationError:
        return ValidationError(f"{name.upper()} {reason}", field=name)

    if value is None or (isinstance(value, str) and not value.strip()):
        raise invalid("is required.")
    if isinstance(value, bool):
        raise invalid("must be a whole number.")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if len(text) > MAX_INPUT_LENGTH:
            raise invalid("is too long to be a number in range.")
        text = text.translate(SIGNS_AND_DIGITS)
        sign, digits = (text[0], text[1:]) if text[:1] in "+-" else ("", text)
        if not (digits.isascii() and digits.isdigit()):
            raise invalid("must be a whole number, like 7 or -12.")
        number = int(sign + digits)
    if not -LIMIT <= number <= LIMIT:
        raise invalid("must be between -1,000,000,000 and 1,000,000,000.")
    return number


def totals() -> Totals:
    """Row count and the total of the Sum column, as kept by every insert and delete.

    Every event and page shows them, so they are read from one maintained row rather than
    counted over the whole table (a full scan: 16 ms at 100,000 rows on SQLite, blocking the
    worker and every socket on it).
    """
    kept = db.session.execute(
        select(TableTotals.count, TableTotals.total).where(TableTotals.id == TOTALS_ID)
    ).one_or_none()
    if kept is None:  # the row was removed by hand: count instead of showing wrong figures
        kept = db.session.execute(
            select(func.count(Row.id), func.coalesce(func.sum(Row.sum), 0))
        ).one()
    return Totals(int(kept[0]), int(kept[1]))


def _adjust_totals(count: int, total: int) -> Totals:
    """Change the kept totals in the transaction that adds or removes rows; the new totals.

    The event of the change shows the totals as this very statement left them, so no query
    is needed after the commit (on PostgreSQL each is another round trip on the POST).
    """
    kept = TableTotals.__table__.c  # a Core statement: half the cost of the ORM-enabled one
    changed = db.session.execute(
        update(TableTotals.__table__)
        .where(kept.id == TOTALS_ID)
        .values(count=kept.count + count, total=kept.total + total)
        .returning(kept.count, kept.total)
    ).one_or_none()
    if changed is None:  # the row was removed by hand: count, as totals() does
        return totals()
    return Totals(int(changed[0]), int(changed[1]))


def recount_totals() -> None:
    """Set the kept totals from the rows themselves (after rows were loaded in bulk)."""
    db.session.execute(
        update(TableTotals)
        .where(TableTotals.id == TOTALS_ID)
        .values(
            count=select(func.count(Row.id)).scalar_subquery(),
            total=select(func.coalesce(func.sum(Row.sum), 0)).scalar_subquery(),
        )
    )


# The live list of rows (webapp/realtime/live_list.py): pages, catch-up and data-seq.
ROWS = live_list.LiveList(select(Row), Row.id, STREAM)


def add_row(a, b, user=None) -> Row:
    """Validate and store a row (added by ``user`` when logged in), then push it to every client."""
    return add_row_once(a, b, user=user)[0]


def add_row_once(a, b, user=None, client_id=None) -> tuple[Row, bool]:
    """As :func:`add_row`, stored once per ``client_id``: (row, True) when stored now, (the
    stored row, False) for a resend of a submission already stored."""
    row_a, row_b = parse_operand("a", a), parse_operand("b", b)
    client_id = check_client_id(client_id)
    earlier = _row_by_client_id(client_id)
    if earlier is not None:
        return earlier, False
    row = Row(a=row_a, b=row_b, sum=row_a + row_b, user=user, client_id=client_id)
    db.session.add(row)
    try:
        db.session.flush()  # the INSERT: the row has its id, and every field it shows, from here on
    except IntegrityError:
        # The same resend arrived twice at once: the other request stored it.
        db.session.rollback()
        earlier = _row_by_client_id(client_id)
        if earlier is None:
            raise
        return earlier, False
    new_totals = _adjust_totals(1, row.sum)
    event = ROW_ADDED.record(row=row, totals=new_totals)
    # Detached, the row keeps those fields through the commit: the answer uses them as they
    # are instead of loading the row again (another transaction on the database).
    db.session.expunge(row)
    db.session.commit()
    outbox.publish(event)
    return row, True


def _row_by_client_id(client_id: str | None) -> Row | None:
    if client_id is None:
        return None
    return db.session.scalar(select(Row).where(Row.client_id == client_id))


def delete_row(row_id: int) -> None:
    """Delete a row, then tell every client; NotFound if there is no such row."""
    if not 0 < row_id <= ID_MAX:
        raise NotFound(f"There is no row {row_id}.")
    # The totals follow what this statement removed: of two concurrent deletes of one row
    # only one removes it, so the other must neither subtract it again nor broadcast.
    removed = db.session.execute(
        delete(Row).where(Row.id == row_id).returning(Row.sum)
    ).scalar_one_or_none()
    if removed is None:
        db.session.rollback()
        raise NotFound(f"There is no row {row_id}.")
    new_totals = _adjust_totals(-1, -removed)
    event = ROW_DELETED.record(row_id=row_id, totals=new_totals)
    db.session.commit()
    outbox.publish(event)


def iter_rows(batch_size: int = 1000):
    """Every row, oldest first, in batches (for the CSV export)."""
    last_id = 0
    while True:
        query = select(Row).where(Row.id > last_id).order_by(Row.id.asc()).limit(batch_size)
        batch = list(db.session.scalars(query))
        if not batch:
            return
        yield batch
        last_id = batch[-1].id
