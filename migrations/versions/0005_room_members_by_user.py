"""Index of room memberships by user: every chat page lists the viewer's rooms.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 10:00:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    # The primary key (room_id, user_id) finds a room's members, not a user's rooms.
    op.create_index("ix_room_members_user_id", "room_members", ["user_id"])


def downgrade():
    op.drop_index("ix_room_members_user_id", table_name="room_members")
