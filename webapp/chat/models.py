"""Chat rooms, their members (with how far each has read), messages and who they mention."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..auth.models import User
from ..clock import iso_utc, utcnow
from ..extensions import db

# How long after posting its author may still edit a message.
EDIT_WINDOW = timedelta(minutes=10)

# Who may see a room: anyone logged in, or its members only (a private room, or a direct
# conversation, which has exactly two members).
PUBLIC, PRIVATE, DIRECT = "public", "private", "direct"


class Room(db.Model):
    __tablename__ = "rooms"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    # Lower case: room names are unique without regard to case, like usernames.
    name_key: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    visibility: Mapped[str] = mapped_column(String(8), default=PUBLIC, server_default=PUBLIC)
    # Who created it: they may rename it, archive it and remove members. None for general.
    # A user id without a foreign key (migration 0008 adds it in place; accounts are never
    # deleted).
    creator_id: Mapped[int | None] = mapped_column(Integer)
    # An archived room can be read, not posted to.
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # A direct conversation's other member, as the viewer sees it (services.label_direct).
    partner = None

    @property
    def label(self) -> str:
        """What the room list and the page call it: ``# name``, or ``@ partner``."""
        if self.is_direct:
            return f"@ {self.partner.username}" if self.partner else "Direct conversation"
        return f"# {self.name}"

    @property
    def is_public(self) -> bool:
        return self.visibility == PUBLIC

    @property
    def is_direct(self) -> bool:
        return self.visibility == DIRECT

    def __repr__(self) -> str:
        return f"<Room {self.name}>"


class Member(db.Model):
    """A member of a room; ``last_read_id`` counts what is unread for them."""

    __tablename__ = "room_members"
    # The primary key finds a room's members; this finds a user's rooms (every chat page).
    __table_args__ = (Index("ix_room_members_user_id", "user_id"),)

    room_id: Mapped[int] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    last_read_id: Mapped[int] = mapped_column(default=0)
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # A direct conversation this member closed: hidden from their room list until a new message.
    closed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    user: Mapped[User] = relationship(lazy="joined")


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (
        # A resend of the same message (same client id) by the same author is stored once.
        UniqueConstraint("author_id", "client_id", name="uq_messages_author_client_id"),
        Index("ix_messages_room_id_id", "room_id", "id"),
        # Ids are catch-up cursors (?after=ID): never handed out twice (migration 0006).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(Text)
    client_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Deleted messages keep their row (so a late resend of them is still recognised) but no body.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    room: Mapped[Room] = relationship(lazy="joined")
    author: Mapped[User] = relationship(lazy="joined")

    @property
    def editable_until(self) -> datetime:
        """Until when its author may edit it (aware, UTC; SQLite hands back naive times)."""
        created = self.created_at if self.created_at.tzinfo else self.created_at.replace(tzinfo=UTC)
        return created + EDIT_WINDOW

    def to_dict(self) -> dict:
        """The data fields of a message, as sent to non-browser clients."""
        return {
            "id": self.id,
            "room": self.room.name,
            "author": self.author.username,
            "body": self.body,
            "created_at": iso_utc(self.created_at),
            "edited_at": iso_utc(self.edited_at) if self.edited_at else None,
        }


class Mention(db.Model):
    """A message that names a user who may read its room as ``@username``.

    Stored so that a sidebar counts each room's unread mentions (those after the member's
    ``last_read_id``) with one indexed count, whatever the room's length.
    """

    __tablename__ = "mentions"
    __table_args__ = (
        Index("ix_mentions_user_id_room_id_message_id", "user_id", "room_id", "message_id"),
    )

    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
