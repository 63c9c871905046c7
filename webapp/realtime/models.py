"""The outbox: every stored change's event, numbered in its stream, kept for a while."""

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db

STREAM_MAX = 100  # "table", "room:<name>" (room names are at most 32 characters)


class EventStream(db.Model):
    """The last number given out in one stream.

    Incremented in the transaction of each change: the row lock orders the writers of one
    stream, so numbers follow commit order with no gap (a rolled-back change gives its number
    back) and no duplicate. Never pruned, so a number is never given out twice.
    """

    __tablename__ = "event_streams"

    stream: Mapped[str] = mapped_column(String(STREAM_MAX), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    # When the last number was given out: the relay looks only at streams that moved lately.
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StoredEvent(db.Model):
    """One event as it is published: name, data fields and the fragment rendered for everyone."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_created_at", "created_at"),)

    stream: Mapped[str] = mapped_column(String(STREAM_MAX), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSON)
    html: Mapped[str] = mapped_column(Text)
    # The Socket.IO room it goes to (a chat room's channel); None: every socket.
    target: Mapped[str | None] = mapped_column(String(STREAM_MAX))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Set only when a relay publishes an event its writer did not: the claim that keeps two
    # workers from both publishing it.
    relayed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
