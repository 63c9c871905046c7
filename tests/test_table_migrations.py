"""Migration 0006 on SQLite and PostgreSQL, over a database that already has rows: ids of table
rows and chat messages never come back, and rows get a unique, optional client id."""

import flask_migrate
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from webapp import create_app
from webapp.extensions import db

from .conftest import make_config

ROW = "INSERT INTO table_rows (a, b, sum, created_at) VALUES (:a, 0, :a, CURRENT_TIMESTAMP)"
MESSAGE = (
    "INSERT INTO messages (room_id, author_id, body, created_at) "
    "VALUES ((SELECT id FROM rooms WHERE name_key = 'general'), "
    "(SELECT id FROM users WHERE username_key = 'ann'), :body, CURRENT_TIMESTAMP)"
)


def add_row(connection, a: int) -> int:
    connection.execute(text(ROW), {"a": a})
    return connection.execute(text("SELECT MAX(id) FROM table_rows")).scalar()


def add_message(connection, body: str) -> int:
    connection.execute(text(MESSAGE), {"body": body})
    return connection.execute(text("SELECT MAX(id) FROM messages")).scalar()


def fill_before_0006(connection) -> None:
    """Rows and messages as a database at 0005 has them, the newest of each deleted."""
    for a in (10, 20, 30, 40):
        add_row(connection, a)
    connection.execute(text("DELETE FROM table_rows WHERE a = 40"))  # id 4: unknowable later
    connection.execute(
        text(
            "INSERT INTO users (username, username_key, password_hash, created_at) "
            "VALUES ('ann', 'ann', 'x', CURRENT_TIMESTAMP)"
        )
    )
    for body in ("one", "two"):
        add_message(connection, body)
    connection.commit()


@pytest.fixture
def migrated_app(empty_database_url):
    app = create_app(make_config(empty_database_url))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_0006_keeps_the_data_and_no_id_comes_back(migrated_app):
    flask_migrate.upgrade(revision="0005")
    with db.engine.connect() as connection:
        fill_before_0006(connection)
    flask_migrate.upgrade(revision="0006")

    with db.engine.connect() as connection:
        rows = connection.execute(text("SELECT id, a, sum, client_id FROM table_rows ORDER BY id"))
        assert rows.all() == [(1, 10, 10, None), (2, 20, 20, None), (3, 30, 30, None)]
        assert connection.execute(text("SELECT id, body FROM messages ORDER BY id")).all() == [
            (1, "one"),
            (2, "two"),
        ]
        # Delete the newest, add another: the new one gets a greater id, on both tables. (Id 4,
        # deleted before the migration, is remembered by PostgreSQL only: see the migration.)
        connection.execute(text("DELETE FROM table_rows WHERE id = 3"))
        first = add_row(connection, 50)
        assert first > 3
        connection.execute(text("DELETE FROM table_rows WHERE id = :id"), {"id": first})
        assert add_row(connection, 60) == first + 1
        connection.execute(text("DELETE FROM messages WHERE id = 2"))
        assert add_message(connection, "three") == 3
        connection.commit()

        # The client id is optional and unique.
        connection.execute(text("UPDATE table_rows SET client_id = 'c-1' WHERE id = 1"))
        connection.execute(text("UPDATE table_rows SET client_id = NULL WHERE id = 2"))
        connection.commit()
        with pytest.raises(IntegrityError):
            connection.execute(text("UPDATE table_rows SET client_id = 'c-1' WHERE id = 2"))
        connection.rollback()


def test_head_matches_the_models_and_0006_downgrades(migrated_app):
    flask_migrate.upgrade()
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"render_as_batch": True})
        assert compare_metadata(context, db.metadata) == []
        if connection.dialect.name == "sqlite":
            # compare_metadata does not see AUTOINCREMENT: a later rebuild of either table
            # without it would quietly bring id reuse back.
            for table in ("table_rows", "messages"):
                sql = connection.execute(
                    text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"),
                    {"name": table},
                ).scalar()
                assert "AUTOINCREMENT" in sql, sql
        add_row(connection, 7)
        connection.commit()

    flask_migrate.downgrade(revision="0005")
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT a FROM table_rows")).scalars().all() == [7]
    flask_migrate.upgrade()
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT id, a FROM table_rows")).all() == [(1, 7)]
