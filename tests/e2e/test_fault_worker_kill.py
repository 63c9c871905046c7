"""kill -9 of one of two gunicorn workers while 200 logged-in tabs are connected and rows and
chat messages are added steadily: gunicorn replaces the worker, the tabs reconnect with back-off
and jitter and catch up, every acknowledged row and message is shown exactly once on every tab,
and the dead worker's users go Offline within 60 s and Online again when their tabs return."""

import concurrent.futures
import json
import os
import random
import signal
import threading
import time

import pytest

from .clients import CatchUpClient, logged_in
from .faults import Writers, accounted, children, slow_post, stored, wait

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLIENTS = int(os.environ.get("FAULT_CLIENTS", "200"))
HELD = 12  # tabs kept closed for a while after they lose their socket (a laptop lid)
SLOW_UPLOADS = 6  # row POSTs whose bodies trickle in over 2 s, across the kill


def test_kill_9_of_a_worker_under_200_tabs_loses_nothing_acknowledged(cluster, postgres_url):
    web = cluster("redis").start_host(workers=2)
    started = time.monotonic()
    names = [f"tab{i:03d}" for i in range(CLIENTS)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        sessions = list(pool.map(lambda name: logged_in(web.url, name), names))
    registered = time.monotonic() - started
    tabs = [CatchUpClient(s, room="general", username=n) for s, n in zip(sessions, names)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda tab: tab.connect(timeout=60), tabs))
    for tab in tabs:
        tab.wait(
            lambda t=tab: all(t.members.get(n) == "online" for n in names),
            90,
            "every member shown online",
        )
    connected = time.monotonic() - started
    master = web.process.pid
    workers_before = children(master)
    assert len(workers_before) == 2
    spread_before = {}
    for tab in tabs:
        wait(lambda t=tab: t.worker, 10, "the tab knows its worker")
        spread_before[tab.worker] = spread_before.get(tab.worker, 0) + 1

    writers = Writers(web.url, sessions[:20]).start()
    uploaded: list[tuple[int, int | None, bytes]] = []
    uploads: list[threading.Thread] = []
    try:
        time.sleep(4)  # steady writes before the fault
        held = set(random.sample(range(CLIENTS), HELD))
        for i in held:
            tabs[i].hold()
        # Uploads in flight at the kill: on the dead worker they fail and must leave nothing.
        uploads = [
            threading.Thread(
                target=lambda a=a: uploaded.append(
                    (a, *slow_post(web.url, "/table/rows", {"a": a, "b": 0}, writers.anon, 2.0))
                )
            )
            for a in range(10**6, 10**6 + SLOW_UPLOADS)
        ]
        for thread in uploads:
            thread.start()
        time.sleep(0.7)  # their bodies are trickling in
        victim_pid = min(workers_before)
        os.kill(victim_pid, signal.SIGKILL)
        killed = time.monotonic()
        wait(lambda: any(t.disconnected_at for t in tabs), 10, "a socket broke")
        time.sleep(1)  # every socket of that worker has broken by now
        victims = [t for t in tabs if t.disconnects]
        assert victims, "no tab lost its socket"
        slow = [tabs[i] for i in held if tabs[i] in victims]
        fast = [t for t in victims if t not in slow]
        survivors = [t for t in tabs if t not in victims]
        replaced = wait(
            lambda: len(children(master) - {victim_pid}) == 2 and children(master),
            60,
            "gunicorn started a new worker",
        )
        replaced_after = time.monotonic() - killed
        # The victims' tabs reconnect by themselves and catch up.
        for tab in fast:
            tab.wait(lambda t=tab: t.outages, 60, "reconnected and caught up")
        fast_back_after = time.monotonic() - killed
        # Whose tabs stay closed go Offline for everyone else (the reaper), then Online again.
        slow_names = {t.username for t in slow}
        for tab in survivors:
            tab.wait(
                lambda t=tab: all(t.members.get(n) == "offline" for n in slow_names),
                60,
                "the dead worker's closed tabs shown offline",
            )
        offline_after = time.monotonic() - killed
        for i in held:
            tabs[i].release()
        released = time.monotonic()
        for tab in tabs:
            tab.wait(
                lambda t=tab: all(t.members.get(n) == "online" for n in names),
                60,
                "every member shown online again",
            )
        online_after = time.monotonic() - released
        time.sleep(2)  # a little more steady writing after the recovery
    finally:
        writers.finish()
        for thread in uploads:
            thread.join(30)
    for a, status, body in uploaded:  # counted like the other row POSTs
        writers.row_attempts[a] = json.loads(body)["id"] if status == 201 else None
        writers.row_statuses.append(status)

    db_rows, db_messages = stored(postgres_url)
    acked_rows, failed_rows, failed_but_stored, acked_messages, unacked_messages = accounted(
        writers, db_rows
    )
    resent = [r for r in writers.message_attempts.values() if r["tries"] > 1]
    answer_lost = [r for r in resent if r["statuses"][-1] == 200]  # stored by an earlier try
    expected_rows = acked_rows | failed_but_stored
    expected_messages = acked_messages | {
        db_messages[r["body"]] for r in unacked_messages if r["body"] in db_messages
    }
    for tab in tabs:
        try:
            tab.wait(
                lambda t=tab: expected_rows <= t.rows and expected_messages <= t.messages,
                30,
                "every stored row and message shown",
            )
        except AssertionError:
            raise AssertionError(
                f"{tab.username} (lost its socket: {tab in victims}) lacks rows "
                f"{sorted(expected_rows - tab.rows)} (failed but stored: "
                f"{sorted(failed_but_stored)}) and messages "
                f"{sorted(expected_messages - tab.messages)}"
            ) from None
    lost = sum(len(acked_rows - t.rows) + len(acked_messages - t.messages) for t in tabs)
    phantom = sum(
        len(t.rows - set(db_rows.values())) + len(t.messages - set(db_messages.values()))
        for t in tabs
    )
    duplicated = sum(t.duplicated() for t in tabs)
    outages = sorted(o for t in fast for o in t.outages)
    row_failures = [s for s in writers.row_statuses if s != 201]

    print(
        f"\nkill -9 of 1 of 2 workers under {CLIENTS} logged-in tabs (registered in "
        f"{registered:.0f} s, all connected and shown online after {connected:.0f} s; "
        f"tabs per worker {sorted(spread_before.values())})"
    )
    print(
        f"  victims: {len(victims)} tabs ({len(fast)} reconnecting at once, {len(slow)} kept "
        f"closed); new worker after {replaced_after:.1f} s"
    )
    print(
        f"  reconnect + catch-up per victim tab: median {outages[len(outages) // 2]:.2f} s, "
        f"max {outages[-1]:.2f} s; all {len(fast)} back {fast_back_after:.1f} s after the kill"
    )
    print(
        f"  closed tabs' users offline for everyone {offline_after:.1f} s after the kill; "
        f"online again for everyone {online_after:.1f} s after they reopened"
    )
    told = sum("worker" in t.resyncs for t in survivors)
    print(
        f"  survivors told to catch up (server:resync) once the dead worker was reaped: "
        f"{told} of {len(survivors)}"
    )
    print(
        f"  rows: {len(writers.row_attempts)} attempted, {len(acked_rows)} acknowledged, "
        f"{len(failed_rows)} failed ({sorted(set(map(str, row_failures)))}), of which "
        f"{len(failed_but_stored)} stored with the answer lost (shown: they are stored); "
        f"uploads in flight at the kill: {sorted(str(st) for _, st, _ in uploaded)}"
    )
    print(
        f"  messages: {len(writers.message_attempts)} attempted, {len(acked_messages)} "
        f"acknowledged, {len(resent)} resent with their client id ({len(answer_lost)} had been "
        f"stored, answer lost), {len(unacked_messages)} never acknowledged"
    )
    print(
        f"  deliveries checked: {len(expected_rows) + len(expected_messages)} items x "
        f"{CLIENTS} tabs; lost {lost}, duplicated pushes {duplicated}, shown but not stored "
        f"{phantom}"
    )
    assert lost == 0 and phantom == 0 and duplicated == 0
    assert set(db_rows.values()) == expected_rows, "a stored row is unaccounted for"
    assert not unacked_messages
    assert (
        set(db_messages.values()) - {m for b, m in db_messages.items() if not b.startswith("m")}
        == acked_messages
    ), "a stored message is unaccounted for"
    assert offline_after < 60
    assert replaced != workers_before
    for tab in tabs:
        tab.close()
