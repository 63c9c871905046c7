"""Hostile input for the fuzz tests: Hypothesis strategies, the app's state as counts, and
the checks every fuzzed request must pass.

Routes and socket events are enumerated from the app itself (``app.url_map`` and the Socket.IO
server's handlers), and the field names fuzzed are read from the code and templates, so a new
route, event or field is fuzzed without touching the tests.
"""

import json
import logging
import math
import os
import re
import time
import uuid
from collections import Counter
from functools import cache
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes, urlencode

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from webapp.auth.models import User
from webapp.chat.models import Member, Message, Room
from webapp.extensions import db
from webapp.table.models import Row, TableTotals

ROOT = Path(__file__).resolve().parent.parent
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Hypothesis: no deadline (a shared 2-core machine is slow at times), reproducible in CI.
_SLOW_MACHINE = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.large_base_example,
    HealthCheck.function_scoped_fixture,
    HealthCheck.filter_too_much,
]
settings.register_profile(
    "fuzz", deadline=None, suppress_health_check=_SLOW_MACHINE, print_blob=True
)
settings.register_profile(
    "fuzz-ci", parent=settings.get_profile("fuzz"), derandomize=True, database=None
)
settings.load_profile("fuzz-ci" if CI else "fuzz")

# FUZZ_SCALE multiplies every test's number of generated cases (e.g. 0.2 for a quick run). On
# PostgreSQL (make test-postgres) every case waits on the server: a third of them by default.
_ON_POSTGRES = os.environ.get("TEST_DATABASE") == "postgres"
SCALE = float(os.environ.get("FUZZ_SCALE") or (0.3 if _ON_POSTGRES else 1))


def examples(n: int) -> int:
    return max(1, round(n * SCALE))


# Counting ---------------------------------------------------------------------------------

CASES: Counter = Counter()
OUTCOMES: Counter = Counter()
_STARTED = time.monotonic()


def count_case(kind: str, outcome: str) -> None:
    """One generated case of ``kind`` (http, socket) ran to its end with ``outcome``."""
    CASES[kind] += 1
    OUTCOMES[kind, outcome] += 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print how many fuzz cases ran (a hook that tests/conftest.py re-exports)."""
    if not CASES:
        return

    def outcomes(kind):
        found = sorted((o, n) for (k, o), n in OUTCOMES.items() if k == kind)
        return " / ".join(f"{o} {n:,}" for o, n in found)

    parts = "; ".join(f"{kind} {n:,}: {outcomes(kind)}" for kind, n in sorted(CASES.items()))
    terminalreporter.write_sep("-", "fuzzing")
    terminalreporter.write_line(
        f"fuzz: {sum(CASES.values()):,} generated cases that passed every check ({parts}); "
        f"session time {time.monotonic() - _STARTED:.0f} s"
    )


# Names to fuzz, read from the code and templates ---------------------------------------


def _source_names(pattern: str, globs: tuple[str, ...]) -> set[str]:
    names = set()
    for glob in globs:
        for path in ROOT.glob(glob):
            names.update(re.findall(pattern, path.read_text(encoding="utf-8")))
    return names


HTTP_FIELDS = sorted(
    _source_names(r'request\.(?:form|args|values)\.get\("(\w+)"', ("webapp/**/*.py",))
    | _source_names(r'int_arg\("(\w+)"', ("webapp/**/*.py",))
    | _source_names(r'<(?:input|textarea|select)[^>]*\bname="(\w+)"', ("templates/**/*.html",))
)
SOCKET_FIELDS = sorted(_source_names(r'data(?:\.get\(|\[)"(\w+)"', ("webapp/**/events.py",))) or [
    "room"
]

# Strategies -------------------------------------------------------------------------------

SPECIAL_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\u200f",
    "\u202e",
    "\u200e\u202dabc",
    "\ufeff",
    "\u2028",
    "\ud800",
    "\udfff",
    "x\udc80y",
    "😀",
    "👩‍👩‍👧‍👦",
    "\U0010ffff",
    "\r\n",
    "\t",
    "\x7f",
    "\x1b[31m",
    "<script>alert(1)</script>",
    "\"'><img src=x onerror=alert(1)>",
    "' OR 1=1 --",
    "%00",
    "%ED%A0%80",
    "../../etc/passwd",
    "..\\..\\",
    "{{7*7}}",
    "${7*7}",
    "null",
    "None",
    "NaN",
    "general",
    "GENERAL",
    "fuzzroom",
    "-1",
    "0",
    "1e309",
    "0x10",
    "1_000",
    " 7 ",
    "٣",
    "①",
    "1000000001",
    "-1000000000",
    "9" * 40,
    "//evil.example",
    "/chat",
    "javascript:alert(1)",
]
BOUNDARY_INTS = [
    0,
    1,
    -1,
    2,
    7,
    10**9,
    10**9 + 1,
    -(10**9),
    -(10**9) - 1,
    2**31 - 1,
    2**31,
    2**53 + 1,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    2**64,
    10**30,
    -(10**30),
]

_any_char = st.characters(codec=None, exclude_categories=())  # surrogates and controls too


@cache
def fuzz_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Strings a hostile client sends: any code point (lone surrogates too), specials, huge."""
    return st.one_of(
        st.text(_any_char, max_size=max_size),
        st.text(max_size=max_size),
        st.sampled_from(SPECIAL_STRINGS),
        st.lists(st.sampled_from(SPECIAL_STRINGS), min_size=1, max_size=6).map("".join),
        # Huge: far past every length limit (and at the 2000-character limit of a message).
        st.builds(
            lambda s, n: s * n,
            st.sampled_from(["a", "😀", "\u202e", "\x00", "9", "é"]),
            st.integers(0, 40_000),
        ),
        st.integers(1995, 2005).map(lambda n: "y" * n),
    )


