"""Chat use cases: validate, commit, then broadcast. Routes, socket events and the reaper call these.

Presence itself lives in webapp/realtime/presence; the chat plugs into it with two hooks:
``announce_presence`` (a user's status changed: tell the rooms they are members of) and
``read_when_hidden`` (a tab stopped showing its room: what it showed counts as read).
"""

import math
import re
import unicodedata
from typing import NamedTuple

from flask import current_app
from flask_login import current_user
from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..auth import services as accounts
from ..auth.models import User
from ..auth.services import NAME_PATTERN, check_name
from ..client_ids import check_client_id
from ..clock import utcnow
from ..errors import NotFound, ValidationError
from ..extensions import ID_MAX, db
from ..realtime import live_list, outbox, presence
from ..realtime.connections.closing import close_user_sockets
from ..realtime.models import StoredEvent
from ..realtime.streams import StreamRefused
from .broadcasts import (
    ACTIVITY,
    MEMBER_LEFT,
    MENTION,
    MESSAGE,
    MESSAGE_DELETED,
    MESSAGE_EDITED,
    PRESENCE,
    ROOM,
    TYPING,
    UNREAD,
    room_stream,
)
from .models import DIRECT, PRIVATE, PUBLIC, Member, Mention, Message, Room
from .text import LONGEST, Unrenderable, mentions
from .text import render as render_body

GENERAL = "general"
BODY_MAX = LONGEST
UNSHOWABLE = "This message cannot be shown. Change its text and send it again."
FLOOD_LIMIT, FLOOD_WINDOW = 10, 10.0
TYPING_INTERVAL = 1.0
# Words of the chat's own addresses (/chat/rooms, /chat/dm/<user>, /chat/search, ...).
ROUTE_WORDS = frozenset({"rooms", "dm", "search", "sidebar", "attachments"})
# The name of a direct conversation: its members' ids, lowest first. The '.' keeps it out of
# reach of check_room_name, so no public or private room can take it.
DIRECT_NAME = re.compile(r"dm\.([1-9][0-9]{0,13})\.([1-9][0-9]{0,13})")
JOIN_TO_POST = "Join the room to post."
ARCHIVED = "This room is archived: it can be read, not posted to."


class NotAllowed(ValidationError):
    """Something only a room's creator may do."""

    status = 403


MENTION_PREFIX = re.compile(r"[A-Za-z0-9_-]{0,32}")
EXCERPT_MAX = 140  # characters of a message in a mention's notification


class RoomEntry(NamedTuple):
    """A room as one user's sidebar lists it: what they have not read there.

    ``unread``: messages of others after their last read one; ``mentions``: those of them that
    name the user; ``last_id``: the newest message counted, so that a page counts a message
    that arrives live (``chat:activity``) only once.
    """

    room: Room
    unread: int = 0
    mentions: int = 0
    last_id: int = 0


class SlowDown(ValidationError):
    """More messages than flood control allows; nothing was stored.

    ``retry_after``: whole seconds until the same message would be accepted.
    """

    status = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


# Validation -------------------------------------------------------------------------------


def check_body(value) -> str:
    """Message text: 1–2000 characters after trimming; no NUL, control or unpaired characters."""
    if not isinstance(value, str):
        raise ValidationError("The message must be text.")
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise ValidationError("The message is empty.")
    if len(text) > BODY_MAX:
        raise ValidationError(f"The message is too long: at most {BODY_MAX} characters.")
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\n\t" for c in text):
        raise ValidationError("The message contains characters that cannot be shown.")
    # Rendered before it is stored: a text that cannot be shown is refused here, instead of
    # being stored and then breaking every page of its room.
    try:
        render_body(text)
    except Unrenderable as error:
        current_app.logger.warning("message refused, it cannot be rendered: %s", error)
        raise ValidationError(UNSHOWABLE) from None
    return text


