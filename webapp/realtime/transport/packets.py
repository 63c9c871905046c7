"""Socket.IO packets from clients, decoded so that a malformed one never raises, and the
connection of a client that sent one closed.

python-socketio raises on a packet it cannot decode (broken or too deeply nested JSON, an event
without a name, a type a client may not send); Engine.IO then logs the traceback and keeps the
connection, so a hostile client could fill the log at will. Here such a packet decodes as that
client's own disconnect instead: its session in the namespace ends, nobody else's.

Ending the session alone would leave the client half alive: it still believes it is connected,
gets no answers and no broadcasts, and never reconnects. So the connection that carried the
packet is closed too, as a network failure would close it (``close_on_refusal``): the client
sees its transport close, reconnects by itself and catches up, as after any other drop.

Both rely on python-socketio 5.18.1's internals (``Packet.__init__`` and ``decode``, and the
server's Engine.IO message handler that ``close_on_refusal`` wraps), listed in ``PINNED``:
``close_on_refusal`` refuses to run when their installed code differs (:mod:`.pinned`).
"""

import logging
from contextvars import ContextVar

from socketio import packet

from ..connections.closing import close_transport
from .pinned import Pinned, check

log = logging.getLogger(__name__)

# Set while a client's message is decoded: whether the packet was refused.
_refused: ContextVar[bool] = ContextVar("refused_packet", default=False)

PINNED = Pinned(
    "python-socketio",
    "5.18.1",
    (
        ("socketio.packet:Packet.__init__", "5fe2fa797e082c1d"),
        ("socketio.packet:Packet.decode", "61ad7904b539f472"),
        ("socketio.server:Server._handle_eio_message", "65f309c138d634eb"),
    ),
    __name__,
)

# A client may not trigger the server's own connection events by sending them as events.
RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error"})


class CheckedPacket(packet.Packet):
    """A ``socketio.packet.Packet`` (given to the server as its ``serializer``) that refuses
    malformed client packets by decoding them as a DISCONNECT of the default namespace."""

    def __init__(self, *args, encoded_packet=None, **kwargs):
        super().__init__(*args, encoded_packet=encoded_packet, **kwargs)
        if encoded_packet is not None and not encoded_packet:  # an empty message
            self._refuse()

    def decode(self, encoded_packet):
        try:
            attachments = super().decode(encoded_packet)
            if self._well_formed():
                return attachments
        except (ValueError, TypeError, KeyError, IndexError, RecursionError):
            pass
        self._refuse()
        return 0

    def _refuse(self) -> None:
        self.packet_type, self.namespace, self.id, self.data = packet.DISCONNECT, None, None, None
        _refused.set(True)

    def _well_formed(self) -> bool:
        if self.namespace is not None and not isinstance(self.namespace, str):
            return False
        if self.packet_type == packet.EVENT:
            return (
                isinstance(self.data, list)
                and len(self.data) > 0
                and isinstance(self.data[0], str)
                and self.data[0] not in RESERVED_EVENTS
            )
        if self.packet_type == packet.ACK:
            return isinstance(self.data, list)
        if self.packet_type == packet.CONNECT:
            return self.data is None or isinstance(self.data, dict)
        # This app sends and expects JSON only: binary packets, a CONNECT_ERROR (which only a
        # server sends) or an unknown type are not a client's to send.
        return self.packet_type == packet.DISCONNECT


def close_on_refusal(server) -> None:
    """Have ``server`` (a ``socketio.Server`` using ``CheckedPacket``) close the connection of a
    client whose packet was refused, once the refusal has ended its session."""
    check(PINNED)
    eio = server.eio
    on_message = eio.handlers["message"]

    def message(eio_sid, data):
        token = _refused.set(False)
        try:
            on_message(eio_sid, data)
            refused = _refused.get()
        finally:
            _refused.reset(token)
        if refused and close_transport(server, eio_sid):
            log.info("socket %s sent a packet the server refuses: connection closed", eio_sid)

    eio.on("message", message)
