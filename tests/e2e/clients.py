"""Browser-like clients for end-to-end tests: an HTTP session with cookies and CSRF token,
and a python-socketio client connected over websocket with that session's cookie."""

import re
import threading
import time

import requests
import socketio

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


class BrowserSession:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = requests.Session()
        self.token = None
        self.load("/")

    def load(self, path: str) -> str:
        page = self.http.get(self.base_url + path, timeout=10)
        page.raise_for_status()
        self.token = CSRF_META.search(page.text).group(1)
        return page.text

    def post(self, path: str, data: dict, **kwargs) -> requests.Response:
        headers = {"X-CSRFToken": self.token, "HX-Request": "true", **kwargs.pop("headers", {})}
        return self.http.post(self.base_url + path, data=data, headers=headers, timeout=10, **kwargs)

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


def logged_in(base_url: str, username: str, password: str = "correct horse battery",
              register: bool = True) -> BrowserSession:
    """A BrowserSession that has registered (or only logged in) as ``username``."""
    session = BrowserSession(base_url)
    path = "/register" if register else "/login"
    response = session.http.post(
        base_url + path,
        data={"username": username, "password": password, "csrf_token": session.token},
        allow_redirects=False, timeout=10,
    )
    if response.status_code != 303:
        raise AssertionError(f"{path} as {username} answered {response.status_code}: {response.text[:500]}")
    session.load("/chat")  # a fresh session after login: take its CSRF token
    return session
