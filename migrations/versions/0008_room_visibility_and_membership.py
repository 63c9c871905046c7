"""Membership: rooms are public, private or direct, have a creator and may be archived; every
account is a member of `general`; a member may close a direct conversation.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 01:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Words of the chat's routes (/chat/rooms, /chat/dm/..., /chat/search, ...): no room may be
# called so any more; a room that was is renamed with this suffix.
ROUTE_WORDS = ("rooms", "dm", "search", "sidebar", "attachments")
SUFFIX = "-room"


def upgrade():
    # Plain ADD COLUMNs, no batch rebuild: on SQLite a rebuilt `rooms` would be dropped, and
    # its messages and members with it (ON DELETE CASCADE).
    op.add_column(
        "rooms",
        sa.Column("visibility", sa.String(length=8), nullable=False, server_default="public"),
    )
    # No foreign key: SQLite cannot add one without rebuilding the table (see above), and
    # accounts are never deleted.
    op.add_column("rooms", sa.Column("creator_id", sa.Integer(), nullable=True))
    op.add_column("rooms", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "room_members",
        sa.Column("closed", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    words = ", ".join(f"'{word}'" for word in ROUTE_WORDS)
    op.execute(
        f"UPDATE rooms SET name = name || '{SUFFIX}', name_key = name_key || '{SUFFIX}'"
        f" WHERE name_key IN ({words})"
    )
    # Member rows meant "has opened the room"; from now on they mean membership. Those who
    # opened a room stay its members, and every account becomes a member of general, with its
    # history read (it was never unread to them before either).
    op.execute(
        "INSERT INTO room_members (room_id, user_id, last_read_id, joined_at, closed)"
        " SELECT r.id, u.id,"
        " (SELECT COALESCE(MAX(m.id), 0) FROM messages m WHERE m.room_id = r.id),"
        " CURRENT_TIMESTAMP, false"
        " FROM users u, rooms r WHERE r.name_key = 'general' AND NOT EXISTS"
        " (SELECT 1 FROM room_members rm WHERE rm.room_id = r.id AND rm.user_id = u.id)"
    )


def downgrade():
    # Direct conversations and private rooms have no place in the earlier schema.
    op.execute("DELETE FROM rooms WHERE visibility <> 'public'")
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        # The batch rebuild drops `rooms`: without this its messages and members would go too.
        op.execute("PRAGMA foreign_keys=OFF")
    with op.batch_alter_table("room_members", schema=None) as batch_op:
        batch_op.drop_column("closed")
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.drop_column("archived_at")
        batch_op.drop_column("creator_id")
        batch_op.drop_column("visibility")
    if sqlite:
        op.execute("PRAGMA foreign_keys=ON")
