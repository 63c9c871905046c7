"""Table rows."""

from datetime import datetime

from sqlalchemy import BigInteger, DateTime
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import iso_utc, utcnow
from ..extensions import db


class Row(db.Model):
    __tablename__ = "table_rows"

    id: Mapped[int] = mapped_column(primary_key=True)
    a: Mapped[int] = mapped_column(BigInteger)
    b: Mapped[int] = mapped_column(BigInteger)
    sum: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def to_dict(self) -> dict:
        """The data fields of the row, as sent to non-browser clients."""
        return {"id": self.id, "a": self.a, "b": self.b, "sum": self.sum,
                "created_at": iso_utc(self.created_at)}


class TableTotals(db.Model):
    """The footer's row count and total of Sum, one row kept in step with every insert and
    delete: reading it costs one primary-key lookup however long the table grows."""

    __tablename__ = "table_totals"

    id: Mapped[int] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
