"""Greenlets killed or timed out in the middle of a request (a worker stopping after
GRACEFUL_TIMEOUT kills what still runs; a gevent.Timeout) end as killed, and the database pool
keeps serving: the next requests get an idle connection, never the one left mid-query.

The kills run in a monkey-patched process of their own (tests/e2e/greenlet_kills.py), as in a
gunicorn gevent worker, on SQLite and on PostgreSQL. On PostgreSQL a proxy holds the traffic so
that a request is caught in the pool's ping; before the pool's own ping (webapp/dbpool.py) that
request answered 500 instead of ending, and a storm of kills left greenlets running on.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .server import BIN, ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCRIPT = Path(__file__).with_name("greenlet_kills.py")


def kills(database_url: str) -> dict:
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "greenlet-kills"}
    subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    done = subprocess.run(
        [sys.executable, str(SCRIPT), database_url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


EVERYWHERE = [
    "kill with a transaction open",
    "timeout with a transaction open",
    "returned inside a transaction",
    "storm",
]
POSTGRES_ONLY = [  # SQLite's calls never yield to another greenlet, so nothing stops them midway
    "kill during a query",
    "timeout during a query",
    "kill during the ping",
    "timeout during the ping",
    "returned while running a query",
]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_killed_greenlets_end_and_the_pool_serves_the_next_requests(database, tmp_path, request):
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'kills.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    results = kills(url)
    print(json.dumps(results, indent=1))
    expected = EVERYWHERE + (POSTGRES_ONLY if database == "postgresql" else [])
    assert sorted(results) == sorted(expected)
    for name, result in results.items():
        # The requests after it work, on a pool with nothing left checked out, and what the
        # killed greenlet wrote without committing is not stored.
        assert result["statuses"] == [200, 200, 200, 201], (name, result)
        assert result["checked_out"] == 0, (name, result)
        assert not result["uncommitted_row_stored"], (name, result)
        if name.startswith(("kill", "timeout")):
            # It ended as killed or timed out, instead of answering (500) and going on.
            assert result["ended"] == (
                "Timeout" if name.startswith("timeout") else "GreenletExit"
            ), (
                name,
                result,
            )
        if "ping" in name:
            assert result["ping_was_held"], "the greenlet was caught in the ping"
    storm = results["storm"]
    assert storm["interrupted"] > 0 and storm["still_running"] == 0, storm
    # A transaction left open is rolled back and the connection kept; one still running a
    # query is closed, and the next checkout gets an idle one.
    assert results["returned inside a transaction"]["reused"]
    assert results["returned inside a transaction"]["handed_out"] == "IDLE"
    if database == "postgresql":
        busy = results["returned while running a query"]
        assert busy["returned"] == "ACTIVE" and not busy["reused"] and busy["handed_out"] == "IDLE"
