"""Every Socket.IO event, fuzzed: wrong types, missing and extra fields, huge and deeply nested
payloads, NaN and infinities, lone surrogates, no or several arguments, anonymous and logged
in. Every call answers an acknowledgement ``{"ok": bool, ...}`` with a readable error when
refused; no exception or error log; nothing stored from a refusal, only the event's own effect
from a success; the socket stays connected and the app keeps answering.

How a handler's failure shows here: the test client runs handlers synchronously and the app has
no Socket.IO error handler, so an exception raises out of ``emit`` (under gunicorn Engine.IO
would catch and log it); a failure a handler catches itself shows as an ERROR log record, which
``ErrorLog`` collects from the app's, Socket.IO's and Engine.IO's loggers."""

import pytest
from hypothesis import example, given, settings

from webapp import create_app
from webapp.config import TestConfig
from webapp.extensions import socketio

from .fuzzing import (
    ANY,
    SOCKET_EFFECTS,
    ErrorLog,
    FuzzSession,
    check_changes,
    count_case,
    examples,
    raw_packets,
    seed,
    snapshot,
    socket_args,
)

create_app(TestConfig)  # registers every handler on the shared Socket.IO server
# Every event of the default namespace the server handles: a new event is fuzzed by itself.
EVENTS = sorted(set(socketio.server.handlers["/"]) - {"connect", "disconnect"})
CASES_PER_EVENT = 240
RAW_CASES = 600


def check_ack(ack, event: str) -> None:
    assert isinstance(ack, dict), f"{event} answered {ack!r}, not an object"
    assert isinstance(ack.get("ok"), bool), f"{event} answered {ack!r} without ok"
    if not ack["ok"]:
        error = ack.get("error")
        assert isinstance(error, str) and error.strip(), f"{event} refused without a reason"


@pytest.mark.parametrize("logged_in", [False, True], ids=["anonymous", "logged-in"])
@pytest.mark.parametrize("event", EVENTS)
def test_event_survives_hostile_input(app, event, logged_in):
    seed(app)
    session = FuzzSession(app, logged_in)
    sock = socketio.test_client(app, flask_test_client=session.client)
    assert sock.is_connected()
    known = {}  # the state after the last case that ran to its end

    @settings(max_examples=examples(CASES_PER_EVENT))
    @given(args=socket_args())
    @example(args=[])
    @example(args=[{}, {}])
    @example(args=[{"after": 2**63, "room": "general", "id": 2**63 - 1}])
    @example(args=[{"after": 2**31, "room": "general", "id": 2**31}])
    @example(args=[{"room": "general", "body": "\ud800", "status": ["online"]}])
    @example(args=[{"room": "general", "body": "ok", "client_id": "\x00" * 64}])
    def fuzz(args):
        before = known.pop("state", None)
        if before is None:
            with app.app_context():
                before = snapshot()
        with ErrorLog() as errors:
            ack = sock.emit(event, *args, callback=True)
            check_ack(ack, event)
            assert not errors.take(), "error logged"
        with app.app_context():
            after = snapshot()
        check_changes(
            before,
            after,
            SOCKET_EFFECTS.get(event, {}) if ack["ok"] else {},
            f"{event} ({'ok' if ack['ok'] else 'refused'})",
        )
        assert sock.is_connected(), f"{event} closed the socket"
        sock.get_received()  # what it broadcast: not needed, and must not pile up
        # The app still answers a normal call.
        assert sock.emit("table:catchup", {"after": 10**9}, callback=True) == {
            "ok": True,
            "rows": [],
        }
        known["state"] = after
        count_case("socket", "ok" if ack["ok"] else "refused")

    try:
        fuzz()
    finally:
        if sock.is_connected():
            sock.disconnect()


def connected(sock) -> bool:
    """Whether the server still counts this test client's socket as connected."""
    manager = socketio.server.manager
    sid = manager.sid_from_eio_sid(sock.eio_sid, "/")
    return sid is not None and manager.is_connected(sid, "/")


