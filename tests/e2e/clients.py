"""Browser-like clients for end-to-end tests: an HTTP session with cookies and CSRF token,
and a python-socketio client connected over websocket with that session's cookie."""

import random
import re
import threading
import time
from collections import Counter

import engineio
import requests
import socketio
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


class ResendOnReset(Retry):
    """Send a request once more when its connection broke; never after a timeout (the server
    may be working on it)."""

    def is_retry(self, method, status_code, has_retry_after=False) -> bool:
        return False  # an answer is the answer (a 429 or a 503 is what tests look for)

    def increment(self, method=None, url=None, response=None, error=None, **kwargs):
        if isinstance(error, ReadTimeoutError):
            raise error
        return super().increment(method, url, response, error, **kwargs)


class BrowserSession:
    """HTTP like a browser's: cookies, the page's CSRF token, keep-alive connections.

    A request that goes out on a kept-alive connection just as the server closes it for being
    idle (CONNECTION_IDLE_TIMEOUT) fails before the server read it; browsers send it again on a
    new connection, and so does this session (once, for any method).
    """

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = requests.Session()
        once = ResendOnReset(total=1, connect=1, read=1, status=0, other=0, allowed_methods=None)
        self.http.mount("http://", HTTPAdapter(max_retries=once))
        self.token = None
        self.load("/")

    def load(self, path: str) -> str:
        page = self.http.get(self.base_url + path, timeout=10)
        page.raise_for_status()
        self.token = CSRF_META.search(page.text).group(1)
        return page.text

    def post(self, path: str, data: dict, **kwargs) -> requests.Response:
        headers = {"X-CSRFToken": self.token, "HX-Request": "true", **kwargs.pop("headers", {})}
        return self.http.post(
            self.base_url + path, data=data, headers=headers, timeout=10, **kwargs
        )

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)