@cache
def numbers() -> st.SearchStrategy:
    return st.one_of(
        st.sampled_from(BOUNDARY_INTS),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
    )


@cache
def json_leaves() -> st.SearchStrategy:
    return st.one_of(st.none(), st.booleans(), numbers(), fuzz_text())


def nested(depth: int, leaf) -> object:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"room": value}
    return value


@cache
def json_values() -> st.SearchStrategy:
    """Any JSON value: wrong types, NaN and infinities, nested lists and objects, deep nests."""
    return st.one_of(
        st.recursive(
            json_leaves(),
            lambda children: (
                st.lists(children, max_size=4)
                | st.dictionaries(
                    st.one_of(st.sampled_from(SOCKET_FIELDS), fuzz_text(8)), children, max_size=4
                )
            ),
            max_leaves=10,
        ),
        st.builds(nested, st.integers(1, 300), json_leaves()),
    )


@cache
def uuids() -> st.SearchStrategy[str]:
    return st.one_of(
        st.uuids().map(str), st.uuids().map(lambda u: u.hex.upper()), st.just(str(uuid.UUID(int=0)))
    )


@cache
def plausible(field: str) -> st.SearchStrategy:
    """Values close to valid for a known field, so the fuzzer also reaches the success paths."""
    names = st.one_of(
        st.sampled_from(["general", "GENERAL", "fuzzroom", "nope"]),
        st.from_regex(r"[A-Za-z0-9_-]{1,34}", fullmatch=True),
    )
    ints = st.one_of(st.integers(-3, 60), st.sampled_from(BOUNDARY_INTS))
    return {
        "room": names,
        "name": names,
        "username": names,
        "body": st.one_of(st.text(min_size=1, max_size=60), fuzz_text()),
        "client_id": uuids(),
        "id": ints,
        "after": ints,
        "before": ints,
        "limit": ints,
        "a": st.integers(-(10**9) - 2, 10**9 + 2),
        "b": st.integers(-(10**9) - 2, 10**9 + 2),
        "status": st.sampled_from(["online", "away", "offline", "ONLINE", ""]),
        "password": st.one_of(st.just("correct horse battery"), st.text(max_size=12)),
        "next": st.sampled_from(["/chat", "//evil.example", "https://evil.example/", "/\\evil"]),
    }.get(field, fuzz_text())


def as_http_text(value) -> str:
    """What a form or query carries for ``value`` (everything is text over HTTP)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


@cache
def http_values(field: str) -> st.SearchStrategy[str]:
    return st.one_of(
        plausible(field),
        fuzz_text(),
        numbers(),
        st.sampled_from(["true", "false", "null", "[]", "{}"]),
    ).map(as_http_text)


@cache
def http_pairs(fields: tuple[str, ...]) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Form or query fields: known names (repeated, or missing) and random ones."""
    known = st.one_of([st.tuples(st.just(f), http_values(f)) for f in fields])
    other = st.tuples(fuzz_text(12), http_values("?"))
    return st.lists(st.one_of(known, known, other), max_size=6)


def encode_pairs(pairs: list[tuple[str, str]]) -> str:
    """URL-encode as a client may: lone surrogates become their (invalid) UTF-8 bytes."""
    return urlencode(pairs, encoding="utf-8", errors="surrogatepass")


