"""Table totals kept in step with the rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 20:40:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "table_totals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # Start from the rows already stored; from now on every insert and delete adjusts it.
    op.execute(
        "INSERT INTO table_totals (id, count, total) "
        "SELECT 1, COUNT(id), COALESCE(SUM(sum), 0) FROM table_rows"
    )


def downgrade():
    op.drop_table("table_totals")