class LiveSocket:
    """A socket.io client that records every event it receives."""

    def __init__(self, session: BrowserSession, origin: str | None = None):
        self.session = session
        self.events: list[tuple[str, dict]] = []
        self.lock = threading.Condition()
        # websocket-client sends the server's own origin unless told otherwise, like a browser.
        options = {"origin": origin} if origin else {}
        self.client = socketio.Client(reconnection=False, websocket_extra_options=options)
        self.client.on("*", self._record)

    def _record(self, event, data):
        with self.lock:
            self.events.append((event, data))
            self.lock.notify_all()

    def connect(self) -> "LiveSocket":
        self.client.connect(
            self.session.base_url,
            transports=["websocket"],
            headers={"Cookie": self.session.cookie_header()},
            wait_timeout=10,
        )
        return self

    def disconnect(self) -> None:
        self.client.disconnect()

    def wait_for(self, predicate, timeout: float = 10) -> list[tuple[str, dict]]:
        """Wait until ``predicate(events)`` is true; return the events."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while not predicate(self.events):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out; received {self.events!r}")
                self.lock.wait(remaining)
            return list(self.events)

    def of(self, name: str) -> list[dict]:
        with self.lock:
            return [data for event, data in self.events if event == name]


def logged_in(
    base_url: str, username: str, password: str = "correct horse battery", register: bool = True
) -> BrowserSession:
    """A BrowserSession that has registered (or only logged in) as ``username``."""
    session = BrowserSession(base_url)
    path = "/register" if register else "/login"
    response = session.http.post(
        base_url + path,
        data={"username": username, "password": password, "csrf_token": session.token},
        allow_redirects=False,
        timeout=10,
    )
    if response.status_code != 303:
        raise AssertionError(
            f"{path} as {username} answered {response.status_code}: {response.text[:500]}"
        )
    session.load("/chat")  # a fresh session after login: take its CSRF token
    return session


ROW_ID = re.compile(r'<tr id="row-(\d+)"')
LAST_ID = re.compile(r'data-last-id="(\d+)"')


class CatchUpClient:
    """A browser tab as realtime.js and chat.js drive it, for fault and soak tests.

    It loads a page (the table, or a chat room when ``room`` is given) and remembers the newest
    ids the page rendered; after every (re)connect it (re)joins its room and catches up from the
    database: rows and messages newer than the page's, so what it shows equals a fresh load.
    When the connection breaks it reconnects by itself with a back-off that doubles from
    ``delay`` up to ``delay_max`` and a random jitter of +/- ``jitter`` of each pause, like
    socket.io-client in a browser. ``hold()`` keeps it from reconnecting (a closed laptop) until
    ``release()``.

    Everything it shows is a set keyed by id (a list without duplicates, like the page);
    ``pushes`` counts how often each id was pushed live, to find duplicated deliveries.
    """

    socket_class = socketio.Client

    def __init__(
        self,
        session: BrowserSession,
        room: str | None = None,
        delay: float = 0.5,
        delay_max: float = 5.0,
        jitter: float = 0.5,
        username: str | None = None,
    ):
        self.session, self.room, self.username = session, room, username
        self.delay, self.delay_max, self.jitter = delay, delay_max, jitter
        page = session.load(f"/chat/{room}" if room else "/")
        ids = [int(i) for i in LAST_ID.findall(page)]
        # The table page's list, then (on a room page) the message list: each its own last id.
        self.rows_after = int(LAST_ID.search(session.load("/")).group(1)) if room else ids[0]
        self.messages_after = ids[-1] if room else None
        self.lock = threading.Condition()
        self.rows: set[int] = set()
        self.messages: set[int] = set()
        self.pushes: dict[str, Counter] = {"row": Counter(), "message": Counter()}
        self.members: dict[str, str] = {}
        self.joining = False
        self.queued: list[tuple[str, str]] = []
        self.presence_log: list[tuple[float, str, str]] = []  # (monotonic, user, status)
        self.connects = 0
        self.disconnects = 0
        self.catch_ups = 0
        self.catch_up_failures = 0
        self.resyncs: list[str | None] = []  # reasons the server gave (server:resync)
        self.disconnected_at: float | None = None
        self.outages: list[float] = []  # seconds from losing the socket to being caught up
        self.held = False
        self.closing = False
        self.worker: str | None = None
        self.client = self.socket_class(reconnection=False)
        self.client.on("connect", self._on_connect)
        self.client.on("disconnect", self._on_disconnect)
        self.client.on("table:row", lambda data: self._pushed("row", data["id"]))
        self.client.on("chat:message", lambda data: self._pushed("message", data["id"]))
        self.client.on("chat:presence", self._presence)
        self.client.on("server:resync", self._resync)

    # Connection -------------------------------------------------------------------------------
    def connect(self, timeout: float = 20) -> "CatchUpClient":
        """Connect (the first time) and wait until joined and caught up."""
        self._connect_once()
        self.wait(
            lambda: self.catch_ups >= 1 and (not self.room or self.members),
            timeout,
            "connected, joined and caught up",
        )
        return self

    def _connect_once(self) -> None:
        self.client.connect(
            self.session.base_url,
            transports=["websocket"],
            headers={"Cookie": self.session.cookie_header()},
            wait_timeout=10,
        )

    def _on_connect(self) -> None:
        with self.lock:
            self.connects += 1
        if self.room:
            # A callback, not call(): it runs on the reader thread in order with the events.
            # Presence events that arrive before the join's answer are applied after it (like
            # realtime.js queues events during a catch-up): the answer may be older than they.
            with self.lock:
                self.joining = True
            self.client.emit("chat:join", {"room": self.room}, callback=self._joined)
        else:
            self._spawn(self._catch_up)
        self._spawn(self._ask_worker)

    def _joined(self, ack) -> None:
        with self.lock:
            if ack and ack.get("ok"):
                self.members = {m["user"]: m["status"] for m in ack["members"]}
            self.joining = False
            for user, status in self.queued:
                self.members[user] = status
            self.queued = []
            self.lock.notify_all()
        # Like chat.js: catch up once the socket is in the room, so nothing falls in between.
        self._spawn(self._catch_up)

    def _resync(self, data=None) -> None:
        with self.lock:
            self.resyncs.append((data or {}).get("reason"))
        self._spawn(self._catch_up)

    def _ask_worker(self) -> None:
        try:
            self.worker = self.client.call("server:worker", {}, timeout=10)["worker"]
        except Exception:  # the socket broke meanwhile; asked again after the next connect
            pass

    def _on_disconnect(self, *_reason) -> None:
        with self.lock:
            self.disconnected_at = time.monotonic()
            self.disconnects += 1
            self.worker = None
        if not self.closing:
            self._spawn(self._reconnect)

    def _reconnect(self) -> None:
        delay = self.delay
        while not self.closing:
            pause = delay * (1 + self.jitter * (2 * random.random() - 1))
            time.sleep(pause)
            with self.lock:
                while self.held and not self.closing:
                    self.lock.wait(1)
            if self.closing or self.client.connected:
                return
            try:
                self._connect_once()
                return
            except Exception:  # refused or timed out: try again later
                delay = min(delay * 2, self.delay_max)

    def hold(self) -> None:
        with self.lock:
            self.held = True

    def release(self) -> None:
        with self.lock:
            self.held = False
            self.lock.notify_all()

    def close(self) -> None:
        self.closing = True
        self.release()
        try:
            self.client.disconnect()
        except Exception:
            pass

    # What the page shows -------------------------------------------------------------------------
    def _pushed(self, kind: str, item_id: int) -> None:
        with self.lock:
            self.pushes[kind][item_id] += 1
            (self.rows if kind == "row" else self.messages).add(item_id)
            self.lock.notify_all()

    def _presence(self, data) -> None:
        with self.lock:
            if self.joining:
                self.queued.append((data["user"], data["status"]))
            else:
                self.members[data["user"]] = data["status"]
            self.presence_log.append((time.monotonic(), data["user"], data["status"]))
            self.lock.notify_all()

    def _catch_up(self) -> None:
        http, base = self.session.http, self.session.base_url
        for attempt in range(5):
            try:
                page = http.get(
                    f"{base}/table/rows?after={self.rows_after}",
                    headers={"HX-Request": "true"},
                    timeout=15,
                )
                page.raise_for_status()
                rows = {int(i) for i in ROW_ID.findall(page.text)}
                messages: set[int] = set()
                if self.room:
                    answer = http.get(
                        f"{base}/chat/{self.room}/messages",
                        params={"after": self.messages_after},
                        headers={"Accept": "application/json"},
                        timeout=15,
                    )
                    answer.raise_for_status()
                    messages = {m["id"] for m in answer.json()["messages"]}
                break
            except (requests.RequestException, ValueError):
                with self.lock:
                    self.catch_up_failures += 1
                time.sleep(0.5 * (attempt + 1))
        else:
            return  # the next reconnect or resync tries again
        with self.lock:
            self.rows |= rows
            self.messages |= messages
            self.catch_ups += 1
            if self.disconnected_at is not None and self.client.connected:
                self.outages.append(time.monotonic() - self.disconnected_at)
                self.disconnected_at = None
            self.lock.notify_all()

    @staticmethod
    def _spawn(target) -> None:
        threading.Thread(target=target, daemon=True).start()

    def wait(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    odd = {u: s for u, s in self.members.items() if s != "online"}
                    raise AssertionError(
                        f"timed out after {timeout:g} s: {what} "
                        f"({self.username or 'anonymous'}; members not "
                        f"online: {odd}; of {len(self.members)}; their "
                        f"events: {[e for e in self.presence_log if e[1] in odd]}"
                        f" at {time.monotonic():.1f})"
                    )
                self.lock.wait(min(remaining, 1))

    def duplicated(self) -> int:
        """Live pushes of an id it had already been pushed."""
        with self.lock:
            return sum(n - 1 for counter in self.pushes.values() for n in counter.values())


class _InOrderEngineIO(engineio.Client):
    def _trigger_event(self, event, *args, **kwargs):
        kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)


class InOrderSocket(socketio.Client):
    """A socket.io client that handles each packet on its reader thread, in the order it came,
    as a browser does: python-socketio hands each message to a thread of its own, so two events
    could otherwise be handled in the other order. Its handlers must not wait for an answer."""

    def _engineio_client_class(self):
        return _InOrderEngineIO


LIVE_LIST_STREAM = re.compile(r'data-stream="([^"]+)" data-seq="(\d+)"')
LIVE_ITEM_ID = re.compile(r'<(?:tr|article) id="(?:row|message)-(\d+)"')


def live_list(page: str) -> tuple[str, int, list[int]]:
    """The stream, seq and item ids (in the order shown) of the one live list of a page."""
    stream, seq = LIVE_LIST_STREAM.search(page).groups()
    return stream, int(seq), [int(i) for i in LIVE_ITEM_ID.findall(page)]


# What each numbered event does to the ids a list shows (edits and reactions change no id).
ADDS = {"table:row", "chat:message"}
REMOVES = {"table:row-deleted", "chat:message-deleted"}
NUMBERED = ADDS | REMOVES | {"chat:message-edited", "chat:message-reactions"}
RETRY_SECONDS = (0.5, 1, 2, 5, 10)  # as static/js/streams.js


class _Stream:
    """One live list's stream, as static/js/streams.js keeps it."""

    def __init__(self, name: str, seq: int, ids: list[int]):
        self.name, self.seq = name, seq  # the last event applied
        self.ids = set(ids)  # what the list shows
        self.held: dict[int, tuple[str, dict, str]] = {}  # seq -> (event, data, source)
        self.known = seq  # the highest seq known to exist
        self.fetching = False
        self.again = False
        self.retries = 0
        self.timer: threading.Timer | None = None
        self.gaps: list[tuple[float, int, int]] = []  # open: (noticed at, seq then, to reach)

    @property
    def behind(self) -> bool:
        return self.known > self.seq


