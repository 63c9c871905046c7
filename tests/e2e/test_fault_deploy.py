"""Deploys under a steady stream of writes: gunicorn's graceful reload (SIGHUP), then SIGTERM to
the master with the next release started on the same port. Requests in flight finish, every
acknowledged row and message is stored and shown once on every tab, and the tabs reconnect to
the new workers and catch up."""

import json
import os
import signal
import threading
import time

import pytest

from .clients import BrowserSession, CatchUpClient, logged_in
from .faults import Writers, accounted, children, slow_post, stored, wait, wait_healthy
from .server import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WATCHERS = 24
GRACE = 5  # GRACEFUL_TIMEOUT: how long old workers keep their websockets on a deploy
SLOW = 3  # uploads that trickle in over 2 s, across the signal


def slow_uploads(url: str, session: BrowserSession, first_a: int, results: list) -> list:
    """Start SLOW row POSTs whose bodies take 2 s to arrive; their answers go to ``results``."""

    def upload(a: int) -> None:
        status, body = slow_post(url, "/table/rows", {"a": a, "b": 0}, session, 2.0)
        row_id = json.loads(body)["id"] if status == 201 else None
        results.append((a, status, row_id))

    threads = [threading.Thread(target=upload, args=(first_a + i,)) for i in range(SLOW)]
    for thread in threads:
        thread.start()
    return threads


def test_reload_and_restart_under_writes_lose_nothing_acknowledged(cluster, postgres_url, tmp_path):
    web = cluster("redis", GRACEFUL_TIMEOUT=str(GRACE)).start_host(workers=2)
    authors = [logged_in(web.url, f"author{i}") for i in range(5)]
    tabs = [CatchUpClient(s, room="general", username=f"author{i}") for i, s in enumerate(authors)]
    tabs += [CatchUpClient(BrowserSession(web.url)) for _ in range(WATCHERS)]
    for tab in tabs:
        tab.connect(timeout=30)
    writers = Writers(web.url, authors, rate=5, row_threads=3).start()
    figures = []
    slow: list[tuple[int, int | None, int | None]] = []  # (a, status, id) of slow uploads
    uploads: list[threading.Thread] = []
    new: LiveServer | None = None
    try:
        # Graceful reload: new workers start, old ones finish their requests and then go.
        time.sleep(2)
        old_workers = children(web.process.pid)
        uploads = slow_uploads(web.url, writers.anon, 10**6, slow)
        time.sleep(0.7)  # their headers are in, their bodies trickling
        os.kill(web.process.pid, signal.SIGHUP)
        signalled = time.monotonic()
        wait(
            lambda: (
                not (children(web.process.pid) & old_workers)
                and len(children(web.process.pid)) == 2
            ),
            GRACE + 30,
            "the old workers are gone",
        )
        replaced = time.monotonic() - signalled
        for tab in tabs:
            tab.wait(
                lambda t=tab: t.disconnects >= 1 and t.outages,
                60,
                "reconnected to a new worker and caught up",
            )
        back = time.monotonic() - signalled
        figures.append(("SIGHUP", signalled, replaced, back))

        # A release: SIGTERM to the old master, the new one started at once on the same port.
        time.sleep(2)
        old = web.process
        uploads += slow_uploads(web.url, writers.anon, 2 * 10**6, slow)
        time.sleep(0.7)
        os.killpg(old.pid, signal.SIGTERM)
        signalled = time.monotonic()
        # The old workers keep the port until they are gone (gunicorn.conf.py refuses to share
        # it), so the next release starts once the old master has exited, as a service manager
        # would restart it.
        old.wait(GRACE + 30)
        stopped = time.monotonic() - signalled
        new = LiveServer(
            dict(web.env), workers=2, port=web.port, log_path=tmp_path / "release2.log"
        )
        new.start(timeout=30)
        assert new.process.poll() is None
        wait(lambda: len(children(new.process.pid)) == 2, 30, "the new release's workers run")
        for tab in tabs:
            tab.wait(
                lambda t=tab: t.disconnects >= 2 and len(t.outages) >= 2,
                60,
                "reconnected to the new release and caught up",
            )
        back = time.monotonic() - signalled
        figures.append(("SIGTERM + start", signalled, stopped, back))
        time.sleep(2)
    except BaseException:
        if new is not None:
            new.stop()
        raise
    finally:
        writers.finish()
        for thread in uploads:
            thread.join(30)
    for a, status, row_id in slow:  # accounted for like the other row POSTs
        writers.row_attempts[a] = row_id
        writers.row_statuses.append(status)
    print(f"\nslow uploads in flight at the signals: {sorted(map(str, (s for _, s, _ in slow)))}")
    assert [status for _, status, _ in slow] == [201] * 2 * SLOW
    try:
        wait_healthy(new.url, 30)
        check(writers, tabs, postgres_url, figures)
    finally:
        for tab in tabs:
            tab.close()
        new.stop()


def check(writers: Writers, tabs: list[CatchUpClient], postgres_url: str, figures) -> None:
    db_rows, _db_messages = stored(postgres_url)
    acked_rows, failed, failed_but_stored, acked_messages, unacked_messages = accounted(
        writers, db_rows
    )
    for tab in tabs:
        tab.wait(
            lambda t=tab: (
                acked_rows | failed_but_stored <= t.rows
                and (not t.room or acked_messages <= t.messages)
            ),
            30,
            "every stored row and message shown",
        )
    lost = sum(len(acked_rows - t.rows) for t in tabs)
    lost += sum(len(acked_messages - t.messages) for t in tabs if t.room)
    phantom = sum(len(t.rows - set(db_rows.values())) for t in tabs)
    duplicated = sum(t.duplicated() for t in tabs)
    print(f"\ndeploys under steady writes ({len(tabs)} tabs, 2 workers, GRACEFUL_TIMEOUT={GRACE})")
    for name, signalled, replaced, back in figures:
        in_flight = [(s, e, st) for s, e, st in writers.row_times if s < signalled < e]
        around = [st for s, e, st in writers.row_times if signalled - 1 < s < signalled + replaced]
        print(
            f"  {name}: old workers gone after {replaced:.1f} s; every tab reconnected and "
            f"caught up {back:.1f} s after the signal; row POSTs in flight at the signal: "
            f"{len(in_flight)} -> {sorted(str(st) for _, _, st in in_flight)}; answers "
            f"until the old ones were gone: {sorted(set(map(str, around)))} x {len(around)}"
        )
    print(
        f"  rows: {len(writers.row_attempts)} attempted, {len(acked_rows)} acknowledged, "
        f"{len(failed)} failed ({sorted({str(s) for s in writers.row_statuses if s != 201})})"
        f", of which {len(failed_but_stored)} stored with the answer lost"
    )
    resent = [r for r in writers.message_attempts.values() if r["tries"] > 1]
    print(
        f"  messages: {len(writers.message_attempts)} attempted, {len(acked_messages)} "
        f"acknowledged, {len(resent)} resent with their client id "
        f"({[r['tries'] for r in resent]} tries), {len(unacked_messages)} never acknowledged"
    )
    print(f"  lost {lost}, duplicated pushes {duplicated}, shown but not stored {phantom}")
    assert lost == 0 and phantom == 0 and duplicated == 0
    assert set(db_rows.values()) == acked_rows | failed_but_stored
    assert not unacked_messages
