"""Migration 0002 on SQLite and PostgreSQL: it builds what the models describe, and `general`."""

import flask_migrate
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from webapp import create_app
from webapp.extensions import db

from .conftest import make_config


def test_upgrade_matches_the_models_and_downgrades(empty_database_url):
    app = create_app(make_config(empty_database_url))
    with app.app_context():
        flask_migrate.upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"render_as_batch": True})
            assert compare_metadata(context, db.metadata) == []
            assert connection.execute(text("SELECT name FROM rooms")).scalars().all() == ["general"]
            connection.execute(
                text(
                    "INSERT INTO table_rows (a, b, sum, created_at) "
                    "VALUES (1, 2, 3, CURRENT_TIMESTAMP)"
                )
            )
            connection.commit()
        flask_migrate.downgrade(revision="0001")
        flask_migrate.upgrade()
        with db.engine.connect() as connection:
            # The rebuilt table kept its rows; they were added by no one.
            assert connection.execute(text("SELECT sum, user_id FROM table_rows")).all() == [
                (3, None)
            ]
        db.session.remove()
        db.engine.dispose()


def test_0008_makes_every_account_a_member_of_general_and_keeps_members(empty_database_url):
    """Member rows meant "has opened the room": those stay members, everyone joins general
    (its history read), and a room named like a route word gets a new name."""
    app = create_app(make_config(empty_database_url))
    with app.app_context():
        flask_migrate.upgrade(revision="0007")
        with db.engine.connect() as connection:
            for name in ("alice", "bob"):
                connection.execute(
                    text(
                        "INSERT INTO users (username, username_key, password_hash, created_at)"
                        " VALUES (:n, :n, 'x', CURRENT_TIMESTAMP)"
                    ),
                    {"n": name},
                )
            for name in ("design", "search"):
                connection.execute(
                    text(
                        "INSERT INTO rooms (name, name_key, created_at)"
                        " VALUES (:n, :n, CURRENT_TIMESTAMP)"
                    ),
                    {"n": name},
                )
            ids = dict(connection.execute(text("SELECT name, id FROM rooms")).all())
            users = dict(connection.execute(text("SELECT username, id FROM users")).all())
            connection.execute(
                text(
                    "INSERT INTO messages (room_id, author_id, body, created_at)"
                    " VALUES (:r, :u, 'hi', CURRENT_TIMESTAMP)"
                ),
                {"r": ids["general"], "u": users["alice"]},
            )
            # bob had opened design and general.
            for room in ("design", "general"):
                connection.execute(
                    text(
                        "INSERT INTO room_members (room_id, user_id, last_read_id, joined_at)"
                        " VALUES (:r, :u, 0, CURRENT_TIMESTAMP)"
                    ),
                    {"r": ids[room], "u": users["bob"]},
                )
            connection.commit()
        flask_migrate.upgrade()
        with db.engine.connect() as connection:
            members = connection.execute(
                text(
                    "SELECT r.name, u.username, m.last_read_id FROM room_members m"
                    " JOIN rooms r ON r.id = m.room_id JOIN users u ON u.id = m.user_id"
                    " ORDER BY r.name, u.username"
                )
            ).all()
            assert [tuple(m) for m in members] == [
                ("design", "bob", 0),
                ("general", "alice", 1),  # joined now: what was there is read
                ("general", "bob", 0),  # a member already: unchanged
            ]
            rooms = connection.execute(text("SELECT name, visibility FROM rooms ORDER BY name"))
            assert [tuple(r) for r in rooms] == [
                ("design", "public"),
                ("general", "public"),
                ("search-room", "public"),
            ]
        db.session.remove()
        db.engine.dispose()