def encode_segment(value: str | bytes) -> str:
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    return quote(raw, safe="")


def path_values(converter) -> st.SearchStrategy:
    """A path parameter for ``converter``: plausible values, random text and raw bytes."""
    return _path_values(type(converter).__name__)


@cache
def _path_values(kind: str) -> st.SearchStrategy:
    if kind == "IntegerConverter":
        return st.one_of(
            st.integers(0, 60), st.sampled_from(BOUNDARY_INTS).map(abs), st.integers(min_value=0)
        ).map(str)
    if kind == "PathConverter":
        return st.one_of(
            st.sampled_from(
                ["css/app.css", "js/realtime.js", "../secret_key", "..%2f..%2fpyproject.toml"]
            ),
            fuzz_text(),
            st.binary(),
        )
    return st.one_of(plausible("room"), fuzz_text(), st.binary(max_size=12))


TOKEN = "CSRFTOKEN"  # replaced by the session's token when the request is sent
BODY_TYPES = [
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "application/json",
    "text/plain",
    "application/octet-stream",
    "application/x-www-form-urlencoded; charset=latin-1",
    "multipart/form-data; boundary=",
    "",
]


@st.composite
def http_requests(draw, rule, method: str) -> dict:
    """One request to ``rule`` with ``method``: path, query, body and headers, mostly with the
    session's CSRF token (``TOKEN`` stands for it) so the handler itself is reached."""
    token = TOKEN
    path = rule.rule
    for name, converter in rule._converters.items():
        value = draw(path_values(converter))
        if isinstance(value, str) and draw(st.booleans()):
            value = value.replace("/", "")  # stay on this route (an encoded / leaves it)
        path = re.sub(
            r"<(?:[^>:]+:)?" + re.escape(name) + ">",
            lambda _m, value=value: encode_segment(value),
            path,
            count=1,
        )
    query = draw(
        st.one_of(
            st.just(""),
            http_pairs(tuple(HTTP_FIELDS)).map(encode_pairs),
            st.binary(max_size=30).map(lambda b: quote(b, safe="=&")),
        )
    )
    headers = {}
    if draw(st.booleans()):
        headers["HX-Request"] = "true"
    headers["Accept"] = draw(
        st.sampled_from(
            ["text/html", "application/json", "*/*", "application/json;q=0.1, text/html", "\x00"]
        )
    )
    fields = draw(http_pairs(tuple(HTTP_FIELDS)))
    where = draw(st.sampled_from(["header", "header", "header", "form", "none", "wrong"]))
    if where == "header":
        headers["X-CSRFToken"] = token
    elif where == "form":
        fields.append(("csrf_token", token))
    elif where == "wrong":
        headers["X-CSRFToken"] = draw(st.sampled_from([token[:-2], token + "x", "", "null"]))
    body_kind = draw(
        st.sampled_from(["none", "form", "form", "form", "multipart", "json", "raw"])
        if method not in ("GET", "HEAD", "OPTIONS")
        else st.sampled_from(["none", "none", "none", "form", "raw"])
    )
    request = {"method": method, "path": path, "query": query, "headers": headers}
    if body_kind == "form":
        request["data"] = encode_pairs(fields).encode("ascii")
        request["content_type"] = "application/x-www-form-urlencoded"
    elif body_kind == "multipart":
        # The test client encodes multipart bodies itself: text must be UTF-8 encodable there.
        request["data"] = {
            k.encode("utf-8", "replace").decode(): v.encode("utf-8", "replace").decode()
            for k, v in fields
        }
    elif body_kind == "json":
        request["data"] = json.dumps(draw(json_values()))
        request["content_type"] = "application/json"
    elif body_kind == "raw":
        request["data"] = draw(st.binary(max_size=200))
        request["content_type"] = draw(st.sampled_from(BODY_TYPES))
    return request


def _with_token(value, token: str):
    if isinstance(value, str):
        return value.replace(TOKEN, token)
    if isinstance(value, bytes):
        return value.replace(TOKEN.encode(), token.encode())
    if isinstance(value, dict):
        return {k: _with_token(v, token) for k, v in value.items()}
    return value


def send_http(client, request: dict, token: str):
    """Send ``request`` with the session's CSRF ``token`` as a WSGI server hands it over: the
    path's raw bytes, undecoded."""
    raw_path = request["path"]
    kwargs = {k: _with_token(request[k], token) for k in ("data", "content_type") if k in request}
    return client.open(
        "/",
        method=request["method"],
        query_string=request["query"],
        headers=_with_token(request["headers"], token),
        # What gunicorn passes: the decoded path's bytes as latin-1, invalid UTF-8 included.
        environ_overrides={
            "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
            "RAW_URI": raw_path,
            "REQUEST_URI": raw_path,
        },
        **kwargs,
    )


