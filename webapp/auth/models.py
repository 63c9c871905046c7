"""User accounts."""

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..extensions import db


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # As typed at registration; shown everywhere.
    username: Mapped[str] = mapped_column(String(32))
    # Lower case: names are unique without regard to case ("Alice" and "alice" are one user).
    username_key: Mapped[str] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Bumped by every logout: a session remembers the epoch it logged in at, and one from an
    # earlier epoch no longer counts as logged in, in any browser or worker.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    def get_id(self) -> str:
        """What the session stores: the user id and the epoch it logged in at."""
        return f"{self.id}:{self.session_epoch or 0}"

    def __repr__(self) -> str:
        return f"<User {self.username}>"
