"""The outbox: each change's event, numbered per stream, stored in the change's transaction.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 12:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    # Streams start at their first event after this migration: what came before has no
    # number, and clients catch up on it by id as they always did.
    op.create_table(
        "event_streams",
        sa.Column("stream", sa.String(length=100), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("stream"),
    )
    op.create_table(
        "events",
        sa.Column("stream", sa.String(length=100), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("target", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("relayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("stream", "seq"),
    )
    op.create_index("ix_events_created_at", "events", ["created_at"], unique=False)


def downgrade():
    op.drop_index("ix_events_created_at", table_name="events")
    op.drop_table("events")
    op.drop_table("event_streams")
