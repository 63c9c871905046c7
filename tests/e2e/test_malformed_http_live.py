"""Malformed and oversized HTTP over a real gunicorn server and raw sockets: each refused request
gets a 4xx with a readable answer and exactly one line in the server's log (never a traceback),
a chunked body over MAX_CONTENT_LENGTH is refused with 413 on every route and stores nothing,
and a Host header that is not a host name gets a readable 400 page."""

import re
import socket
import sqlite3
import time
from urllib.parse import urlencode

import pytest
import requests

from .clients import BrowserSession, logged_in
from .conftest import sqlite_server

pytestmark = pytest.mark.e2e

LIMIT = 64 * 1024  # MAX_CONTENT_LENGTH's default


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("malformed")
    with sqlite_server(tmp_path) as live:
        live.database = tmp_path / "e2e.db"
        yield live


def exchange(server, data: bytes) -> bytes:
    """Send ``data`` on a new connection and read the answer until the server closes it."""
    answer = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        try:
            sock.sendall(data)
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError as error:  # a reset instead of an answer: the test says so below
            answer += f"<{error!r}>".encode()
    return answer


def status_of(answer: bytes) -> int | None:
    first = answer.split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) > 1 and first[0].startswith(b"HTTP/") else None


def log_lines(server) -> list[str]:
    """The server's log of raw requests: without the start-up health checks and the requests
    other tests made with ``requests`` (a slow one may log late)."""
    lines = server.log_path.read_text(errors="replace").splitlines()
    late = ('"GET /healthz HTTP/1.1" 200', '"python-requests/')
    return [line for line in lines if not any(mark in line for mark in late)]


def lines_after(server, before: int) -> list[str]:
    """The server's log lines after the first ``before``, once it has written what it will."""
    deadline = time.monotonic() + 5
    while len(log_lines(server)) <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # a traceback would follow at once
    return log_lines(server)[before:]


MALFORMED = {
    "not HTTP at all": (b"GARBAGE\r\n\r\n", 400, "Invalid HTTP method"),
    "a request line of four words": (
        b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
        400,
        "Invalid HTTP method",
    ),
    "HTTP/2.0 in an HTTP/1 request line": (
        b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        400,
        "Invalid http version",
    ),
    "TLS to the plain HTTP port": (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40) + b"\r\n\r\n",
        400,
        "Invalid HTTP method",
    ),
    "a Content-Length that is not a number": (
        b"POST /table/rows HTTP/1.1\r\nHost: x\r\nContent-Length: many\r\n\r\n",
        400,
        "many",
    ),
    "more than 100 headers": (
        b"GET / HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-Header-%d: v\r\n" % i for i in range(150))
        + b"\r\n",
        431,
        "too many header fields",
    ),
    "a 70 KB header": (
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
        431,
        "header line is too long",
    ),
    "a 70 KB request line": (
        b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        414,
        "request line is too long",
    ),
    # The app answers this one (its body cannot be read); what follows the broken chunk must
    # not be served as a request of its own.
    "a chunk size that is not hexadecimal, then a request": (
        (
            b"POST /table/rows HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
            b"GET /table/rows.csv HTTP/1.1\r\nHost: x\r\n\r\n"
        ),
        400,
        '"POST /table/rows HTTP/1.1" 400',
    ),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_a_malformed_request_gets_a_4xx_and_one_log_line(server, case):
    request, status, reason = MALFORMED[case]
    before = len(log_lines(server))
    answer = exchange(server, request)
    new = lines_after(server, before)
    assert status_of(answer) == status, answer[:300]
    body = answer.partition(b"\r\n\r\n")[2]
    assert body.strip(), "the client is told why"
    assert answer.count(b"HTTP/1.1 ") == 1, answer  # one request, one answer
    assert len(new) == 1, "\n".join(new)
    assert "127.0.0.1" in new[0] and str(status) in new[0] and reason in new[0], new[0]


def form(fields: dict, size: int) -> bytes:
    """``fields`` url-encoded and padded with a ``pad`` field to exactly ``size`` bytes."""
    encoded = urlencode(fields) + "&pad="
    assert len(encoded) <= size
    return (encoded + "x" * (size - len(encoded))).encode()