def check_message_id(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= ID_MAX:
        raise ValidationError("'id' must be a message id (a whole number).")
    return value


def check_room_name(value) -> str:
    if not isinstance(value, str):
        raise ValidationError("'room' must be a room name.")
    name = check_name(value, "Room name")
    if name.lower() in ROUTE_WORDS:
        raise ValidationError(f"'{name}' is a word of the chat's addresses: choose another name.")
    return name


def no_room(name) -> NotFound:
    """What a room that does not exist answers, and so does one the viewer may not see."""
    return NotFound(f"There is no room '{name}'.")


# Rooms ------------------------------------------------------------------------------------


def room_became_visible(room: Room, user_ids: set[int] | None) -> None:
    """``room`` just became visible to these users (None: to everyone logged in), called after
    the commit wherever that happens: a public room created, a member added to a private room,
    a direct conversation started or reopened. Their sidebars list it (``chat:room``)."""
    if room.is_direct and user_ids:
        # Each of its two members sees it named after the other: one entry each.
        for user_id in sorted(user_ids):
            show_room(room, [user_id])
        return
    show_room(room, user_ids)


def ensure_general() -> Room:
    """The `general` room, which always exists (created here if a database lacks it)."""
    room = db.session.scalar(select(Room).where(Room.name_key == GENERAL))
    if room is None:
        db.session.add(Room(name=GENERAL, name_key=GENERAL))
        try:
            db.session.commit()
        except IntegrityError:  # created at the same moment elsewhere
            db.session.rollback()
        room = db.session.scalar(select(Room).where(Room.name_key == GENERAL))
    return room


def find_room(name) -> Room:
    """The room called ``name`` (any case); NotFound if there is none."""
    key = name if isinstance(name, str) and DIRECT_NAME.fullmatch(name) else None
    key = key or check_room_name(name).lower()
    if key == GENERAL:
        return ensure_general()
    room = db.session.scalar(select(Room).where(Room.name_key == key))
    if room is None:
        raise no_room(name)
    return room


def is_member(user, room: Room) -> bool:
    return db.session.get(Member, (room.id, user.id)) is not None


def can_read_room(user, room: Room) -> bool:
    """Whether ``user`` may read ``room``'s messages and events: a public room anyone logged
    in, a private room or direct conversation its members only."""
    if user is None or not user.is_authenticated:
        return False
    return room.is_public or is_member(user, room)


def check_readable(user, room: Room) -> None:
    """NotFound, as for a room that does not exist, unless ``user`` may read ``room``."""
    if not can_read_room(user, room):
        raise no_room(room.name)


def readable_room(user, name) -> Room:
    """The room called ``name`` when ``user`` may read it; for a room they may not see, the
    same NotFound as for one that does not exist (a malformed name: ValidationError)."""
    room = find_room(name)
    if not can_read_room(user, room):
        raise no_room(name)
    return room


def check_can_post(user, room: Room) -> None:
    """Members post in rooms that are not archived; ``room`` is one ``user`` may read."""
    if not is_member(user, room):
        raise ValidationError(JOIN_TO_POST)
    if room.archived_at is not None:
        raise ValidationError(ARCHIVED)


def check_stream_readable(key: str | None) -> None:
    """Raise StreamRefused unless the viewer may read the stream ``room:<key>`` (/events).

    A room the viewer may not read answers exactly as one that does not exist.
    """
    if not current_user.is_authenticated:
        raise StreamRefused("Log in to read a room's events.", status=401)
    room = None
    if key is not None and key == key.lower():
        room = db.session.scalar(select(Room).where(Room.name_key == key))
    if room is None or not can_read_room(current_user, room):
        raise StreamRefused(f"There is no stream 'room:{key}'.")


def create_room(name, creator: User | None = None, visibility=PUBLIC) -> Room:
    """Create a room (``visibility`` public or private) whose first member is ``creator``;
    ValidationError for a bad or taken name."""
    name = check_room_name(name)
    if visibility in (None, ""):
        visibility = PUBLIC
    if visibility not in (PUBLIC, PRIVATE):
        raise ValidationError("A room is 'public' or 'private'.", field="visibility")
    if db.session.scalar(select(Room.id).where(Room.name_key == name.lower())) is not None:
        raise ValidationError(f"A room called '{name}' already exists.")
    room = Room(
        name=name,
        name_key=name.lower(),
        visibility=visibility,
        creator_id=creator.id if creator else None,
    )
    db.session.add(room)
    try:
        db.session.flush()
        if creator is not None:
            db.session.add(Member(room_id=room.id, user_id=creator.id))
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ValidationError(f"A room called '{name}' already exists.") from None
    if creator is not None:
        announce_presence({creator.id}, rooms=[room])
    room_became_visible(room, None if room.is_public else {creator.id} if creator else set())
    return room


def _visible_to():
    """The condition on a query of rooms outer-joined with one user's Member rows: the rooms
    they see listed (public ones, and those they are a member of, but no closed direct
    conversation)."""
    return or_(
        Room.visibility == PUBLIC, and_(Member.user_id.is_not(None), Member.closed.is_(False))
    )


def label_direct(user: User | int, rooms) -> None:
    """Give each direct conversation in ``rooms`` its ``partner``: the member who is not
    ``user`` (what the room list and the room page call it). One query for them all."""
    direct = {room.id: room for room in rooms if room.is_direct}
    if not direct:
        return
    user_id = user if isinstance(user, int) else user.id
    query = select(Member).where(Member.room_id.in_(direct), Member.user_id != user_id)
    for member in db.session.scalars(query):
        direct[member.room_id].partner = member.user


def show_room(room: Room, user_ids=None) -> None:
    """Tell sidebars that ``room`` became visible: every logged-in user's (``user_ids`` None,
    a new public room) or those users' (added to a private room, a new direct conversation).

    Called after the commit that made it visible. For one user, their own counts (a direct
    conversation shown again by a new message has it unread); otherwise nothing is unread yet.
    """
    if user_ids is not None:
        user_ids = list(user_ids)
        if not user_ids:
            return
    if user_ids is not None and len(user_ids) == 1:
        # One user (added, or a direct conversation shown again): their own counts.
        entry = room_entry(user_ids[0], room)
        label_direct(user_ids[0], [room])
    else:
        entry = RoomEntry(room, last_id=last_message_id(room))
    ROOM.send(entry=entry, user_ids=user_ids)


def rooms_with_unread(user: User, room_ids=None) -> list[RoomEntry]:
    """Rooms by name (those of ``room_ids``, else every one), with how many messages of
    others ``user`` has not read there and how many of those mention them (none in rooms
    they are not a member of)."""
    ensure_general()
    read_what_is_shown(user)
    entries = _entries(user.id, room_ids)
    label_direct(user, [entry.room for entry in entries])
    return entries


def _entries(user_id: int, room_ids=None) -> list[RoomEntry]:
    read = func.coalesce(Member.last_read_id, 0)
    unread = func.count(Message.id)
    mentioned = (
        select(func.count(Mention.message_id))
        .join(Message, Message.id == Mention.message_id)
        .where(
            Member.user_id.is_not(None),
            Mention.user_id == user_id,
            Mention.room_id == Room.id,
            Mention.message_id > read,
            Message.deleted_at.is_(None),
        )
        .correlate(Room, Member)
        .scalar_subquery()
    )
    newest = select(func.max(Message.id)).where(Message.room_id == Room.id)
    newest = newest.correlate(Room).scalar_subquery()
    query = (
        select(Room, unread, mentioned, newest)
        .outerjoin(Member, and_(Member.room_id == Room.id, Member.user_id == user_id))
        .outerjoin(
            Message,
            and_(
                # Unread counts are for members: a room one only looks into counts nothing.
                Member.user_id.is_not(None),
                Message.room_id == Room.id,
                Message.id > read,
                Message.author_id != user_id,
                Message.deleted_at.is_(None),
            ),
        )
        .where(_visible_to())
        .group_by(Room.id, Member.room_id, Member.user_id, Member.last_read_id)
        .order_by(Room.name_key)
    )
    if room_ids is not None:
        query = query.where(Room.id.in_(room_ids))
    return [
        RoomEntry(room, count, mention_count or 0, last_id or 0)
        for room, count, mention_count, last_id in db.session.execute(query)
    ]


def room_entry(user_id: int, room: Room) -> RoomEntry:
    """One room's entry in ``user_id``'s sidebar, as it stands in the database now."""
    found = _entries(user_id, [room.id])
    return found[0] if found else RoomEntry(room)


def room_list(user: User, current: Room | None = None) -> tuple[list[RoomEntry], bool]:
    """The rooms a chat page lists, and whether there are others (the "All rooms" link).

    However many rooms exist, a page lists a bounded number: ``general``, the rooms ``user``
    is a member of (``CHAT_ROOM_LIST_MEMBER_MAX``, by name) and ``current``, then up to
    ``CHAT_ROOM_LIST_OTHERS_MAX`` others: the most recently active, then the newest. Every
    query reads at most a bounded number of rows, so neither the page nor its cost grows with
    the number of rooms (someone creating rooms by the thousand fills only the last places).
    """
    config = current_app.config
    member_max, others = config["CHAT_ROOM_LIST_MEMBER_MAX"], config["CHAT_ROOM_LIST_OTHERS_MAX"]
    mine = select(Member.room_id).join(Room, Room.id == Member.room_id)
    mine = list(
        db.session.scalars(
            mine.where(Member.user_id == user.id).order_by(Room.name_key).limit(member_max + 1)
        )
    )
    listed = [ensure_general().id, *mine[:member_max], *([current.id] if current else [])]
    # The most recently active: the rooms of the newest messages, read from a bounded window
    # of the messages' primary key.
    recent = select(Message.room_id, Message.id).order_by(Message.id.desc())
    recent = recent.limit(config["CHAT_ROOM_LIST_ACTIVITY_WINDOW"]).subquery()
    active = (
        select(recent.c.room_id)
        .join(Room, Room.id == recent.c.room_id)
        .where(recent.c.room_id.not_in(listed), Room.visibility == PUBLIC)
        .group_by(recent.c.room_id)
        .order_by(func.max(recent.c.id).desc())
        .limit(others)
    )
    active = list(db.session.scalars(active))
    # Then the newest rooms; one more than fits tells whether rooms are left out.
    left = others - len(active)
    newest = select(Room.id).where(Room.id.not_in(listed + active), Room.visibility == PUBLIC)
    newest = newest.order_by(Room.id.desc())
    newest = list(db.session.scalars(newest.limit(left + 1)))
    more = len(mine) > member_max or len(newest) > left
    return rooms_with_unread(user, [*listed, *active, *newest[:left]]), more


def all_rooms(user: User, after, limit: int) -> tuple[list[RoomEntry], str | None]:
    """One page of every room by name, after the room named ``after``; and the name the next
    page starts after (None on the last page)."""
    mine = select(Member.room_id).where(Member.user_id == user.id)
    query = select(Room.id).where(or_(Room.visibility == PUBLIC, Room.id.in_(mine)))
    query = query.order_by(Room.name_key).limit(limit + 1)
    if isinstance(after, str) and after:
        query = query.where(Room.name_key > after.lower()[:32])
    ids = list(db.session.scalars(query))
    rooms = rooms_with_unread(user, ids[:limit])
    return rooms, rooms[-1][0].name_key if len(ids) > limit else None


# Members and read state -------------------------------------------------------------------


def last_message_id(room: Room) -> int:
    query = select(func.max(Message.id)).where(Message.room_id == room.id)
    return db.session.scalar(query) or 0


def last_read_id(user: User, room: Room) -> int | None:
    """The newest message ``user`` has read in ``room``; None when they are not a member."""
    member = db.session.get(Member, (room.id, user.id))
    return member.last_read_id if member is not None else None


def join(user: User, room: Room) -> Member:
    """Make ``user`` a member of the public ``room`` (announced to the room the first time).

    A room they may not see: NotFound, as for one that does not exist. A new member never
    finds the history from before they came unread.
    """
    check_readable(user, room)
    member = db.session.get(Member, (room.id, user.id))
    if member is not None:
        return member
    if room.archived_at is not None:
        raise ValidationError(ARCHIVED)
    member = _add_member(room, user)
    if member is not None:
        announce_presence({user.id}, rooms=[room])
    return member or db.session.get(Member, (room.id, user.id))


def _add_member(room: Room, user: User) -> Member | None:
    """Store ``user``'s membership of ``room``, its history read; None if it already was."""
    # Queried before the new member is added: a query after it would flush the insert early,
    # and the duplicate of a second tab joining at the same moment would escape the except below.
    last_id = last_message_id(room)
    member = Member(room_id=room.id, user_id=user.id, last_read_id=last_id)
    db.session.add(member)
    try:
        db.session.commit()
    except IntegrityError:  # joined at the same moment from another tab
        db.session.rollback()
        return None
    return member


@accounts.on_register
def join_general(user: User) -> None:
    """Every account is a member of general from registration on."""
    _add_member(ensure_general(), user)


def leave(user: User, room: Room) -> None:
    """``user`` stops being a member of ``room`` (a direct conversation: it is closed)."""
    check_readable(user, room)
    if room.name_key == GENERAL:
        raise ValidationError("Everyone is a member of general: it cannot be left.")
    if room.is_direct:
        close_direct(user, room)
        return
    _remove(room, user)


def _remove(room: Room, user: User) -> None:
    """End ``user``'s membership of ``room``; their tabs that show a room they can no longer
    read reconnect, and their sockets leave its events (every worker)."""
    result = db.session.execute(
        delete(Member).where(Member.room_id == room.id, Member.user_id == user.id)
    )
    db.session.commit()
    if not result.rowcount:
        return
    MEMBER_LEFT.send(room=room, user=user)
    if not room.is_public:
        close_user_sockets(user.id, room=room.name_key)


def _creator_only(user: User, room: Room, what: str) -> None:
    if room.name_key == GENERAL or room.is_direct:
        raise ValidationError(f"Nobody can {what} this room.")
    if room.creator_id != user.id:
        raise NotAllowed(f"Only the room's creator can {what} it.")


def add_member(user: User, room: Room, username) -> User:
    """``user``, a member of the private ``room``, adds the user called ``username``."""
    check_readable(user, room)
    if room.is_direct:
        raise ValidationError("A direct conversation has exactly two members.")
    if room.is_public:
        raise ValidationError("Anyone can join a public room: share its link instead.")
    if not is_member(user, room):  # cannot happen for a private room; kept for clarity
        raise no_room(room.name)
    if room.archived_at is not None:
        raise ValidationError(ARCHIVED)
    name = username.strip() if isinstance(username, str) else ""
    other = accounts.find_user(name) if NAME_PATTERN.fullmatch(name) else None
    if other is None:
        raise ValidationError(f"There is no user '{name}'.", field="username")
    if is_member(other, room):
        raise ValidationError(f"{other.username} is already a member.", field="username")
    if _add_member(room, other) is None:
        raise ValidationError(f"{other.username} is already a member.", field="username")
    announce_presence({other.id}, rooms=[room])
    room_became_visible(room, {other.id})
    return other


def remove_member(user: User, room: Room, username) -> None:
    """The creator of ``room`` removes a member (removing oneself is leaving)."""
    check_readable(user, room)
    _creator_only(user, room, "remove members of")
    name = username.strip() if isinstance(username, str) else ""
    other = accounts.find_user(name) if NAME_PATTERN.fullmatch(name) else None
    if other is None or not is_member(other, room):
        raise ValidationError(f"{name} is not a member of this room.", field="username")
    _remove(room, other)


def rename_room(user: User, room: Room, name) -> Room:
    """The creator gives ``room`` a new name (and so a new address and stream)."""
    check_readable(user, room)
    _creator_only(user, room, "rename")
    name = check_room_name(name)
    if name.lower() != room.name_key:
        taken = db.session.scalar(select(Room.id).where(Room.name_key == name.lower()))
        if taken is not None:
            raise ValidationError(f"A room called '{name}' already exists.", field="name")
    old = room_stream(room)
    room.name, room.name_key = name, name.lower()
    if room_stream(room) != old:
        # The old stream's events stay behind under the old name, which anyone may take now:
        # they go (its numbering stays, so no number of it is ever given out twice).
        db.session.execute(delete(StoredEvent).where(StoredEvent.stream == old))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ValidationError(f"A room called '{name}' already exists.", field="name") from None
    return room


def archive_room(user: User, room: Room) -> Room:
    """The creator archives ``room``: it stays readable, nobody posts to it any more."""
    check_readable(user, room)
    _creator_only(user, room, "archive")
    if room.archived_at is None:
        room.archived_at = utcnow()
        db.session.commit()
    return room


# Direct conversations ---------------------------------------------------------------------


def direct_name(a: User, b: User) -> str:
    low, high = sorted((a.id, b.id))
    return f"dm.{low}.{high}"


def direct_partner(user: User, username) -> User:
    """The user called ``username``, for a direct conversation with ``user``; NotFound for
    an unknown user or oneself."""
    name = username.strip() if isinstance(username, str) else ""
    other = accounts.find_user(name) if NAME_PATTERN.fullmatch(name) else None
    if other is None:
        raise NotFound(f"There is no user '{name}'.")
    if other.id == user.id:
        raise NotFound(
            "A direct conversation needs someone else: you cannot start one with yourself."
        )
    return other


def find_direct(user: User, other: User) -> Room | None:
    """The direct conversation of ``user`` and ``other``, if it was started."""
    return db.session.scalar(select(Room).where(Room.name_key == direct_name(user, other)))


def start_direct(user: User, other: User) -> tuple[Room, bool]:
    """Start (or reopen, for ``user``) the direct conversation with ``other``; (room, new)."""
    room = find_direct(user, other)
    if room is None:
        name = direct_name(user, other)
        room = Room(name=name, name_key=name, visibility=DIRECT, creator_id=user.id)
        db.session.add(room)
        try:
            db.session.flush()
            db.session.add_all([Member(room_id=room.id, user_id=u.id) for u in (user, other)])
            db.session.commit()
        except IntegrityError:  # started at the same moment by the other one
            db.session.rollback()
            room = find_direct(user, other)
            if room is None:
                raise
            return room, False
        announce_presence({user.id, other.id}, rooms=[room])
        room_became_visible(room, {user.id, other.id})
        return room, True
    member = db.session.get(Member, (room.id, user.id))
    if member.closed:
        member.closed = False
        db.session.commit()
        room_became_visible(room, {user.id})
    return room, False


def close_direct(user: User, room: Room) -> None:
    """Hide a direct conversation from ``user``'s room list until a new message arrives."""
    member = db.session.get(Member, (room.id, user.id))
    if member is None or not room.is_direct:
        raise no_room(room.name)
    member.closed = True
    member.last_read_id = last_message_id(room)
    db.session.commit()


def mark_read(user: User | int, room: Room | str) -> Member | None:
    """Everything in ``room`` so far counts as read for ``user``."""
    user_id = user if isinstance(user, int) else user.id
    if isinstance(room, str):
        room = db.session.scalar(select(Room).where(Room.name_key == room.lower()))
        if room is None:
            return None
    member = db.session.get(Member, (room.id, user_id))
    if member is None:
        return None
    before, last_id = member.last_read_id, last_message_id(room)
    member.last_read_id = last_id
    db.session.commit()
    if last_id > before:
        _tell_read(user_id, room, last_id)
    return member


def _tell_read(user_id: int, room: Room, last_id: int) -> None:
    """Every page of the user: nothing is unread in ``room`` up to ``last_id`` any more."""
    UNREAD.send(entry=RoomEntry(room, last_id=last_id), user_id=user_id)


def read_all(user: User) -> list[Room]:
    """Everything in every room of ``user`` counts as read ("Mark all read"); the rooms that
    had something unread, each told to every page of theirs."""
    newest = (
        select(Member.room_id, func.max(Message.id))
        .join(Message, Message.room_id == Member.room_id)
        .where(Member.user_id == user.id)
        .group_by(Member.room_id, Member.last_read_id)
        .having(func.max(Message.id) > Member.last_read_id)
    )
    behind = dict(db.session.execute(newest).all())
    # Never back: another tab may have read further meanwhile (SQLite's max() of two values
    # is PostgreSQL's greatest()).
    larger = func.max if db.engine.dialect.name == "sqlite" else func.greatest
    for room_id, last_id in behind.items():
        db.session.execute(
            update(Member)
            .where(Member.room_id == room_id, Member.user_id == user.id)
            .values(last_read_id=larger(Member.last_read_id, last_id))
        )
    db.session.commit()
    rooms = list(db.session.scalars(select(Room).where(Room.id.in_(behind))))
    for room in rooms:
        _tell_read(user.id, room, behind[room.id])
    return rooms


def read_what_is_shown(user: User) -> None:
    """The rooms ``user``'s tabs show right now count as read (called before counting unread).

    What a page showed live is read, yet the page says nothing per message: a room counts as
    read up to now whenever one of the user's sockets stops showing it to them (it is hidden,
    goes idle, switches rooms or closes; see set_status, enter_room, leave_room, disconnected)
    and, here, while one still shows it. So the counts any page renders already include what
    another tab shows at that moment (a room link's page is rendered before its tab's socket
    switches rooms), at no cost per message: one read of the presence store per count.
    Messages that reach a hidden or idle tab stay unread until the tab is looked at again.
    """
    try:
        shown = {c.room for c in presence.store().connections(user.id) if presence.showed(c)}
    except presence.STORE_ERRORS as error:
        presence.store_down("read marks", error)
        return
    for room in sorted(shown):
        mark_read(user, room)


def members(room: Room) -> list[tuple[User, str]]:
    """The room's members by name, each with their presence status."""
    query = select(Member).where(Member.room_id == room.id)
    users = sorted((m.user for m in db.session.scalars(query)), key=lambda u: u.username_key)
    try:
        statuses = presence.store().statuses([u.id for u in users])
    except presence.STORE_ERRORS as error:
        # The page still renders; its live member list catches up once the store is back.
        presence.store_down("member list", error)
        return [(u, presence.UNKNOWN) for u in users]
    return [(u, statuses.get(u.id, presence.OFFLINE)) for u in users]


def member_statuses(room: Room) -> list[dict]:
    """The room's members as data, by name: ``[{"user": name, "status": status}, ...]``."""
    return [{"user": user.username, "status": status} for user, status in members(room)]


# Messages ---------------------------------------------------------------------------------


def messages(room: Room) -> live_list.LiveList:
    """The room's live list of messages (not deleted): pages, catch-up and data-seq."""
    visible = select(Message).where(Message.room_id == room.id, Message.deleted_at.is_(None))
    return live_list.LiveList(visible, Message.id, room_stream(room))


def post_message(user: User, room: Room, body, client_id=None) -> tuple[Message, bool]:
    """Store a message and send it to the room; (message, False) for a resend of a stored one.

    Only members post, and not in an archived room; a room ``user`` may not see is NotFound.
    """
    check_readable(user, room)
    check_can_post(user, room)
    text = check_body(body)
    client_id = check_client_id(client_id)
    if client_id:
        earlier = _by_client_id(user, client_id)
        if earlier is not None:
            return earlier, False
    try:
        allowed = presence.store().allow(f"send:{user.id}", FLOOD_LIMIT, FLOOD_WINDOW)
    except presence.STORE_ERRORS as error:
        # Without the store flood control cannot count: store the message rather than lose it.
        presence.store_down("flood control", error)
        allowed = True
    if not allowed:
        wait = _flood_wait(user)
        raise SlowDown(
            f"Slow down: at most {FLOOD_LIMIT} messages in {FLOOD_WINDOW:g} seconds."
            f" Try again in {wait} second{'' if wait == 1 else 's'}.",
            retry_after=wait,
        )
    for attempt in range(2):
        message = Message(room_id=room.id, author_id=user.id, body=text, client_id=client_id)
        db.session.add(message)
        reopened = _reopen_direct(room)
        try:
            db.session.flush()  # the INSERT: the message has its id for its event
            event = MESSAGE.record(message=message)
            named = _record_mentions(message, room, user)
            # Read before the commit expires them: after it, each would be a query again.
            activity = {"room": room.name, "id": message.id, "author": user.username}
            room_id, room_key = room.id, room.name_key
            db.session.commit()
            break
        except IntegrityError:
            # The same resend arrived twice at once.
            db.session.rollback()
            earlier = _by_client_id(user, client_id) if client_id else None
            if earlier is not None:
                return earlier, False
            if attempt:
                raise
    outbox.publish(event)
    _tell_members(activity, room_id, room_key)
    if named:
        _tell_mentioned(message, room, named)
    if reopened:
        room_became_visible(room, reopened)
    return message, True


def _reopen_direct(room: Room) -> set[int]:
    """A new message in a direct conversation shows it again to a member who closed it (in
    the message's transaction); the ids of those members."""
    if not room.is_direct:
        return set()
    query = select(Member.user_id).where(Member.room_id == room.id, Member.closed.is_(True))
    closed = set(db.session.scalars(query))
    if closed:
        db.session.execute(update(Member).where(Member.room_id == room.id).values(closed=False))
    return closed


def _record_mentions(message: Message, room: Room, author: User) -> list[User]:
    """Store whom ``message`` mentions (in its transaction): the named users who may read the
    room, other than its author, at most ``CHAT_MENTIONS_MAX``. A name of someone who cannot
    read the room notifies nobody."""
    names = mentions(message.body)
    if not names:
        return []
    limit = current_app.config["CHAT_MENTIONS_MAX"]
    query = select(User).where(User.username_key.in_(sorted(names)[: limit * 2]))
    named = [
        other
        for other in db.session.scalars(query.order_by(User.username_key))
        if other.id != author.id and can_read_room(other, room)
    ][:limit]
    if named:
        db.session.execute(
            insert(Mention),
            [{"message_id": message.id, "user_id": u.id, "room_id": room.id} for u in named],
        )
    return named


def _tell_members(activity: dict, room_id: int, room_key: str) -> None:
    """After the commit: one ``chat:activity`` to every member of the room (one emit, data
    only), which the sockets showing the room do not get (they have ``chat:message``)."""
    member_ids = list(db.session.scalars(select(Member.user_id).where(Member.room_id == room_id)))
    ACTIVITY.send(activity=activity, room_key=room_key, member_ids=member_ids)


def _tell_mentioned(message: Message, room: Room, named: list[User]) -> None:
    """After the commit: to each user the message names, their own counts (``chat:unread``)
    and the mention itself (``chat:mention``)."""
    excerpt = " ".join(message.body.split())
    if len(excerpt) > EXCERPT_MAX:
        excerpt = excerpt[: EXCERPT_MAX - 1] + "…"
    for other in named:
        entry = room_entry(other.id, room)
        # Their counts changed (chat:unread), and why (chat:mention, for a notification).
        UNREAD.send(entry=entry, user_id=other.id)
        MENTION.send(message=message, entry=entry, user_id=other.id, excerpt=excerpt)


def mention_choices(room: Room, prefix, exclude: User | None = None) -> list[str]:
    """Usernames of the room's members that start with ``prefix`` (any case), by name, at most
    ``CHAT_MENTION_CHOICES_MAX``: what the composer offers after "@"."""
    if not isinstance(prefix, str) or not MENTION_PREFIX.fullmatch(prefix):
        return []
    pattern = prefix.lower().replace("_", "\\_") + "%"  # "_" is a wildcard of LIKE
    query = (
        select(User.username)
        .join(Member, Member.user_id == User.id)
        .where(Member.room_id == room.id, User.username_key.like(pattern, escape="\\"))
        .order_by(User.username_key)
        .limit(current_app.config["CHAT_MENTION_CHOICES_MAX"] + 1)
    )
    if exclude is not None:
        query = query.where(User.id != exclude.id)
    return list(db.session.scalars(query))[: current_app.config["CHAT_MENTION_CHOICES_MAX"]]


def _flood_wait(user: User) -> int:
    """Whole seconds until flood control lets ``user`` post again (the whole window if unknown)."""
    try:
        wait = presence.store().retry_after(f"send:{user.id}", FLOOD_LIMIT, FLOOD_WINDOW)
    except presence.STORE_ERRORS as error:
        presence.store_down("flood control", error)
        wait = FLOOD_WINDOW
    return max(1, math.ceil(wait))


def _by_client_id(user: User, client_id: str) -> Message | None:
    query = select(Message).where(Message.author_id == user.id, Message.client_id == client_id)
    return db.session.scalar(query)


def _own_message(user: User, message_id) -> Message:
    message = db.session.get(Message, check_message_id(message_id))
    if message is None or message.deleted_at is not None or not can_read_room(user, message.room):
        raise NotFound("There is no such message.")
    if message.author_id != user.id:
        raise ValidationError("You can only change your own messages.")
    if message.room.archived_at is not None:
        raise ValidationError(ARCHIVED)
    return message


def edit_message(user: User, message_id, body) -> Message:
    """Change the text of one's own message within 10 minutes of posting it."""
    text = check_body(body)
    message = _own_message(user, message_id)
    if utcnow() > message.editable_until:
        raise ValidationError("Messages can only be edited within 10 minutes of posting.")
    message.body = text
    message.edited_at = utcnow()
    db.session.flush()
    event = MESSAGE_EDITED.record(message=message)
    db.session.commit()
    outbox.publish(event)
    return message


def delete_message(user: User, message_id) -> None:
    """Delete one's own message; everyone's page drops it."""
    message = _own_message(user, message_id)
    message.deleted_at = utcnow()
    message.body = ""
    db.session.flush()
    event = MESSAGE_DELETED.record(message=message)
    db.session.commit()
    outbox.publish(event)


def typing(user: User, room: Room) -> bool:
    """Tell the room that ``user`` is typing; at most once a second per user and room."""
    check_readable(user, room)
    check_can_post(user, room)
    if not presence.store().throttle(f"typing:{user.id}:{room.id}", TYPING_INTERVAL):
        return False
    TYPING.send(room=room, user=user)
    return True


# Presence ---------------------------------------------------------------------------------


@presence.on_stop_showing
def read_when_hidden(connection: presence.Connection) -> None:
    """A tab stopped showing its room (hidden, idle, closed): what it showed is read."""
    mark_read(connection.user_id, connection.room)


def enter_room(sid: str, user: User, room: Room) -> str | None:
    """This socket now shows ``room`` (one room per socket); returns the room it left, if any.

    What the socket showed of the room it left counts as read.
    """
    try:
        before = presence.store().update(sid, room=room.name_key)
    except presence.STORE_ERRORS as error:
        # The socket still joins the room and gets its events; only the bookkeeping is missed.
        presence.store_down("enter room", error)
        return None
    previous = before.room if before else None
    if previous and previous != room.name_key:
        if presence.showed(before):
            mark_read(user, previous)
        return previous
    return None


def leave_room(sid: str, user: User, room: Room) -> None:
    """This socket stops showing ``room``; what it showed counts as read."""
    try:
        connection = presence.store().get(sid)
        if connection and connection.room == room.name_key:
            presence.store().update(sid, room=None)
    except presence.STORE_ERRORS as error:
        presence.store_down("leave room", error)
        return
    if presence.showed(connection) and connection.room == room.name_key:
        mark_read(user, room)


@presence.on_change
def announce_presence(user_ids: set[int], rooms: list[Room] | None = None) -> None:
    """Send each user's current status to the rooms they are members of (or to ``rooms``)."""
    try:
        statuses = presence.store().statuses(user_ids)
    except presence.STORE_ERRORS as error:
        # Nothing to announce that is known; the heartbeat announces changes once it is back.
        presence.store_down("announcement", error)
        return
    for user_id in user_ids:
        user = db.session.get(User, user_id)
        if user is None:
            continue
        status = statuses.get(user_id, presence.OFFLINE)
        targets = rooms
        if targets is None:
            query = select(Room).join(Member, Member.room_id == Room.id)
            targets = list(db.session.scalars(query.where(Member.user_id == user_id)))
        if targets:
            # One emit to every room's channel: rendered once, and a socket gets it once.
            PRESENCE.send(rooms=targets, user=user, status=status)
