"""The benchmark's Flask-SocketIO reference: the least a push app on this stack does.

    gunicorn -c gunicorn.conf.py bench.reference.flask_push:app    (bench/run.py starts it)

The same shape as the app's table, without a database, accounts or limits, so that what the
app costs above the stack itself shows as a ratio in the same run. `GET /` sets a session
cookie and puts a CSRF token in the page, as the app's `/` does, so the load generator's
clients behave the same; `POST /table/rows` (a, b, and the token) emits one `table:row` to
every socket, with an html fragment padded to the size of the app's (``PAYLOAD_BYTES``, the
JSON size of the app's payload, measured by bench/run.py); `GET /table/rows` renders the newest
rows this worker emitted. Several workers relay through ``MESSAGE_QUEUE_URL`` as the app does.
"""

import gc
import hmac
import itertools
import json
import os
import secrets
from collections import deque
from datetime import UTC, datetime

from flask import Flask, abort, jsonify, render_template, request, session
from flask_socketio import SocketIO

PAGE_SIZE = 50

app = Flask(__name__)
app.secret_key = os.environ["SECRET_KEY"]
socketio = SocketIO(
    app,
    message_queue=os.environ.get("MESSAGE_QUEUE_URL") or None,
    channel=os.environ.get("SOCKETIO_CHANNEL") or "flask-socketio",
    # Websocket only, like the app: no long-polling sessions.
    transports=["websocket"],
)
payload_bytes = int(os.environ.get("PAYLOAD_BYTES") or 0)
ids = itertools.count(1)
newest: deque[dict] = deque(maxlen=PAGE_SIZE)


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def padded(payload: dict) -> dict:
    """Pad ``html`` with a comment until the JSON payload is ``payload_bytes`` long."""
    short = payload_bytes - len(json.dumps(payload, separators=(",", ":")).encode()) - 7
    if short > 0:
        payload["html"] += f"<!--{'.' * short}-->"
    return payload


@app.get("/")
def index():
    """The page: a session cookie and a CSRF token, as the app's table page gives."""
    return render_template("page.html", token=csrf_token(), rows=list(newest))


@app.get("/table/rows")
def rows():
    """The newest rows this worker emitted, as a fragment."""
    return render_template("rows.html", rows=list(newest))


@app.post("/table/rows")
def add_row():
    """Emit a row to every socket: the app's POST /table/rows without the database."""
    sent = request.headers.get("X-CSRFToken") or request.form.get("csrf_token") or ""
    if not hmac.compare_digest(sent, session.get("csrf", "")):
        abort(400, description="The CSRF token is missing or wrong.")
    try:
        a, b = int(request.form["a"]), int(request.form["b"])
    except (KeyError, ValueError):
        abort(422, description="a and b must be whole numbers.")
    row = {
        "id": next(ids),
        "a": a,
        "b": b,
        "sum": a + b,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "user": None,
    }
    newest.appendleft(row)
    socketio.emit("table:row", padded({**row, "html": render_template("row_added.html", row=row)}))
    return jsonify(ok=True, **row), 201


@app.get("/healthz")
def healthz():
    """Up as soon as it answers: there is no database to check."""
    return jsonify(ok=True)


@app.after_request
def served_by(response):
    """The worker that answered, as the app names it: the warm-up reaches every worker."""
    response.headers["X-Worker"] = str(os.getpid())
    return response


@socketio.on("connect")
def on_connect(*_auth):
    """Every socket is welcome (the app checks limits and the session here)."""
    return True


# The same collector tuning as wsgi.py, so that the ratio compares what the app does per event,
# not how often the collector runs.
gc.collect()
gc.freeze()
gc.set_threshold(50_000, 20, 100)