@cache
def socket_payloads() -> st.SearchStrategy[dict | object]:
    """One event argument: an object with known fields (right, wrong or missing) and extra
    ones, or any other JSON value."""
    known = st.fixed_dictionaries(
        {},
        optional={k: st.one_of(plausible(k), plausible(k), json_values()) for k in SOCKET_FIELDS},
    )
    extra = st.dictionaries(fuzz_text(10), json_values(), max_size=3)
    objects = st.tuples(known, extra).map(lambda t: {**t[1], **t[0]})
    return st.one_of(objects, objects, objects, json_values())


@cache
def socket_args() -> st.SearchStrategy[list]:
    """The positional arguments of an emit: usually one, sometimes none or several."""
    return st.one_of(
        socket_payloads().map(lambda p: [p]),
        socket_payloads().map(lambda p: [p]),
        st.lists(socket_payloads(), min_size=0, max_size=3),
    )


def deep_json(depth: int, objects: bool) -> str:
    """JSON nested ``depth`` levels deep, as text: deeper than any encoder would produce."""
    return ('{"room":' * depth + "1" + "}" * depth) if objects else "[" * depth + "]" * depth


@cache
def raw_packets(events: tuple[str, ...]) -> st.SearchStrategy[str]:
    """Socket.IO packets as a client's websocket carries them, well formed or not: any type,
    attachment count, namespace and ack id, and a payload of valid, broken or deep JSON."""
    names = st.one_of(
        st.sampled_from(
            [*events, "connect", "disconnect", "connect_error", "message", "json", "*", ""]
        ),
        fuzz_text(10),
    )
    payload = st.one_of(
        st.tuples(names, st.lists(json_values(), max_size=3)).map(
            lambda t: json.dumps([t[0], *t[1]])
        ),
        json_values().map(json.dumps),
        json_values().map(json.dumps).map(lambda text: text[:-1]),  # cut short
        st.builds(deep_json, st.integers(1, 100_000), st.booleans()),
        st.text(max_size=30),
    )
    return st.tuples(
        st.one_of(st.sampled_from("0123456"), st.sampled_from(["7", "9", "x", "", " ", "٢"])),
        st.one_of(st.just(""), st.just(""), st.integers(0, 10**12).map(lambda n: f"{n}-")),
        st.one_of(
            st.just(""),
            st.just(""),
            st.sampled_from(["/,", "/nope,", "/?x=1,", "/x"]),
            fuzz_text(8).map(lambda t: f"/{t},"),
        ),
        st.one_of(st.just(""), st.integers(0, 10**120).map(str)),
        payload,
    ).map("".join)


# State as counts --------------------------------------------------------------------------

ANY = object()


def snapshot() -> dict:
    """What is stored, as counts (one query): compared before and after every case."""

    def count(model, *where):
        return select(func.count()).select_from(model).where(*where).scalar_subquery()

    row = db.session.execute(
        select(
            count(User),
            count(Room),
            count(Member),
            count(Message),
            count(Message, Message.deleted_at.is_not(None)),
            select(func.max(Message.edited_at)).scalar_subquery(),
            select(func.count(Message.id)).where(Message.edited_at.is_not(None)).scalar_subquery(),
            count(Row),
            select(TableTotals.count).where(TableTotals.id == 1).scalar_subquery(),
            select(TableTotals.total).where(TableTotals.id == 1).scalar_subquery(),
        )
    ).one()
    db.session.rollback()
    keys = (
        "users",
        "rooms",
        "members",
        "messages",
        "deleted",
        "last_edit",
        "edited",
        "rows",
        "totals_count",
        "totals_total",
    )
    return dict(zip(keys, row))


def check_changes(before: dict, after: dict, allowed: dict | None, what: str) -> None:
    """Only what ``allowed`` names may change, by one of its deltas (``ANY``: any change)."""
    if allowed is None:
        return
    for key, old in before.items():
        new = after[key]
        if new == old:
            continue
        permitted = allowed.get(key)
        if permitted is ANY:
            continue
        delta = new - old if isinstance(new, int) and isinstance(old, int) else "changed"
        assert permitted is not None and delta in permitted, (
            f"{what} changed {key}: {old!r} -> {new!r}; allowed: {allowed}"
        )


