"""webapp/realtime/connections: one worker id, the app's connect handler, closing sockets.

The HTTP guard (timeouts, per-address cap) runs under gunicorn only:
tests/e2e/test_connections_live.py; logout closing sockets: tests/test_auth_sessions.py.
"""

from webapp.realtime import presence
from webapp.realtime.connections.closing import close_user_sockets
from webapp.realtime.connections.worker import worker_id


def test_every_response_names_its_worker(client):
    first, second = client.get("/healthz"), client.get("/")
    assert first.headers["X-Worker"] == second.headers["X-Worker"] == worker_id()
    assert len(worker_id()) == 12


def test_a_socket_can_ask_which_worker_serves_it(socket_client):
    ack = socket_client().emit("server:worker", {}, callback=True)
    assert ack == {"ok": True, "worker": worker_id()}


def test_presence_names_the_same_worker(app):
    assert app.extensions["presence"].worker_id == worker_id()


def test_anonymous_sockets_connect_and_stay_out_of_presence(app, socket_client):
    sock = socket_client()
    assert sock.is_connected()
    assert app.extensions["presence"].state.connections == {}


def test_closing_the_sockets_of_a_user_survives_a_store_that_is_down(app, monkeypatch):
    def down(_user_id):
        raise ConnectionError("presence store down")

    monkeypatch.setattr(app.extensions["presence"], "connections", down)
    with app.app_context():
        close_user_sockets(1)  # logged, not raised: the session epoch alone logs them out
        assert presence.store() is app.extensions["presence"]