class StreamClient(CatchUpClient):
    """A tab with the table and a chat room whose lists follow their streams as
    static/js/streams.js keeps them (CatchUpClient reconnects and rejoins).

    Each list starts from its page's ``data-seq`` and ids. A numbered event is applied when it
    follows the last applied seq, dropped when it does not go beyond it, and held when it came
    early while GET /events?stream=&after_seq= fetches the missing ones at once (a failed or
    short answer is tried again after 0.5, 1, 2, 5, 10 s); ``stream:head`` ahead of the list
    fetches too, and so does every (re)connect and ``server:resync``. It never reconnects for
    a gap.

    ``applied`` says when and how each (stream, seq) was applied ("socket" or "fetch");
    ``repairs`` holds each gap's seconds from being noticed (an event after a missing one, or
    a head ahead of the list) until the list had applied everything up to what was known then,
    and whether a fetch brought some of it.
    """

    socket_class = InOrderSocket

    def __init__(self, session: BrowserSession, room: str = "general", **options):
        super().__init__(session, room=room, **options)
        self.streams: dict[str, _Stream] = {}
        for path in ("/", f"/chat/{room}"):
            stream, seq, ids = live_list(session.load(path))
            self.streams[stream] = _Stream(stream, seq, ids)
        self.applied: dict[tuple[str, int], tuple[float, str]] = {}
        self.repairs: list[tuple[float, bool]] = []
        self.fetches = 0
        self.fetch_failures = 0
        self.fetch_seconds: list[float] = []  # each GET /events, request to answer
        self.expired: list[str] = []  # streams answered 410 (a page would reload)
        for event in NUMBERED:
            self.client.on(event, lambda data, event=event: self._receive(event, data))
        self.client.on("stream:head", self._head)

    def shown(self, stream: str) -> set[int]:
        with self.lock:
            return set(self.streams[stream].ids)

    def last_seq(self, stream: str) -> int:
        with self.lock:
            return self.streams[stream].seq

    # Socket events (on the reader thread, in order) ------------------------------------------
    def _receive(self, event: str, data: dict) -> None:
        with self.lock:
            state = self.streams.get(data.get("stream"))
            if state is None or not isinstance(data.get("seq"), int):
                return  # a list this tab does not show
            if data["seq"] > state.seq:
                self._hold(state, event, data, "socket")
                self._drain(state)
                self._repair_if_behind(state)
            self.lock.notify_all()

    def _head(self, data: dict) -> None:
        with self.lock:
            state = self.streams.get(data.get("stream"))
            if state is not None and isinstance(data.get("seq"), int):
                state.known = max(state.known, data["seq"])
                self._repair_if_behind(state)

    def _catch_up(self) -> None:
        # After a (re)connect (once in the room) and on server:resync: what each list missed.
        with self.lock:
            for state in self.streams.values():
                if state.fetching:
                    state.again = True
                else:
                    self._repair(state)
        self.wait(
            lambda: not any(s.fetching for s in self.streams.values()), 30, "caught up by /events"
        )
        with self.lock:
            self.catch_ups += 1
            if self.disconnected_at is not None and self.client.connected:
                self.outages.append(time.monotonic() - self.disconnected_at)
                self.disconnected_at = None
            self.lock.notify_all()

    # The list (callers hold the lock) --------------------------------------------------------
    def _hold(self, state: _Stream, event: str, data: dict, source: str) -> None:
        if data["seq"] > state.seq and data["seq"] not in state.held:
            state.held[data["seq"]] = (event, data, source)
        state.known = max(state.known, data["seq"])

    def _drain(self, state: _Stream) -> None:
        now = time.monotonic()
        while state.seq + 1 in state.held:
            event, data, source = state.held.pop(state.seq + 1)
            state.seq += 1
            if event in ADDS:
                state.ids.add(data["id"])
            elif event in REMOVES:
                state.ids.discard(data["id"])
            self.applied[(state.name, state.seq)] = (now, source)
        for gap in [gap for gap in state.gaps if gap[2] <= state.seq]:
            noticed, start, end = gap
            fetched = any(
                self.applied[(state.name, seq)][1] == "fetch" for seq in range(start + 1, end + 1)
            )
            self.repairs.append((now - noticed, fetched))
            state.gaps.remove(gap)

    def _repair_if_behind(self, state: _Stream) -> None:
        if not state.behind:
            return
        if not state.gaps or state.known > max(gap[2] for gap in state.gaps):
            state.gaps.append((time.monotonic(), state.seq, state.known))
        self._repair(state)

    def _repair(self, state: _Stream) -> None:
        if state.fetching or state.name in self.expired:
            return
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None
        state.fetching = True
        after = state.seq
        self._spawn(lambda: self._fetch(state, after))

    def _fetch(self, state: _Stream, after: int) -> None:
        answer, failed = None, False
        started = time.monotonic()
        try:
            response = self.session.http.get(
                f"{self.session.base_url}/events",
                params={"stream": state.name, "after_seq": after},
                headers={"Accept": "application/json"},
                timeout=10,
            )
            if response.status_code == 200:
                answer = response.json()
            elif response.status_code == 410:
                with self.lock:
                    self.expired.append(state.name)
            else:
                failed = True
        except (requests.RequestException, ValueError):
            failed = True
        with self.lock:
            self.fetches += 1
            self.fetch_failures += failed
            self.fetch_seconds.append(time.monotonic() - started)
            if answer is not None:
                for one in answer["events"]:
                    data = {k: v for k, v in one.items() if k != "event"}
                    self._hold(state, one["event"], data, "fetch")
                for seq in (answer["last_seq"], answer["head"]):
                    state.known = max(state.known, seq)
                self._drain(state)
            state.fetching = False
            if not failed and (state.again or (state.behind and state.seq > after)):
                state.again = False
                self._repair(state)  # more to fetch, and the server has it
            elif failed or state.behind:
                delay = RETRY_SECONDS[min(state.retries, len(RETRY_SECONDS) - 1)]
                state.retries += 1
                state.timer = threading.Timer(delay, self._retry, args=(state,))
                state.timer.daemon = True
                state.timer.start()
            else:
                state.retries = 0
            self.lock.notify_all()

    def _retry(self, state: _Stream) -> None:
        with self.lock:
            state.timer = None
            self._repair(state)
