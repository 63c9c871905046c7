"""PostgreSQL goes away under a running gunicorn: requests that need it fail fast with 503 and a
readable answer (page, htmx fragment or JSON), no worker hangs, and everything recovers by
itself once the database is back."""

import concurrent.futures
import time

import psycopg
import pytest
from sqlalchemy.engine import make_url

from .clients import BrowserSession, logged_in
from .faults import TcpProxy, children, timed_request, wait_healthy
from .server import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

JSON = {"Accept": "application/json"}
HTMX = {"HX-Request": "true"}
READABLE = "The database is not answering just now"


@pytest.fixture
def proxied_postgres(postgres_url):
    """(URL through a TCP proxy the test can cut, the proxy, the direct URL)."""
    url = make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    yield (
        url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        proxy,
        postgres_url,
    )
    proxy.stop()


def count_rows(direct_url: str) -> set[int]:
    plain = make_url(direct_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM table_rows")}


def test_requests_fail_fast_with_503_while_postgres_is_down_and_recover_by_themselves(
    tmp_path, proxied_postgres
):
    database_url, proxy, direct_url = proxied_postgres
    server = LiveServer(
        {"SECRET_KEY": "fault-secret", "DATABASE_URL": database_url, "MESSAGE_QUEUE_URL": ""},
        log_path=tmp_path / "gunicorn.log",
    )
    server.migrate()
    server.start()
    try:
        run_outage(server, proxy, direct_url)
    finally:
        server.stop()


def run_outage(server: LiveServer, proxy: TcpProxy, direct_url: str) -> None:
    url = server.url
    worker = children(server.process.pid)
    assert len(worker) == 1
    user = logged_in(url, "faulty")
    anon = BrowserSession(url)
    acknowledged: set[int] = set()

    def post_row(a: int) -> tuple:
        response, took = timed_request(
            "POST",
            url + "/table/rows",
            data={"a": str(a), "b": "1"},
            headers={"X-CSRFToken": anon.token, **JSON},
            cookies=anon.http.cookies,
        )
        if response is not None and response.status_code == 201:
            acknowledged.add(response.json()["id"])
        return response, took

    assert post_row(1)[0].status_code == 201

    # What a user, htmx and a script see while the database is down (refused) or unreachable
    # (connections accepted and never answered: only the connect timeout ends the wait).
    probes = {
        "GET / (page)": lambda: timed_request("GET", url + "/", cookies=anon.http.cookies),
        "GET /table/rows?after=0 (htmx)": lambda: timed_request(
            "GET", url + "/table/rows?after=0", headers=HTMX, cookies=anon.http.cookies
        ),
        "POST /table/rows (JSON)": lambda: post_row(2),
        "POST /table/rows (htmx)": lambda: timed_request(
            "POST",
            url + "/table/rows",
            data={"a": "3", "b": "1"},
            headers={"X-CSRFToken": anon.token, **HTMX},
            cookies=anon.http.cookies,
        ),
        "GET /chat/general (logged in)": lambda: timed_request(
            "GET", url + "/chat/general", cookies=user.http.cookies
        ),
        "POST /chat/general/messages (JSON)": lambda: timed_request(
            "POST",
            url + "/chat/general/messages",
            data={"body": "lost?"},
            headers={"X-CSRFToken": user.token, **JSON},
            cookies=user.http.cookies,
        ),
        "GET /healthz": lambda: timed_request("GET", url + "/healthz"),
    }
    figures = []
    for mode in ("refuse", "hang"):
        proxy.cut(mode)
        cut_at = time.monotonic()
        # All at once: in "hang" mode each waits for the connect timeout.
        with concurrent.futures.ThreadPoolExecutor(len(probes)) as pool:
            answers = dict(zip(probes, pool.map(lambda probe: probe(), probes.values())))
        for name, (response, took) in answers.items():
            assert response is not None, f"{mode}: {name} got no answer"
            figures.append((mode, name, response.status_code, took))
            assert response.status_code == 503, (mode, name, response.status_code, response.text)
            assert took < 12, f"{mode}: {name} took {took:.1f} s"
            kind = response.headers["Content-Type"]
            if name == "GET /healthz":
                assert response.json()["db"] == "down"
            elif "JSON" in name:
                assert kind.startswith("application/json")
                assert response.json() == {"ok": False, "error": response.json()["error"]}
                assert READABLE in response.json()["error"]
            else:
                assert kind.startswith("text/html") and READABLE in response.text
                if "htmx" in name:
                    assert "<html" not in response.text  # a fragment, not a page
                else:
                    assert "<html" in response.text
                assert response.headers["Retry-After"] == "5"
        # Many at once: every one still answers 503 within the connect timeout, none hangs.
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            burst = list(pool.map(lambda a: post_row(a), range(100, 120)))
        statuses = {r.status_code if r is not None else None for r, _ in burst}
        slowest = max(took for _, took in burst)
        figures.append((mode, "20 POSTs at once", statuses, slowest))
        assert statuses == {503}, statuses
        assert slowest < 20, f"{mode}: a POST waited {slowest:.1f} s"
        proxy.restore()
        recovered = wait_healthy(url, 30)
        figures.append((mode, "recovered after restore", 200, recovered))
        assert time.monotonic() - cut_at < 90
        # Back by itself: the pool drops its dead connections (pre-ping) and opens new ones.
        for path in ("/", "/chat/general"):
            response, _ = timed_request("GET", url + path, cookies=user.http.cookies)
            assert response.status_code == 200, (mode, path, response.text[:300])
        response, _ = post_row(4)
        assert response.status_code == 201

    # The one worker served the whole outage: gunicorn never had to kill a hung one.
    assert children(server.process.pid) == worker
    stored = count_rows(direct_url)
    print("\nPostgreSQL outage (mode, request, status, seconds):")
    for mode, name, status, took in figures:
        print(f"  {mode:7} {name:36} {status!s:6} {took:6.2f}")
    print(
        f"rows: {len(acknowledged)} acknowledged, {len(stored)} stored, "
        f"{len(stored - acknowledged)} stored without acknowledgement, "
        f"{len(acknowledged - stored)} acknowledged and lost"
    )
    assert stored == acknowledged
