"""A Redis that loses publishes: a TCP proxy between the app and Redis that reads the RESP
protocol just enough to find ``PUBLISH`` commands on one channel and silently drops a share of
them, answering the publisher as Redis would (``:N``, the subscriber count Redis last answered
for that channel), so that it cannot tell. Everything else passes through unchanged: other
commands, pipelines (a dropped command's answer takes its place among the others), MULTI/EXEC
and pub/sub connections (never touched once they subscribe).

    proxy = LossyRedis("127.0.0.1", 6379, channel="flask-socketio", share=0.02, seed=12).start()
    # MESSAGE_QUEUE_URL=redis://127.0.0.1:{proxy.port}/14
    proxy.dropped      # every PUBLISH dropped: when, and the emit it carried
    held = proxy.hold_next(lambda emit: emit.stream == "table")
    held.wait(10)      # the next such PUBLISH is swallowed, never answered: held.peer_port is
                       # the publisher's end of the connection (faults.pid_of_connection)

It drops one PUBLISH in every ``round(1 / share)`` on the channel (2%: one in 50), at a place
in each 50 drawn from a random generator seeded with ``seed``: the share is exact however many
there are, and where the drops fall changes with the seed.
"""

import json
import random
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlparse

from .faults import TcpProxy, _close

# Commands after which a connection is a pub/sub (or monitor) connection: its replies are no
# longer one per command, so from then on it is passed through untouched. (redis-py 8 speaks
# RESP3 after HELLO 3: every reply still answers one command on the other connections.)
PASSTHROUGH = {b"SUBSCRIBE", b"PSUBSCRIBE", b"SSUBSCRIBE", b"MONITOR"}


@dataclass(frozen=True)
class Emit:
    """What one PUBLISH on the queue channel carried (python-socketio's JSON message)."""

    at: float  # time.monotonic() when the proxy read it
    method: str | None  # "emit", "disconnect", "enter_room", ...
    event: str | None
    stream: str | None
    seq: int | None
    host_id: str | None
    peer_port: int  # the publisher's end of its connection to the proxy

    @classmethod
    def parse(cls, payload: bytes, peer_port: int) -> "Emit":
        try:
            message = json.loads(payload)
        except ValueError:
            message = {}
        data = message.get("data") if isinstance(message, dict) else None
        if isinstance(data, list) and data:
            data = data[0]
        if not isinstance(data, dict):
            data = {}
        seq = data.get("seq")
        return cls(
            at=time.monotonic(),
            method=message.get("method") if isinstance(message, dict) else None,
            event=message.get("event") if isinstance(message, dict) else None,
            stream=data.get("stream") if isinstance(data.get("stream"), str) else None,
            seq=seq if isinstance(seq, int) else None,
            host_id=message.get("host_id") if isinstance(message, dict) else None,
            peer_port=peer_port,
        )

    @property
    def numbered(self) -> bool:
        """An event of a stream (stream and seq): the kind clients can repair."""
        return self.stream is not None and self.seq is not None


@dataclass
class Held:
    """The one PUBLISH ``hold_next`` swallows: set once it came."""

    predicate: object
    came: threading.Event = field(default_factory=threading.Event)
    emit: Emit | None = None

    def wait(self, timeout: float) -> Emit:
        if not self.came.wait(timeout):
            raise AssertionError(f"no matching PUBLISH came within {timeout:g} s")
        return self.emit


