"""GET /healthz: is the database reachable, and the message queue when one is configured."""

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from . import redis_client
from .config import REDIS_SCHEMES
from .extensions import db, socketio
from .realtime.connections.worker import worker_id
from .realtime.transport import relay

bp = Blueprint("health", __name__)


def check_database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except Exception:  # noqa: BLE001 - any driver error means the database is not usable
        db.session.rollback()
        return "down"


def check_queue(url: str | None) -> str:
    if not url:
        return "off"
    try:
        if url.startswith(REDIS_SCHEMES):
            # No retries: a probe must answer within a few seconds.
            client = redis_client.client(url)
            try:
                client.ping()
            finally:
                client.close()
        else:
            import kombu

            with kombu.Connection(url, connect_timeout=relay.CONNECT_TIMEOUT) as connection:
                connection.ensure_connection(max_retries=0)  # one attempt
        return "ok"
    except Exception:  # noqa: BLE001 - unreachable, refused, auth: all mean the queue is down
        return "down"


@bp.get("/healthz")
def healthz():
    """Health of the database and the message queue; 503 when a configured one is down."""
    status = {
        "db": check_database(),
        "queue": check_queue(current_app.config["MESSAGE_QUEUE_URL"]),
    }
    healthy = status["db"] == "ok" and status["queue"] in ("ok", "off")
    return jsonify(status), 200 if healthy else 503


@bp.after_app_request
def served_by(response):
    """Name the worker that answered (an opaque id), to see how a balancer spreads requests."""
    response.headers["X-Worker"] = worker_id()
    return response


@socketio.on("server:worker")
def which_worker(*_args):
    """Sent by a client that wants to know which worker serves its socket (an opaque id)."""
    return {"ok": True, "worker": worker_id()}
