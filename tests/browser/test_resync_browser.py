"""The message-queue listener comes back: open pages catch up without a reload (server:resync).

One gunicorn worker on a redis-server of the test's own, which the test kills and restarts
(never the shared Redis). With one worker, a row added over HTTP reaches the worker's own pages
even while Redis is down (the emit is delivered locally first); a row added by the command line
(another process) is published through Redis only, so while Redis is down it reaches nobody:
only ``server:resync`` after the listener is back brings it to the page.
"""

import time

import pytest
from playwright.sync_api import expect

from ..services import unique_channel
from .chat_pages import mark_document, same_document
from .pages import TablePage, add_rows_over_http, assert_no_console_errors

pytestmark = pytest.mark.browser

RESYNC_TIMEOUT_MS = 30_000  # the listener retries every 2 s at most; a busy machine is slow


def test_a_page_catches_up_on_rows_the_queue_lost_after_redis_comes_back(
    start_server, own_redis, new_page
):
    server = start_server(MESSAGE_QUEUE_URL=own_redis.url, SOCKETIO_CHANNEL=unique_channel())
    table = TablePage.open(new_page(), server.url)
    table.page.evaluate(
        "window.__resyncs = 0;"
        " window.realtime.socket.on('server:resync', () => { window.__resyncs += 1; })"
    )
    mark_document(table.page)
    add_rows_over_http(server.url, [(1, 1)])
    table.wait_rows(1)

    resyncs = table.page.evaluate("window.__resyncs")  # one may come when the listener starts
    own_redis.kill()
    add_rows_over_http(server.url, [(2, 2)])  # stored, and shown by this worker's own page
    added = server.flask("table", "add-row", "3", "3")  # stored; its event is lost
    assert added.returncode == 0, added.stderr
    assert "Added row 3" in added.stdout
    table.wait_rows(2)
    expect(table.row(2)).to_have_count(1)
    assert table.row(3).count() == 0, "row 3 reached the page with Redis down: test proves nothing"

    own_redis.start()  # same port
    restarted = time.monotonic()
    expect(table.row(3)).to_have_count(1, timeout=RESYNC_TIMEOUT_MS)
    print(f"\nthe lost row showed {time.monotonic() - restarted:.1f} s after Redis restarted")
    assert table.page.evaluate("window.__resyncs") > resyncs
    expect(table.row(3)).to_contain_text("6")
    # Relaying works again, and the page equals a fresh load; it was never reloaded.
    server.flask("table", "add-row", "4", "4")
    table.wait_rows(4)
    fresh = TablePage.open(new_page(), server.url)
    assert table.snapshot() == fresh.snapshot()
    assert [row[0] for row in fresh.snapshot()["rows"]] == [4, 3, 2, 1]
    assert same_document(table.page)
    assert_no_console_errors(table.page, fresh.page)
