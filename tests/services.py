"""Real services for tests: URLs from the environment, skipped with a reason when absent.

`.ci/run` sets TEST_REDIS_URL, TEST_AMQP_URL and TEST_POSTGRES_URL and CI=true, so there a
missing service fails the test instead of skipping it.
"""

import os
import uuid

import pytest

SERVICES = {
    "TEST_REDIS_URL": "Redis (e.g. redis://127.0.0.1:6379/0)",
    "TEST_AMQP_URL": "RabbitMQ (e.g. amqp://guest:guest@127.0.0.1:5672//)",
    "TEST_POSTGRES_URL": "PostgreSQL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)",
}


def require(variable: str) -> str:
    """The service URL in ``variable``; skip (or, in CI, fail) when it is not set."""
    url = os.environ.get(variable)
    if url:
        return url
    message = f"{variable} is not set: this test needs {SERVICES[variable]}"
    if os.environ.get("CI"):
        pytest.fail(message + " and CI must run it")
    pytest.skip(message)


def unique_channel() -> str:
    """A Socket.IO queue channel of its own, so concurrent test runs on one broker never mix."""
    return f"test-{uuid.uuid4().hex[:12]}"


def fresh_postgres_database(base_url: str) -> tuple[str, callable]:
    """Create an empty database next to ``base_url``'s; return its URL and a dropper."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url.set(database=name).render_as_string(hide_password=False), drop
