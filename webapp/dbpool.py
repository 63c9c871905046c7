"""The database pool hands out only idle connections that answer, and takes back only idle ones.

Greenlets get killed (a worker stopping after ``GRACEFUL_TIMEOUT`` kills what still runs) and
timed out (``gevent.Timeout``) at any point, including in the middle of a query or of the pool's
own ping. Two rules keep such a connection out of the next request:

- checkout: the connection must be idle (no query running, no transaction open) and answer
  ``SELECT 1``; otherwise the pool replaces it with a new one. This is the pre-ping, done here
  instead of by SQLAlchemy (``pool_pre_ping`` is off): psycopg's ping in SQLAlchemy 2.1.9 turns
  autocommit on and, in a ``finally``, off again, and when the greenlet is killed during the ping
  that ``finally`` meets a connection still running the query and raises ``ProgrammingError:
  can't change 'autocommit' now`` in place of the kill. The killed greenlet then did not end: its
  request went on and answered 500, and a ``gevent.Timeout`` never reached its ``with`` block.
  Here a kill or timeout passes through untouched, and SQLAlchemy discards the connection.
- return (the pool's "reset", instead of its plain rollback): a transaction left open or failed is
  rolled back; a connection in any other state (a query still running, closed, unknown) is closed
  and replaced, with one line in the log.

The engine options that go with this (``pool_pre_ping`` off, ``pool_reset_on_return`` None) are
``ENGINE_OPTIONS`` (``POOL_GUARDS`` of webapp/config.py, merged there into every engine's
options).
"""

import logging
import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

from .config import POOL_GUARDS as ENGINE_OPTIONS  # noqa: F401  (the options for these guards)

log = logging.getLogger(__name__)


IDLE, IN_TRANSACTION, CLOSED = "idle", "in a transaction", "closed"


def install(engine: Engine) -> None:
    """Guard ``engine``'s pool (created with ``ENGINE_OPTIONS``)."""
    driver_error = engine.dialect.loaded_dbapi.Error

    @event.listens_for(engine, "checkout")
    def ping(dbapi_connection, record, proxy) -> None:
        state = connection_state(dbapi_connection)
        if state != IDLE:
            if state != CLOSED:  # closed: the database went away, which the README covers
                log.warning("Replaced a pooled database connection that was %s", state)
            raise DisconnectionError(f"pooled connection was {state}")
        # psycopg: the ping runs outside any transaction, so it costs one round trip.
        autocommit = getattr(dbapi_connection, "autocommit", None)
        try:
            if autocommit is False:
                dbapi_connection.autocommit = True
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
        except driver_error as error:  # the connection is gone: the pool makes a new one
            raise DisconnectionError(str(error).strip()) from error
        # Only after a ping that completed: a kill or a timeout during it goes on up as it is.
        if autocommit is False:
            dbapi_connection.autocommit = False

    @event.listens_for(engine, "reset")
    def reset(dbapi_connection, record, reset_state) -> None:
        if reset_state.terminate_only:  # being closed anyway
            return
        state = connection_state(dbapi_connection)
        if state == IN_TRANSACTION:
            try:
                dbapi_connection.rollback()
                return
            except driver_error as error:
                state = f"failing to roll back ({str(error).strip()})"
        if state != IDLE:
            log.warning("Discarded a database connection returned %s", state)
            record.invalidate()


def connection_state(dbapi_connection) -> str:
    """``IDLE``, ``IN_TRANSACTION`` or a few words on what else the connection is doing."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        return IN_TRANSACTION if dbapi_connection.in_transaction else IDLE
    info = getattr(dbapi_connection, "info", None)
    status = getattr(info, "transaction_status", None)  # psycopg's pq.TransactionStatus
    if status is None:
        return IDLE  # a driver that cannot tell: as SQLAlchemy's own ping would
    if dbapi_connection.closed or getattr(dbapi_connection, "broken", False):
        return CLOSED
    if status.name == "IDLE":
        return IDLE
    if status.name in ("INTRANS", "INERROR"):
        return IN_TRANSACTION
    if status.name == "ACTIVE":
        return "still running a query"
    return f"in transaction status {status.name}"
