"""The websocket cases of Socket.IO's own protocol test suites (github.com/socketio/
engine.io-protocol and socket.io-protocol, test-suite/test-suite.js) that need neither
long-polling, echo handlers nor extra namespaces, written here against the app on gunicorn.

Each test names the suite's case it follows. Where the suite expects a value of its own test
server (its 300 ms ping interval, its echo of the auth payload), the test expects this app's
(25 s, no echo). The heartbeat cases are left out: they wait for the server's ping, 25 s here.
"""

import json

import pytest
import websocket

from .conftest import sqlite_server

pytestmark = pytest.mark.e2e

CONNECT_TIMEOUT = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with sqlite_server(
        tmp_path_factory.mktemp("protocol"), SOCKETIO_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT)
    ) as live:
        yield live


def open_websocket(server, query: str = "EIO=4&transport=websocket") -> websocket.WebSocket:
    return websocket.create_connection(
        f"ws://127.0.0.1:{server.port}/socket.io/?{query}", timeout=10
    )


def handshake(server) -> websocket.WebSocket:
    ws = open_websocket(server)
    assert ws.recv().startswith("0")
    return ws


def socketio_connection(server) -> websocket.WebSocket:
    """initSocketIOConnection() of the suite, without its auth echo."""
    ws = handshake(server)
    ws.send("40")
    assert ws.recv().startswith("40")
    return ws


def closed(ws: websocket.WebSocket, skip: tuple[str, ...] = ("2",)) -> bool:
    """waitFor(socket, "close"): True once the server closed it, False if it is still open
    after the socket's timeout; frames starting with one of ``skip`` (pings) are ignored."""
    try:
        while True:
            frame = ws.recv()
            if not frame:
                return True
            assert frame.startswith(skip), f"expected the connection to close, got {frame!r}"
    except websocket.WebSocketConnectionClosedException:
        return True
    except websocket.WebSocketTimeoutException:
        return False


# Engine.IO protocol ---------------------------------------------------------------------------


def test_handshake_websocket_successfully_opens_a_session(server):
    ws = open_websocket(server)
    data = ws.recv()
    assert data.startswith("0")
    value = json.loads(data[1:])
    assert set(value) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert isinstance(value["sid"], str)
    assert value["upgrades"] == []
    assert (value["pingInterval"], value["pingTimeout"]) == (25000, 20000)
    assert value["maxPayload"] == 65536  # SOCKETIO_MAX_MESSAGE_SIZE
    ws.close()


@pytest.mark.parametrize(
    "query",
    ["transport=websocket", "EIO=abc&transport=websocket", "EIO=4", "EIO=4&transport=abc"],
    ids=["no EIO", "EIO abc", "no transport", "transport abc"],
)
def test_handshake_websocket_fails_with_an_invalid_query_parameter(server, query):
    """The suite waits for the close. gevent-websocket completes the websocket handshake
    before the app sees the request, so the app's 400 comes as a close without any packet."""
    try:
        ws = open_websocket(server, query)
    except websocket.WebSocketBadStatusException as refused:
        assert refused.value.status_code == 400
    else:
        assert closed(ws, skip=())


def test_message_websocket_closes_the_session_upon_invalid_packet_format(server):
    ws = handshake(server)
    ws.send("abc")
    assert closed(ws)


def test_close_websocket_forcefully_closes_the_session(server):
    ws = handshake(server)
    ws.send("1")
    assert closed(ws)


# Socket.IO protocol ---------------------------------------------------------------------------


@pytest.mark.parametrize("packet", ["40", '40{"token":"123"}'], ids=["", "with a payload"])
def test_connect_allows_connection_to_the_main_namespace(server, packet):
    ws = handshake(server)
    ws.send(packet)
    data = ws.recv()
    assert data.startswith("40")
    handshake_data = json.loads(data[2:])
    assert set(handshake_data) == {"sid"} and isinstance(handshake_data["sid"], str)
    # Connected: it stays open past the time a connection without a CONNECT gets.
    ws.settimeout(CONNECT_TIMEOUT + 2)
    assert not closed(ws)
    ws.close()


def test_connect_disallows_connection_to_an_unknown_namespace(server):
    ws = handshake(server)
    ws.send("40/random")
    data = ws.recv()
    # The suite's own server says "Invalid namespace"; python-socketio says it its way.
    assert data.startswith("44/random,")
    assert json.loads(data[len("44/random,") :])


def test_connect_disallows_connection_with_an_invalid_handshake(server):
    ws = handshake(server)
    ws.send("4abc")
    assert closed(ws)


def test_connect_closes_the_connection_if_no_handshake_is_received(server):
    ws = open_websocket(server)
    assert closed(ws, skip=("0{", "2"))


def test_message_sends_a_plain_text_packet_with_an_ack(server):
    """The suite's "message-with-ack" echo, here with an event the app has."""
    ws = socketio_connection(server)
    ws.send('42456["chat:join",{"room":"general"}]')
    assert ws.recv() == '43456[{"ok":false,"error":"Log in to chat."}]'
    ws.close()


@pytest.mark.parametrize(
    "packet",
    ["4abc", "42{}", '42abc["message-with-ack",1,"2",{"3":[false]}]'],
    ids=["unknown packet type", "invalid payload format", "invalid ack id"],
)
def test_message_closes_the_connection_upon_invalid_format(server, packet):
    ws = socketio_connection(server)
    ws.send(packet)
    assert closed(ws)


def test_message_closes_the_connection_upon_a_packet_with_binary_attachments(server):
    """The suite echoes binary attachments; this app takes JSON only and refuses them."""
    ws = socketio_connection(server)
    ws.send('451-["message",{"_placeholder":true,"num":0}]')
    ws.send_binary(bytes([1, 2, 3]))
    assert closed(ws)
