"""Kill and time out greenlets in the middle of requests, then see what the next requests get.

    python tests/e2e/greenlet_kills.py DATABASE_URL   # prints one JSON object

Runs the app as a gunicorn gevent worker does (monkey-patched first), on an already migrated
database, with a pool of one connection so that every request after a kill gets the connection
the killed greenlet had, or its replacement. On PostgreSQL the database is reached through a
proxy that can hold traffic, so that a greenlet can be caught in the pool's ping before a query.
Driven by tests/e2e/test_fault_greenlet_kill.py.
"""

from gevent import monkey

monkey.patch_all()  # before anything imports socket or threading, as a gevent worker does

import json
import random
import sqlite3
import sys
import time

import gevent
from gevent.event import Event
from gevent.server import StreamServer
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from webapp import create_app
from webapp.config import Config, engine_options
from webapp.extensions import db
from webapp.table.models import Row

HELD_A = 424242  # a row written by a greenlet that is killed before it commits


class HoldingProxy:
    """Forwards TCP to the database; ``hold()`` stops forwarding (connections stay open)."""

    def __init__(self, host: str, port: int):
        self.upstream = (host, port)
        self.open = Event()
        self.open.set()
        self.held = 0  # bytes from the app waiting while held
        self.server = StreamServer(("127.0.0.1", 0), self._serve)
        self.server.start()
        self.port = self.server.server_port

    def hold(self) -> None:
        self.held = 0
        self.open.clear()

    def release(self) -> None:
        self.open.set()

    def _serve(self, client, _address) -> None:
        upstream = gevent.socket.create_connection(self.upstream)
        pumps = [gevent.spawn(self._pump, client, upstream, True)]
        pumps.append(gevent.spawn(self._pump, upstream, client, False))
        gevent.joinall(pumps, count=1)
        for sock in (client, upstream):
            sock.close()
        gevent.killall(pumps)

    def _pump(self, source, target, from_app: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_app and not self.open.is_set():
                    self.held += len(data)
                self.open.wait()
                target.sendall(data)
        except OSError:
            pass


def make_app(url: str):
    options = {**engine_options(url), "pool_size": 1, "max_overflow": 0, "pool_timeout": 5}

    class Settings(Config):
        SECRET_KEY = "greenlet-kills"
        SQLALCHEMY_DATABASE_URI = url
        SQLALCHEMY_ENGINE_OPTIONS = options
        MESSAGE_QUEUE_URL = PRESENCE_URL = RATELIMIT_STORAGE_URL = None
        RATELIMIT_ENABLED = False
        WTF_CSRF_ENABLED = False
        # The outbox relay keeps a connection of its own: the pool of one is the requests'.
        OUTBOX_RELAY = False

    return create_app(Settings)


def ended(greenlet) -> str:
    """How a greenlet that was killed or timed out ended: as it should, or with an answer."""
    if greenlet.exception is not None:
        return type(greenlet.exception).__name__
    if isinstance(greenlet.value, gevent.GreenletExit):
        return "GreenletExit"
    status = getattr(greenlet.value, "status_code", None)
    return f"answered {status}" if status else f"returned {greenlet.value!r}"


def next_requests(app) -> dict:
    """What the requests after a kill get, and the state of the pool after them."""
    client = app.test_client()
    statuses = [client.get(f"/table/rows?after={2**31 - 1}").status_code for _ in range(3)]
    statuses.append(client.post("/table/rows", data={"a": "1", "b": "2"}).status_code)
    with app.app_context():
        held = db.session.scalar(select(Row.id).where(Row.a == HELD_A))
        db.session.remove()
        checked_out = db.engine.pool.checkedout()
    return {"statuses": statuses, "checked_out": checked_out, "uncommitted_row_stored": bool(held)}


def state(dbapi_connection) -> str:
    """What the driver says of a connection: IDLE, INTRANS, ACTIVE, ... (SQLite: two of them)."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        return "INTRANS" if dbapi_connection.in_transaction else "IDLE"
    return dbapi_connection.info.transaction_status.name


def returned(app, make_busy) -> dict:
    """Return a connection to the pool in the state ``make_busy`` leaves it in, then check out
    the next one: the same connection, idle, or a new one."""
    with app.app_context():
        fairy = db.engine.raw_connection()
        dbapi_connection = fairy.dbapi_connection
        make_busy(dbapi_connection)
        result = {"returned": state(dbapi_connection)}
        fairy.close()
        again = db.engine.raw_connection()
        result["reused"] = again.dbapi_connection is dbapi_connection
        result["handed_out"] = state(again.dbapi_connection)
        again.close()
    return {**result, **next_requests(app)}


def run(app, spawn_request, interrupt, wait_until_stuck) -> dict:
    greenlet = gevent.spawn(spawn_request)
    wait_until_stuck()
    interrupt(greenlet)
    greenlet.join(10)
    return {"ended": ended(greenlet) if greenlet.dead else "still running"}


def main(url: str) -> dict:
    results = {}
    proxy = None
    if url.startswith("postgresql"):
        parsed = make_url(url)
        proxy = HoldingProxy(parsed.host, parsed.port or 5432)
        url = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    app = make_app(url)
    client = app.test_client()
    assert client.get("/table/rows?after=0").status_code == 200  # one pooled connection

    def kill(greenlet):
        greenlet.kill(block=False)

    def nothing(_greenlet):  # a timeout inside the greenlet does it
        pass

    def pause(seconds):
        return lambda: gevent.sleep(seconds)

    # A request's transaction is open (a row written, not committed) when its greenlet dies.
    def hold_a_transaction():
        with app.app_context():
            db.session.add(Row(a=HELD_A, b=0, sum=HELD_A))
            db.session.flush()
            gevent.sleep(30)
            db.session.commit()

    results["kill with a transaction open"] = run(app, hold_a_transaction, kill, pause(0.5))
    results["kill with a transaction open"].update(next_requests(app))

    def timed_transaction():
        with gevent.Timeout(0.5):
            hold_a_transaction()

    results["timeout with a transaction open"] = run(app, timed_transaction, nothing, pause(0))
    results["timeout with a transaction open"].update(next_requests(app))

    if proxy is not None:

        def slow_query():
            with app.app_context():
                db.session.execute(text("SELECT pg_sleep(30)"))

        results["kill during a query"] = run(app, slow_query, kill, pause(0.5))
        results["kill during a query"].update(next_requests(app))

        def timed_query():
            with gevent.Timeout(0.5):
                slow_query()

        results["timeout during a query"] = run(app, timed_query, nothing, pause(0))
        results["timeout during a query"].update(next_requests(app))

        # Traffic held: the next request's first step, the pool's ping, waits on the wire.
        def held_ping():
            proxy.hold()
            deadline = time.monotonic() + 10
            while not proxy.held and time.monotonic() < deadline:
                gevent.sleep(0.01)

        def request():
            return app.test_client().get("/table/rows?after=0")

        def timed_request():
            with gevent.Timeout(0.5):
                return request()

        for name, target, interrupt in (
            ("kill during the ping", request, kill),
            ("timeout during the ping", timed_request, nothing),
        ):
            results[name] = run(app, target, interrupt, held_ping)
            results[name]["ping_was_held"] = proxy.held > 0
            proxy.release()
            results[name].update(next_requests(app))

    # Returned to the pool by code that used the driver's connection directly.
    def open_a_transaction(dbapi_connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT count(*) FROM table_rows")
        if isinstance(dbapi_connection, sqlite3.Connection):
            cursor.execute("UPDATE table_rows SET a = a WHERE id = 0")  # sqlite: a write begins
        cursor.close()

    results["returned inside a transaction"] = returned(app, open_a_transaction)
    if proxy is not None:

        def start_a_query(dbapi_connection):
            dbapi_connection.pgconn.send_query(b"SELECT pg_sleep(1)")

        results["returned while running a query"] = returned(app, start_a_query)

    results["storm"] = storm(app)
    return results


def storm(app, seconds: float = 4, clients: int = 10) -> dict:
    """Clients reading and writing in a loop while greenlets are killed and timed out at random
    moments; killed ones must end, and the pool must serve the requests after."""

    def loop():
        client = app.test_client()
        while True:
            client.get(f"/table/rows?after={2**31 - 1}")  # one query, nothing to render
            gevent.sleep(0)  # as a server does, reading the next request from its socket
            client.post("/table/rows", data={"a": "3", "b": "4"})
            gevent.sleep(0)

    def timed_loop():
        with gevent.Timeout(random.uniform(0.005, 0.2)):
            loop()

    interrupted = []
    running = [gevent.spawn(loop) for _ in range(clients)]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        gevent.sleep(random.uniform(0.001, 0.03))
        index = random.randrange(clients)
        running[index].kill(block=False)
        interrupted.append(running[index])
        running[index] = gevent.spawn(random.choice([loop, timed_loop]))
    interrupted += running
    gevent.killall(running, block=False)
    gevent.joinall(interrupted, timeout=15)
    return {
        "interrupted": len(interrupted),
        "still_running": sum(1 for greenlet in interrupted if not greenlet.dead),
        **next_requests(app),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
