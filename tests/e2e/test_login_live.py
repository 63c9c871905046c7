"""Logins on a real gunicorn server (production password hashing): a refused login costs the
same time and gives the same answer whether the username exists or not, for every kind of bad
input; a stranger's failed guesses do not lock a user out of a browser they logged in from."""

import random
import re
import statistics
import time

import pytest
import requests

from .clients import BrowserSession, logged_in
from .conftest import sqlite_server

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
CSRF_TOKEN = re.compile(r'"[\w-]{20,}\.[\w-]+\.[\w-]+"')  # signed anew on every page
COOKIE_VALUE = re.compile(r"=[^;]*")
# Rounds of timed attempts per kind of bad input. Each round times an existing and an unknown
# username back to back in random order, so a load spike from other processes hits both sides.
ROUNDS = 9
# The median over the rounds of (existing / unknown) must lie within this factor of 1. Before
# the fix, a password over the length limit was refused about 17 times faster for an existing
# user (10 ms against 167 ms here: no hash at all).
SAME_COST = 1.5

EXISTING, UNKNOWN = "alice", "zelda"  # the same length, so answers can be compared byte for byte
KINDS = {
    "too long": (EXISTING, UNKNOWN, "x" * 1025),
    "too short": (EXISTING, UNKNOWN, "short"),
    "empty": (EXISTING, UNKNOWN, ""),
    "wrong": (EXISTING, UNKNOWN, "wrong password!"),
    "other case and spaces": (" ALICE ", " ZELDA ", "wrong password!"),
    # A name no account can have, against the existing user with the same wrong password.
    "malformed username": (EXISTING, "al!ce", "wrong password!"),
}


def attempt(session: BrowserSession, username: str, password: str) -> tuple[float, dict]:
    """POST /login as a form does; (seconds taken, what the client could observe)."""
    data = {"username": username, "password": password, "csrf_token": session.token}
    started = time.perf_counter()
    response = session.http.post(
        session.base_url + "/login", data=data, allow_redirects=False, timeout=30
    )
    elapsed = time.perf_counter() - started
    return elapsed, observed(response, username)


def observed(response: requests.Response, username: str) -> dict:
    """Status, body, headers and cookies, with what legitimately differs taken out: the
    per-page CSRF signature, the echoed username, the date and cookie values."""
    name = username.strip()
    body = CSRF_TOKEN.sub('"TOKEN"', response.text).replace(name, "NAME")
    headers = {
        key.lower(): COOKIE_VALUE.sub("=VALUE", value, count=1)
        if key.lower() == "set-cookie"
        else value
        for key, value in response.headers.items()
        if key.lower() not in ("date", "content-length")
    }
    return {
        "status": response.status_code,
        "body": body,
        "headers": headers,
        "cookies": sorted(cookie.name for cookie in response.cookies),
    }


@pytest.fixture
def server(tmp_path):
    with sqlite_server(tmp_path) as server:
        yield server


def test_refused_logins_cost_the_same_and_answer_the_same_for_unknown_users(server):
    logged_in(server.url, EXISTING, PASSWORD)
    session = BrowserSession(server.url)
    attempt(session, UNKNOWN, "warm up the dummy hash")
    times = {kind: {"existing": [], "unknown": []} for kind in KINDS}
    answers = {kind: {"existing": [], "unknown": []} for kind in KINDS}
    for _ in range(ROUNDS):
        for kind, (existing, unknown, password) in KINDS.items():
            sides = [("existing", existing), ("unknown", unknown)]
            random.shuffle(sides)
            for side, username in sides:
                elapsed, answer = attempt(session, username, password)
                times[kind][side].append(elapsed)
                answers[kind][side].append(answer)
    report, ratios = [], {}
    for kind in KINDS:
        existing, unknown = times[kind]["existing"], times[kind]["unknown"]
        # Paired by round: both sides of a pair ran back to back, under the same load.
        ratios[kind] = statistics.median(e / u for e, u in zip(existing, unknown))
        report.append(
            f"{kind}: existing {statistics.median(existing) * 1000:.1f} ms, unknown "
            f"{statistics.median(unknown) * 1000:.1f} ms, paired ratio {ratios[kind]:.2f}"
        )
    print("\nmedian time of a refused login:\n  " + "\n  ".join(report))
    for kind in KINDS:
        assert 1 / SAME_COST < ratios[kind] < SAME_COST, report
        # Every answer of the kind is the same, whoever was named.
        first = answers[kind]["existing"][0]
        assert first["status"] == 422, first
        assert "Wrong username or password." in first["body"]
        for answer in answers[kind]["existing"] + answers[kind]["unknown"]:
            assert answer == first, kind
    # And the right password still logs in.
    elapsed, answer = attempt(session, EXISTING, PASSWORD)
    assert answer["status"] == 303


def login_form(session: BrowserSession, username: str, password: str) -> requests.Response:
    data = {"username": username, "password": password, "csrf_token": session.token}
    return session.http.post(
        session.base_url + "/login", data=data, allow_redirects=False, timeout=30
    )


def test_a_strangers_guesses_do_not_lock_bob_out_of_his_own_browser(tmp_path):
    with sqlite_server(
        tmp_path,
        RATELIMIT_LOGIN_PER_USERNAME="3 per minute",
        RATELIMIT_LOGIN_PER_DEVICE="3 per minute",
    ) as server:
        bobs_browser = logged_in(server.url, "bob", PASSWORD)
        [cookie] = [c for c in bobs_browser.http.cookies if c.name == "login_device"]
        assert (
            cookie.has_nonstandard_attr("HttpOnly") and cookie.expires > time.time() + 300 * 86400
        )
        bobs_browser.post("/logout", {}, allow_redirects=False)
        bobs_browser.load("/login")

        stranger = BrowserSession(server.url)
        for i in range(3):
            assert login_form(stranger, "bob", f"guess number {i}").status_code == 422
        refused = login_form(stranger, "bob", "guess number 4")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1

        # A browser bob never logged in from waits, and is told why and for how long.
        fresh = login_form(BrowserSession(server.url), "bob", PASSWORD)
        assert fresh.status_code == 429
        assert "Too many failed logins for this username" in fresh.text
        assert "Try again in" in fresh.text and 1 <= int(fresh.headers["Retry-After"]) <= 60

        # The browser bob logged in from before logs in, the stranger's guesses notwithstanding.
        welcome = login_form(bobs_browser, "bob", PASSWORD)
        assert welcome.status_code == 303, welcome.text[:300]
        assert 'data-user="bob"' in bobs_browser.load("/chat")
