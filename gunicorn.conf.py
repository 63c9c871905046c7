"""gunicorn settings for production, all from the environment.

    gunicorn -c gunicorn.conf.py wsgi:app

Each worker is a gevent websocket worker holding many sockets; with more than one worker (or
host) a message queue relays every event to every worker.
"""

import os
import sys


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value.strip():
        return default
    try:
        return int(value)
    except ValueError:
        sys.exit(f"gunicorn.conf.py: {name}={value!r} is not a whole number.")


def _refuse(message: str) -> None:
    sys.exit(f"gunicorn.conf.py: refusing to start: {message}")


bind = [os.environ.get("BIND") or f"{os.environ.get('HOST', '127.0.0.1')}:{_int('PORT', 8000)}"]
workers = _int("WEB_CONCURRENCY", 1)
# gevent-websocket's worker: plain `-k gevent` fails the websocket upgrade once gevent-websocket
# is installed, and simple-websocket costs three times the memory per connection.
worker_class = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"
# Every open websocket holds a connection slot; the default 1000 starves HTTP at 1000 browsers.
worker_connections = _int("WORKER_CONNECTIONS", 10000)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GRACEFUL_TIMEOUT", 20)
keepalive = _int("KEEPALIVE", 5)
accesslog = os.environ.get("ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# The control socket has a fixed default path; several instances on one machine would collide.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket
# Each worker imports the app itself: the message queue's listener must not be forked.
preload_app = False

if workers < 1:
    _refuse("WEB_CONCURRENCY must be 1 or more.")
if workers > 1 and not os.environ.get("MESSAGE_QUEUE_URL"):
    _refuse(
        f"WEB_CONCURRENCY={workers} needs MESSAGE_QUEUE_URL (redis://... or amqp://...): "
        "without a message queue, events would not reach the clients of the other workers."
    )
if worker_connections < 100:
    _refuse("WORKER_CONNECTIONS must be at least 100: every open websocket holds one.")
