import pytest


def test_anonymous_socket_may_watch_the_table(socket_client):
    sock = socket_client()
    assert sock.is_connected()


def test_catchup_event_returns_rows_after_id(browser, socket_client):
    for i in range(3):
        browser.post("/table/rows", {"a": str(i), "b": "1"})
    sock = socket_client()
    ack = sock.emit("table:catchup", {"after": 1}, callback=True)
    assert ack["ok"] is True
    assert [r["id"] for r in ack["rows"]] == [2, 3]
    assert [r["sum"] for r in ack["rows"]] == [2, 3]


@pytest.mark.parametrize(
    "data", [None, "x", 5, [], {}, {"after": "1"}, {"after": -1}, {"after": True}, {"after": 1.5}]
)
def test_catchup_event_rejects_malformed_data(socket_client, data):
    sock = socket_client()
    ack = sock.emit("table:catchup", data, callback=True)
    assert ack["ok"] is False and "after" in ack["error"]
