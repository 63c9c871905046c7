"""gunicorn.conf.py refuses settings that cannot work; dead dependencies never hang a worker."""

import concurrent.futures
import os
import socket
import subprocess
import time

import pytest
import requests

from .server import BIN, ROOT, LiveServer, free_port

pytestmark = pytest.mark.e2e


def gunicorn(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WEB_CONCURRENCY", "MESSAGE_QUEUE_URL", "DATABASE_URL", "BIND")
    }
    return subprocess.run(
        [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", *args, "wsgi:app"],
        cwd=ROOT,
        env={**base, "SECRET_KEY": "x", "PORT": str(free_port()), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "env, args, message",
    [
        ({"WEB_CONCURRENCY": "2"}, (), "2 workers need MESSAGE_QUEUE_URL"),
        ({"GUNICORN_CMD_ARGS": "--workers 3"}, (), "3 workers need MESSAGE_QUEUE_URL"),
        ({"WEB_CONCURRENCY": "0"}, (), "WEB_CONCURRENCY must be 1 or more"),
        ({"WORKER_CONNECTIONS": "lots"}, (), "WORKER_CONNECTIONS='lots' is not a whole number"),
        ({"WORKER_CONNECTIONS": "50"}, (), "WORKER_CONNECTIONS must be at least 100"),
        ({"MESSAGE_QUEUE_URL": "kafka://q:9092"}, (), "MESSAGE_QUEUE_URL must start with one of"),
        ({"DATABASE_URL": "sqlite://"}, (), "in-memory SQLite database"),
        ({"GUNICORN_CMD_ARGS": "--preload"}, (), "--preload must stay off"),
        ({}, ("-k", "gevent"), "the worker class must be gevent-websocket's"),
        (
            {"WEB_CONCURRENCY": "2", "MESSAGE_QUEUE_URL": "amqp://guest:guest@127.0.0.1:5672//"},
            (),
            "2 workers need a shared presence store: set PRESENCE_URL",
        ),
        (
            {
                "WEB_CONCURRENCY": "2",
                "MESSAGE_QUEUE_URL": "redis://127.0.0.1:6379/0",
                "PRESENCE_URL": "amqp://guest:guest@127.0.0.1:5672//",
            },
            (),
            "need a shared presence",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused_with_a_reason(env, args, message):
    result = gunicorn(env, *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Booting worker" not in result.stderr  # refused before any worker started


def test_a_port_in_use_is_refused_rather_than_shared():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = gunicorn({"PORT": str(taken.getsockname()[1])})
    assert result.returncode == 1
    assert "cannot listen on 127.0.0.1:" in result.stderr


def test_dead_database_and_queue_answer_503_without_blocking_the_worker(tmp_path, black_hole):
    server = LiveServer(
        {
            "SECRET_KEY": "x",
            "DATABASE_URL": f"postgresql+psycopg://postgres@{black_hole}/app",
            "MESSAGE_QUEUE_URL": f"redis://{black_hole}/0",
            "DB_CONNECT_TIMEOUT": "2",
        },
        log_path=tmp_path / "gunicorn.log",
    ).start(timeout=60, healthy=False)
    try:
        # Four probes at once on one worker: each waits for its timeouts, side by side.
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(
                pool.map(lambda _: requests.get(server.url + "/healthz", timeout=30), range(4))
            )
        elapsed = time.monotonic() - started
        assert [a.status_code for a in answers] == [503] * 4
        assert answers[0].json() == {"db": "down", "queue": "down"}
        print(f"\n4 concurrent /healthz with a dead database and queue: {elapsed:.1f} s")
        assert elapsed < 12, "the probes waited for each other: the worker was blocked"
    finally:
        server.stop()


def test_command_line_gives_up_quickly_on_a_dead_queue(tmp_path, black_hole):
    # RabbitMQ that never answers: kombu's own defaults would retry for ever.
    server = LiveServer(
        {
            "SECRET_KEY": "x",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
            "MESSAGE_QUEUE_URL": f"amqp://guest:guest@{black_hole}//",
        }
    )
    server.migrate()
    started = time.monotonic()
    result = server.flask("table", "add-row", "2", "3", timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "Added row 1: 2 + 3 = 5" in result.stdout  # stored; browsers catch up from the db
    print(f"\n`flask table add-row` with a dead queue: {elapsed:.1f} s")
    assert elapsed < 30, f"the command waited {elapsed:.1f} s on the dead queue"
