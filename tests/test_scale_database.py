"""The database layer for several workers: engine options, migrations on SQLite and PostgreSQL.

`make test` runs this on SQLite; `make test-postgres` (TEST_DATABASE=postgres) runs the unit
tests again on a fresh PostgreSQL database.
"""

import os

import pytest
from sqlalchemy import inspect, text

from webapp.config import engine_options
from webapp.dbpool import ENGINE_OPTIONS as POOL_GUARDS
from webapp.extensions import db


def test_the_tests_run_on_the_database_that_was_asked_for(app):
    wanted = "postgresql" if os.environ.get("TEST_DATABASE") == "postgres" else "sqlite"
    with app.app_context():
        assert db.engine.dialect.name == wanted
        if wanted == "postgresql":
            assert db.engine.dialect.driver == "psycopg"


def test_migrations_go_down_and_up_again(app, runner):
    result = runner.invoke(args=["db", "downgrade", "base"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert "table_rows" not in inspect(db.engine).get_table_names()
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert "table_rows" in inspect(db.engine).get_table_names()
    result = runner.invoke(args=["table", "add-row", "1", "2"])
    assert result.exit_code == 0 and "Added row 1: 1 + 2 = 3" in result.output


def test_postgres_sessions_carry_the_statement_timeout(app):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("PostgreSQL only (TEST_DATABASE=postgres)")
        assert db.session.execute(text("SHOW statement_timeout")).scalar() == "30s"
        name = db.session.execute(text("SELECT current_setting('application_name')")).scalar()
        assert name == "webapp"


def test_sqlite_engine_options_are_left_alone():
    # Only the pool's own ping and reset (webapp/dbpool.py), as for every engine.
    assert engine_options("sqlite:////tmp/app.db") == POOL_GUARDS
    assert engine_options("sqlite://") == POOL_GUARDS


def test_postgres_engine_options_come_from_the_environment(monkeypatch):
    defaults = engine_options("postgresql+psycopg://db/app")
    assert {name: defaults[name] for name in POOL_GUARDS} == POOL_GUARDS
    assert (defaults["pool_size"], defaults["max_overflow"], defaults["pool_timeout"]) == (
        5,
        10,
        10,
    )
    assert defaults["connect_args"]["connect_timeout"] == 3
    assert defaults["connect_args"]["options"] == "-c statement_timeout=30000"

    for name, value in {
        "DB_POOL_SIZE": "20",
        "DB_MAX_OVERFLOW": "0",
        "DB_POOL_TIMEOUT": "2.5",
        "DB_CONNECT_TIMEOUT": "7",
        "DB_STATEMENT_TIMEOUT": "0.5",
    }.items():
        monkeypatch.setenv(name, value)
    tuned = engine_options("postgresql+psycopg://db/app")
    assert (tuned["pool_size"], tuned["max_overflow"], tuned["pool_timeout"]) == (20, 0, 2.5)
    assert tuned["connect_args"]["connect_timeout"] == 7
    assert tuned["connect_args"]["options"] == "-c statement_timeout=500"

    monkeypatch.setenv("DB_POOL_SIZE", "many")
    with pytest.raises(RuntimeError, match="DB_POOL_SIZE='many' is not a number"):
        engine_options("postgresql+psycopg://db/app")
