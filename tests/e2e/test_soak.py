"""The soak run's short version: 200 clients for 30 seconds on two workers, Redis and PostgreSQL.

The same driver as `make soak` (bench/soak.py with bench/soak.mjs), with fewer clients so that
it stays near a minute on a busy two-core machine: registering, connecting and closing 1,000
clients alone would take longer than the load. What it proves is the same: every acknowledged
row and chat message reaches every page open while it was added exactly once (over the socket or
through the page's catch-up after a reload or reconnect), nothing fails, no worker holds more
descriptors at the end than after the warm-up, and every connection and presence entry is gone
once the clients close. Memory is reported; within 30 seconds its growth is mostly warm-up
(caches, allocator arenas), so only a loose bound is asserted here and the 10% criterion is
left to the 10-minute run.
"""

import json
import shutil
import subprocess
import sys

import pytest

from tests.services import require

from .server import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLIENTS = 200
RSS_GROWTH_BOUND = 0.25


def test_soak_for_30_seconds_loses_and_duplicates_nothing(tmp_path):
    redis_url = require("TEST_REDIS_URL")
    postgres_url = require("TEST_POSTGRES_URL")
    if not shutil.which("node") or not (ROOT / "node_modules" / "socket.io-client").is_dir():
        pytest.skip("the load generator needs node and node_modules (make install)")
    out = tmp_path / "soak.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "soak.py"),
            "--clients",
            str(CLIENTS),
            "--users",
            "20",
            "--rooms",
            "4",
            "--duration",
            "30",
            "--warmup",
            "10",
            "--rows-per-s",
            "2",
            "--messages-per-s",
            "2",
            "--reloads-per-s",
            "1",
            "--rss-growth-limit",
            str(RSS_GROWTH_BOUND),
            "--progress-every",
            "10",
            "--redis-url",
            redis_url,
            "--postgres-url",
            postgres_url,
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    report = json.loads(out.read_text())

    assert report["setup"]["failed"] == 0
    assert report["deliveries"]["pages_reloaded"] > 0  # the catch-up after a reload was used
    for kind in ("rows", "messages"):
        sent = report["generator"][kind]
        assert sent["sent"] > 0 and sent["failed"] == 0 and sent["acked"] == sent["sent"]
        assert report["database"][kind] == sent["acked"]
        deliveries = report["deliveries"][kind]
        assert deliveries["expected"] > 0
        assert deliveries["received"] == deliveries["expected"], deliveries
        assert deliveries["lost"] == 0 and deliveries["duplicated"] == 0, deliveries
        assert deliveries["unknown"] == 0, deliveries
    for worker, memory in report["memory"].items():
        assert memory["fd_growth"] <= 20, (worker, memory)
        assert memory["rss_growth"] < RSS_GROWTH_BOUND, (worker, memory)
    closing = report["after_close"]
    assert closing["closed"] == CLIENTS
    assert not any(closing["client_connections_left"].values()), closing
    assert closing["presence_entries_left"] == 0, closing
    assert report["server_log"]["tracebacks"] == 0
    assert not report["server_log"]["responses"].get("5xx")