# The effects a successful request may have; anything else must stay as it was. A route not
# listed here may change nothing when it is read (GET/HEAD/OPTIONS); a new mutating route is
# fuzzed all the same but its successes are not checked until it is listed.
TOTALS = {"totals_count": ANY, "totals_total": ANY}
HTTP_EFFECTS = {
    "table.add_row": {"rows": (1,), **TOTALS},
    "table.delete_row": {"rows": (-1,), **TOTALS},
    "auth.register": {"users": (1,)},
    # Its creator is its first member.
    "chat.create_room": {"rooms": (1,), "members": (1,)},
    # Members post; viewing a room or posting makes nobody a member.
    "chat.post_message": {"messages": (0, 1)},
    "chat.join": {"members": (0, 1)},
    "chat.leave": {"members": (0, -1)},
    "chat.add_member": {"members": (1,)},
    "chat.remove_member": {"members": (-1,)},
    "chat.rename": {},
    "chat.archive": {},
    "chat.start_direct": {"rooms": (0, 1), "members": (0, 2)},
    "auth.change_password": {},
}
SOCKET_EFFECTS = {
    "chat:join": {},
    "chat:send": {"messages": (0, 1)},
    "chat:edit": {"last_edit": ANY, "edited": (0, 1)},
    "chat:delete": {"deleted": (1,)},
}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def http_effects(endpoint: str, method: str) -> dict | None:
    if endpoint in HTTP_EFFECTS:
        return HTTP_EFFECTS[endpoint]
    return {} if method in SAFE_METHODS else None


# Logs -------------------------------------------------------------------------------------


class ErrorLog(logging.Handler):
    """Collects ERROR records of the app, Socket.IO and Engine.IO (a handler that failed)."""

    LOGGERS = ("", "webapp", "socketio", "socketio.server", "engineio", "engineio.server")

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record not in self.records:
            self.records.append(record)

    def take(self) -> list[str]:
        found = [f"{r.name}: {r.getMessage()}\n{r.exc_text or ''}" for r in self.records]
        self.records.clear()
        return found

    def __enter__(self):
        for name in self.LOGGERS:
            logging.getLogger(name).addHandler(self)
        return self

    def __exit__(self, *exc):
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self)


# Sessions ---------------------------------------------------------------------------------

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
FUZZ_USER, FUZZ_PASSWORD = "fuzzer", "correct horse battery"


def page_token(client) -> str:
    """The CSRF token of the client's session, from a page, as a browser gets it."""
    page = client.get("/login").get_data(as_text=True)
    return CSRF_META.search(page).group(1)


def log_in(client, username: str = FUZZ_USER, password: str = FUZZ_PASSWORD) -> str:
    """Register ``username`` (or log in when it exists); the session's new CSRF token."""
    token = page_token(client)
    form = {"username": username, "password": password, "csrf_token": token}
    response = client.post("/register", data=form)
    if response.status_code != 303:
        response = client.post("/login", data={**form, "csrf_token": page_token(client)})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return page_token(client)


class FuzzSession:
    """A browser-like test client, anonymous or logged in as ``fuzzer``, with its CSRF token;
    ``reset`` brings it back after a request changed its session (a login, a logout)."""

    def __init__(self, app, logged_in: bool):
        self.app, self.logged_in = app, logged_in
        self.reset()

    IDENTITY = ("_user_id", "csrf_token")

    def reset(self) -> None:
        self.client = self.app.test_client()
        self.token = log_in(self.client) if self.logged_in else page_token(self.client)
        self.identity = self._identity()

    def _identity(self) -> tuple:
        with self.client.session_transaction() as session:
            return tuple(session.get(key) for key in self.IDENTITY)

    def check(self, response) -> None:
        """Back to the fuzzer's session if ``response`` logged in, out, or changed the token."""
        if (
            "session=" in response.headers.get("Set-Cookie", "")
            and self._identity() != self.identity
        ):
            self.reset()


def seed(app) -> None:
    """Things for the fuzzer to hit: rows, a second room, messages by ``fuzzer`` and others."""
    from webapp.auth import services as accounts
    from webapp.chat import services as chat
    from webapp.table import services as table

    with app.app_context():
        users = []
        for name in (FUZZ_USER, "other"):
            users.append(accounts.find_user(name) or accounts.register(name, FUZZ_PASSWORD))
        if chat.db.session.scalar(select(Room.id).where(Room.name_key == "fuzzroom")) is None:
            chat.create_room("fuzzroom")
        general = chat.find_room("general")
        for i in range(3):
            table.add_row(i, i * 10)
            for user in users:
                chat.post_message(user, general, f"seed {i} by {user.username}")
        db.session.remove()
