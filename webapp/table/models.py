"""Table rows."""

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..auth.models import User
from ..clock import iso_utc, utcnow
from ..extensions import db


class Row(db.Model):
    __tablename__ = "table_rows"
    __table_args__ = (
        # A resend of the same submission (same client id) is stored once.
        UniqueConstraint("client_id", name="uq_table_rows_client_id"),
        # Clients catch up with ?after=ID, so an id is never handed out twice: without
        # AUTOINCREMENT SQLite gives a new row the id of a deleted newest row (migration 0006).
        # PostgreSQL's sequence never goes back by itself.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    a: Mapped[int] = mapped_column(BigInteger)
    b: Mapped[int] = mapped_column(BigInteger)
    sum: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Who added the row, when they were logged in; the table works without an account.
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", name="fk_table_rows_user_id_users", ondelete="SET NULL")
    )
    user: Mapped[User | None] = relationship(lazy="joined")
    # The UUID the page made for this submission (POST form field client_id), if any.
    client_id: Mapped[str | None] = mapped_column(String(36))

    def to_dict(self) -> dict:
        """The data fields of the row, as sent to non-browser clients."""
        return {
            "id": self.id,
            "a": self.a,
            "b": self.b,
            "sum": self.sum,
            "created_at": iso_utc(self.created_at),
            "user": self.user.username if self.user else None,
        }


class TableTotals(db.Model):
    """The footer's row count and total of Sum, one row kept in step with every insert and
    delete: reading it costs one primary-key lookup however long the table grows."""

    __tablename__ = "table_totals"

    id: Mapped[int] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
