"""Mentions: which messages name which user as @username, for the sidebar's mention counts.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 01:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "mentions",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_id", "user_id"),
    )
    # A user's unread mentions of one room: those after the member's last read message.
    op.create_index(
        "ix_mentions_user_id_room_id_message_id",
        "mentions",
        ["user_id", "room_id", "message_id"],
    )


def downgrade():
    op.drop_index("ix_mentions_user_id_room_id_message_id", table_name="mentions")
    op.drop_table("mentions")
