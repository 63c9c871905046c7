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