@pytest.mark.parametrize("logged_in", [False, True], ids=["anonymous", "logged-in"])
def test_malformed_packets_end_only_that_session(app, logged_in):
    """Raw packets, as a hostile client's websocket carries them: never an exception or error
    log; a malformed one ends that client's session, and the app keeps answering."""
    seed(app)
    session = FuzzSession(app, logged_in)
    current = {"sock": socketio.test_client(app, flask_test_client=session.client)}
    bystander = socketio.test_client(app, flask_test_client=FuzzSession(app, False).client)
    may_change = {key: ANY for effects in SOCKET_EFFECTS.values() for key in effects}

    @settings(max_examples=examples(RAW_CASES))
    @given(raw=raw_packets(tuple(EVENTS)))
    @example(raw="21[" + "[" * 100_000 + "]" * 100_000 + "]")
    @example(raw="")
    @example(raw="2")
    @example(raw='21["disconnect"]')
    @example(raw='51-["chat:send",{"_placeholder":true,"num":3}]')
    @example(raw='4"x"')
    @example(raw="0")
    def fuzz(raw):
        sock = current["sock"]
        with app.app_context():
            before = snapshot()
        with ErrorLog() as errors:
            socketio.server._handle_eio_message(sock.eio_sid, raw)
            assert not errors.take(), "error logged"
        with app.app_context():
            check_changes(before, snapshot(), may_change, f"packet {raw[:80]!r}")
        if sock.is_connected():
            sock.get_received()
        sock.acks = None
        # Dropped by the server, or told it cannot connect twice (a repeated CONNECT packet).
        kept = connected(sock) and sock.is_connected()
        if not kept:
            current["sock"] = sock = socketio.test_client(app, flask_test_client=session.client)
        assert connected(bystander), "another client's session ended"
        for client in (sock, bystander):
            assert client.emit("server:worker", callback=True)["ok"] is True
        count_case("packet", "kept" if kept else "dropped")

    fuzz()


def test_a_malformed_packet_drops_its_sender(socket_client):
    """Before, python-socketio raised on each (and Engine.IO logged the traceback)."""
    sock = socket_client()
    assert connected(sock)
    socketio.server._handle_eio_message(sock.eio_sid, '21["table:catchup", {"after": ')
    assert not connected(sock)


def test_an_event_named_disconnect_drops_its_sender(accounts):
    alice = accounts("alice")
    sock = alice.socket()
    sock.emit("disconnect")  # once ran the disconnect handler while the socket stayed open
    assert not connected(sock)


# Found by the fuzzer ------------------------------------------------------------------------


def test_catchup_and_worker_answer_any_number_of_arguments(socket_client):
    sock = socket_client()
    for args in ([], [{}, {}], [{"after": 0}, 1, 2]):
        assert sock.emit("table:catchup", *args, callback=True)["ok"] is False
        assert sock.emit("server:worker", *args, callback=True)["ok"] is True
    for after in (2**31, 2**63):
        assert sock.emit("table:catchup", {"after": after}, callback=True) == {
            "ok": True,
            "rows": [],
        }


def test_every_app_of_a_process_handles_every_event():
    """Handlers registered after the first app's server was made once reached that app only."""
    import subprocess
    import sys

    script = """
from webapp import create_app
from webapp.config import TestConfig
from webapp.extensions import socketio
first = set(socketio.server.handlers["/"]) if create_app(TestConfig) else None
app = create_app(TestConfig)
assert set(socketio.server.handlers["/"]) == first, set(socketio.server.handlers["/"]) ^ first
print(socketio.test_client(app).emit("server:worker", callback=True)["ok"])
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(__import__("pathlib").Path(__file__).parents[1]),
        check=False,
    )
    assert result.stdout.strip().endswith("True"), result.stderr[-2000:]