class LossyRedis(TcpProxy):
    """Forwards 127.0.0.1:<port> to Redis, dropping a share of the PUBLISHes on ``channel``
    (and, as a TcpProxy, can be cut and restored)."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        channel: str,
        share: float = 0.02,
        seed: int = 12,
    ):
        super().__init__(upstream_host, upstream_port)
        self.channel = channel.encode()
        self.share = share
        self.random = random.Random(seed)
        self.block = round(1 / share) if share > 0 else 0
        self.drop_at = -1  # the place of the drop in the current block
        self.published: list[Emit] = []  # every PUBLISH on the channel, dropped or not
        self.dropped: list[Emit] = []
        self.holding: Held | None = None
        self.subscribers = 1  # what Redis last answered to a PUBLISH on the channel

    @classmethod
    def to(cls, url: str, channel: str, **options) -> "LossyRedis":
        """A proxy to the Redis of ``url``; ``proxy.url(url)`` is that URL through it."""
        parsed = urlparse(url)
        return cls(parsed.hostname or "127.0.0.1", parsed.port or 6379, channel, **options)

    def url(self, upstream_url: str) -> str:
        """``upstream_url`` (its database and options) through this proxy."""
        parsed = urlparse(upstream_url)
        return parsed._replace(netloc=f"127.0.0.1:{self.port}").geturl()

    def hold_next(self, predicate) -> Held:
        """Swallow the next PUBLISH on the channel whose Emit matches ``predicate``: neither
        forwarded nor answered (its publisher waits, as for a Redis that went silent)."""
        with self.lock:
            self.holding = Held(predicate)
            return self.holding

    # Deciding ----------------------------------------------------------------------------------
    def _decide(self, payload: bytes, peer_port: int) -> str:
        """What becomes of a PUBLISH of ``payload`` on the channel: "pass", "drop" or "hold"."""
        emit = Emit.parse(payload, peer_port)
        with self.lock:
            self.published.append(emit)
            place = (len(self.published) - 1) % self.block if self.block else -1
            if place == 0:
                self.drop_at = self.random.randrange(self.block)
            held = self.holding
            if held is not None and held.emit is None and held.predicate(emit):
                held.emit = emit
                held.came.set()
                return "hold"
            if place == self.drop_at:
                self.dropped.append(emit)
                return "drop"
        return "pass"

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            _Connection(self, client, upstream).run()
        finally:
            with self.lock:
                if (client, upstream) in self.pairs:
                    self.pairs.remove((client, upstream))


# Replies owed to the client, in order: Redis's next answer, or one made up for a dropped command.
REAL, PUBLISH_ON_CHANNEL = "real", "publish"


class _Connection:
    """One client connection: commands read on the way up, answers put in order on the way down."""

    def __init__(self, proxy: LossyRedis, client: socket.socket, upstream: socket.socket):
        self.proxy, self.client, self.upstream = proxy, client, upstream
        self.peer_port = client.getpeername()[1]
        self.lock = threading.Lock()  # orders what is written to the client
        self.owed: deque = deque()  # REAL / PUBLISH_ON_CHANNEL, or bytes made up for a drop
        self.passthrough = False
        self.in_multi = False

    def run(self) -> None:
        threading.Thread(target=self._down, daemon=True).start()
        self._up()

    def close(self) -> None:
        _close(self.client)
        _close(self.upstream)

    def _up(self) -> None:
        buffer = b""
        try:
            while data := self.client.recv(65536):
                if self.passthrough:
                    self.upstream.sendall(data)
                    continue
                buffer += data
                out = bytearray()
                while buffer:
                    parsed = parse_command(buffer)
                    if parsed is None:
                        break  # incomplete
                    end, args = parsed
                    command, buffer = buffer[:end], buffer[end:]
                    out += self._command(command, args)
                    if self.passthrough:
                        out += buffer
                        buffer = b""
                if out:
                    self.upstream.sendall(out)
        except OSError:
            pass
        finally:
            self.close()

    def _command(self, raw: bytes, args: list[bytes]) -> bytes:
        """What to send upstream for one command (nothing for one dropped or held)."""
        name = args[0].upper() if args else b""
        if name in PASSTHROUGH:
            self.passthrough = True
            return raw
        if name == b"MULTI":
            self.in_multi = True
        elif name in (b"EXEC", b"DISCARD"):
            self.in_multi = False
        ours = name == b"PUBLISH" and len(args) == 3 and args[1] == self.proxy.channel
        decision = "pass"
        if ours and not self.in_multi:
            decision = self.proxy._decide(args[2], self.peer_port)
        with self.lock:
            if decision == "hold":
                return b""
            if decision == "drop":
                answer = b":%d\r\n" % self.proxy.subscribers
                if self.owed:
                    self.owed.append(answer)  # after the answers still to come
                else:
                    self.client.sendall(answer)
                return b""
            self.owed.append(PUBLISH_ON_CHANNEL if ours else REAL)
        return raw

    def _down(self) -> None:
        buffer = b""
        try:
            while data := self.upstream.recv(65536):
                if self.passthrough:  # nothing was dropped on it: no answer owed
                    self.client.sendall(buffer + data)
                    buffer = b""
                    continue
                buffer += data
                with self.lock:
                    out = bytearray()
                    while buffer and (end := reply_end(buffer, 0)) is not None:
                        reply, buffer = buffer[:end], buffer[end:]
                        kind = self.owed.popleft() if self.owed else REAL
                        if kind == PUBLISH_ON_CHANNEL and reply.startswith(b":"):
                            self.proxy.subscribers = int(reply[1:-2])
                        out += reply
                        while self.owed and isinstance(self.owed[0], bytes):
                            out += self.owed.popleft()
                    if out:
                        self.client.sendall(out)
        except OSError:
            pass
        finally:
            self.close()


# RESP ----------------------------------------------------------------------------------------


def _line_end(buffer: bytes, start: int) -> int | None:
    end = buffer.find(b"\r\n", start)
    return None if end < 0 else end + 2


def parse_command(buffer: bytes) -> tuple[int, list[bytes]] | None:
    """(end, arguments) of the first complete command in ``buffer``; None when incomplete.

    A command is an array of bulk strings (what clients send) or an inline command (a line).
    """
    end = _line_end(buffer, 0)
    if end is None:
        return None
    if not buffer.startswith(b"*"):
        return end, buffer[: end - 2].split()
    count, args = int(buffer[1 : end - 2]), []
    for _ in range(count):
        header_end = _line_end(buffer, end)
        if header_end is None:
            return None
        assert buffer[end : end + 1] == b"$", buffer[end : end + 20]
        length = int(buffer[end + 1 : header_end - 2])
        if len(buffer) < header_end + length + 2:
            return None
        args.append(buffer[header_end : header_end + length])
        end = header_end + length + 2
    return end, args


LINE_TYPES = b"+-:_,#("
BULK_TYPES = b"$!="
AGGREGATE_TYPES = b"*~>"
MAP_TYPES = b"%|"


def reply_end(buffer: bytes, start: int) -> int | None:
    """Where the reply (RESP2 or RESP3) starting at ``start`` ends; None when incomplete."""
    pending = 1  # replies still to read at this point, nested elements included
    position = start
    while pending:
        end = _line_end(buffer, position)
        if end is None:
            return None
        kind = buffer[position]
        pending -= 1
        if kind in LINE_TYPES:
            position = end
        elif kind in BULK_TYPES:
            length = int(buffer[position + 1 : end - 2])
            position = end if length < 0 else end + length + 2
            if position > len(buffer):
                return None
        elif kind in AGGREGATE_TYPES or kind in MAP_TYPES:
            count = int(buffer[position + 1 : end - 2])
            pending += max(count, 0) * (2 if kind in MAP_TYPES else 1)
            position = end
        else:
            raise ValueError(f"not a RESP reply: {buffer[position : position + 20]!r}")
    return position
