"""Row and message ids are never handed out twice; table rows keep the client id of their POST.

Clients catch up with ``?after=ID``, so an id must never come back. SQLite without
AUTOINCREMENT gives a new row the greatest id in the table plus one: delete the newest row, add
another, and the new row takes the deleted row's id, which a client that saw it skips. Both
tables are rebuilt with AUTOINCREMENT (SQLite remembers the greatest id ever used in
``sqlite_sequence``), seeded with the greatest id they hold now. PostgreSQL's sequences never go
back, so nothing changes there.

What cannot be repaired: ids of newest rows deleted before this migration are not recorded
anywhere, so each id above the greatest one left may be handed out once more. Pages recover by
themselves (after a reconnect a page re-reads the whole window it shows); a script that kept
such an id as its cursor should catch up from an id it still sees on a page.

Later batch migrations of these tables on SQLite must pass
``table_kwargs={"sqlite_autoincrement": True}``: the option is not reflected, and a rebuild
without it drops the table's entry in ``sqlite_sequence`` and brings the reuse back.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 10:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CURSOR_TABLES = ("table_rows", "messages")


def _rebuild_options(autoincrement: bool) -> dict:
    # "always": adding AUTOINCREMENT alone is no change alembic would rebuild a table for.
    sqlite = op.get_bind().dialect.name == "sqlite"
    return {
        "recreate": "always" if sqlite else "auto",
        "table_kwargs": {"sqlite_autoincrement": autoincrement},
    }


def upgrade():
    with op.batch_alter_table("table_rows", **_rebuild_options(True)) as batch_op:
        batch_op.add_column(sa.Column("client_id", sa.String(length=36), nullable=True))
        batch_op.create_unique_constraint("uq_table_rows_client_id", ["client_id"])
    with op.batch_alter_table("messages", **_rebuild_options(True)):
        pass
    if op.get_bind().dialect.name == "sqlite":
        for table in CURSOR_TABLES:
            # The copy has set it already; say so explicitly rather than rely on that.
            op.execute(f"DELETE FROM sqlite_sequence WHERE name = '{table}'")
            op.execute(
                "INSERT INTO sqlite_sequence (name, seq) "
                f"SELECT '{table}', COALESCE(MAX(id), 0) FROM {table}"
            )


def downgrade():
    with op.batch_alter_table("messages", **_rebuild_options(False)):
        pass
    with op.batch_alter_table("table_rows", **_rebuild_options(False)) as batch_op:
        batch_op.drop_constraint("uq_table_rows_client_id", type_="unique")
        batch_op.drop_column("client_id")