def chunked_post(server, path: str, body: bytes, session: BrowserSession, htmx=True):
    """POST ``body`` in 8 KiB chunks (no Content-Length); return the status and the answer."""
    headers = {
        "Host": f"127.0.0.1:{server.port}",
        "Cookie": session.cookie_header(),
        "X-CSRFToken": session.token,
        "Content-Type": "application/x-www-form-urlencoded",
        "Transfer-Encoding": "chunked",
        "Connection": "close",
    }
    if htmx:
        headers["HX-Request"] = "true"
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    pieces = [body[i : i + 8192] for i in range(0, len(body), 8192)]
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
    answer = exchange(server, head.encode() + b"\r\n" + chunks + b"0\r\n\r\n")
    return status_of(answer), answer.decode(errors="replace")


def stored(server, sql: str) -> int:
    with sqlite3.connect(server.database) as db:
        return db.execute(sql).fetchone()[0]


def test_a_chunked_row_over_the_limit_gets_413_and_stores_nothing(server):
    session = BrowserSession(server.url)
    rows = "SELECT count(*) FROM table_rows"
    before = stored(server, rows)
    for size in (LIMIT + 1, 100_000, 2 * 1024 * 1024):
        status, answer = chunked_post(server, "/table/rows", form({"a": 7, "b": 8}, size), session)
        assert status == 413, answer[:500]
        assert "too much data at once: at most 64 KiB" in answer
    assert stored(server, rows) == before
    # A chunked body of exactly the limit, or a small one, is a normal request.
    for size in (LIMIT, 100):
        status, answer = chunked_post(server, "/table/rows", form({"a": 7, "b": 8}, size), session)
        assert status == 201, answer[:500]
    assert stored(server, rows) == before + 2


def test_a_chunked_chat_message_over_the_limit_gets_413_and_stores_nothing(server):
    session = logged_in(server.url, "chunky")
    count = "SELECT count(*) FROM messages WHERE body = 'hello over chunks'"
    big = form({"body": "hello over chunks"}, LIMIT + 1)
    status, answer = chunked_post(server, "/chat/general/messages", big, session)
    assert status == 413, answer[:500]
    assert stored(server, count) == 0
    small = form({"body": "hello over chunks"}, 200)
    status, answer = chunked_post(server, "/chat/general/messages", small, session)
    assert status == 201, answer[:500]
    assert stored(server, count) == 1


def test_a_chunked_login_over_the_limit_gets_413_and_logs_nobody_in(server):
    logged_in(server.url, "chunklogin")
    session = BrowserSession(server.url)
    fields = {"username": "chunklogin", "password": "correct horse battery"}
    status, answer = chunked_post(server, "/login", form(fields, LIMIT + 1), session, htmx=False)
    assert status == 413, answer[:500]
    assert chat_status(server, answer) == 302  # still logged out: /chat sends to the login page
    status, answer = chunked_post(server, "/login", form(fields, 500), session, htmx=False)
    assert status == 303, answer[:500]
    assert chat_status(server, answer) == 200


def chat_status(server, answer: str) -> int:
    """What GET /chat answers with the session cookie ``answer`` set (or the one it had)."""
    cookie = re.search(r"Set-Cookie: session=([^;]+)", answer)
    cookies = {"session": cookie.group(1)} if cookie else {}
    return requests.get(
        server.url + "/chat", cookies=cookies, allow_redirects=False, timeout=10
    ).status_code


@pytest.mark.parametrize("host", ["a..b", "a" * 64 + ".example.com"])
def test_a_bad_host_gets_a_readable_400_page(server, host):
    before = len(log_lines(server))
    for path in ("/", "/chat", "/login", "/table/rows", "/no/such/page"):
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        answer = exchange(server, request.encode()).decode(errors="replace")
        assert status_of(answer.encode()) == 400, answer[:500]
        assert "The Host header of this request is not a valid host name." in answer
        assert "<html" in answer and 'href="/"' in answer
    new = lines_after(server, before)
    assert len(new) == 5 and not any("Traceback" in line for line in new), "\n".join(new)
