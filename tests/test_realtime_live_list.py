"""The live-list protocol shared by the table and the chat: one order, one cap, data-seq."""

import re

from webapp.chat import services as chat
from webapp.extensions import db
from webapp.realtime import live_list
from webapp.table import services as table

SEQ = re.compile(r'data-stream="([^"]+)" data-seq="(\d+)"')


def test_every_live_list_carries_its_stream_and_the_seq_it_reflects(app, client, accounts):
    assert SEQ.findall(client.get("/").get_data(as_text=True)) == [("table", "0")]
    with app.app_context():
        row = table.add_row(1, 2)
        table.add_row(3, 4)
        table.delete_row(row.id)
    assert SEQ.findall(client.get("/").get_data(as_text=True)) == [("table", "3")]

    alice = accounts("alice")
    page = alice.client.get("/chat/General").get_data(as_text=True)
    assert SEQ.findall(page) == [("room:general", "0")]
    alice.browser.post("/chat/general/messages", {"body": "one"})
    alice.browser.post("/chat/general/messages", {"body": "two"})
    page = alice.client.get("/chat/general").get_data(as_text=True)
    assert SEQ.findall(page) == [("room:general", "2")]
    # A catch-up says which number it reflects too.
    assert alice.client.get("/chat/general/messages?after=0").headers["X-Seq"] == "2"
    assert client.get("/table/rows?after=0").headers["X-Seq"] == "3"


def test_table_and_chat_answer_in_one_order_with_one_cap(app):
    app.config["LIVE_LIST_CATCHUP_MAX"] = 3
    with app.app_context():
        ids = [table.add_row(i, 0).id for i in range(5)]
        found = table.ROWS.catch_up(0)
        assert [r.id for r in found.items] == ids[:3] and found.overflow
        found = table.ROWS.catch_up(ids[1])
        assert [r.id for r in found.items] == ids[2:] and not found.overflow
        assert [r.id for r in table.ROWS.newest(2)] == ids[3:]
        assert [r.id for r in table.ROWS.before(ids[3], 2)] == ids[1:3]
        assert table.ROWS.seq() == 5

        room = chat.find_room("general")
        live = chat.messages(room)
        assert (live.stream, live.seq(), live.catch_up(0).items) == ("room:general", 0, [])
        assert live_list.page_limit(None, 50) == 50
        assert live_list.page_limit(-5, 50) == 1 and live_list.page_limit(10**6, 50) == 200
        db.session.rollback()
