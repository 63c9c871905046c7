"""webapp/realtime/transport/rooms.py: an emit to rooms may leave out the sockets of another."""

from webapp.extensions import socketio
from webapp.realtime.transport.rooms import but_not

from .conftest import Account


def test_an_emit_to_rooms_leaves_out_the_sockets_of_the_room_named(app):
    alice = Account(app, "alice")
    watching, elsewhere = alice.socket(), alice.socket()
    with app.test_request_context():
        server = socketio.server
        sids = [server.manager.sid_from_eio_sid(s.eio_sid, "/") for s in (watching, elsewhere)]
        server.enter_room(sids[0], "chat:design")
        server.enter_room(sids[1], "extra")
        for sock in (watching, elsewhere):
            sock.get_received()
        socketio.emit("ping:test", {"n": 1}, to=["extra", "users", but_not("chat:design")])
        socketio.emit("ping:test", {"n": 2}, to=[but_not("chat:design")])  # nobody
        socketio.emit("ping:test", {"n": 3}, to=["users"])  # as before: everyone in it, once
    assert [e["args"][0]["n"] for e in watching.get_received()] == [3]
    assert [e["args"][0]["n"] for e in elsewhere.get_received()] == [1, 3]
