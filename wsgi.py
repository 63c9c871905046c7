"""WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app`, `flask --app wsgi run`.

gunicorn's gevent websocket worker monkey-patches before it imports this module; run directly
(`python wsgi.py`) the module patches first and serves with gevent itself.
"""

if __name__ == "__main__":
    from gevent import monkey

    monkey.patch_all()

import gc

from webapp import create_app
from webapp.extensions import socketio

app = create_app()

# The cyclic garbage collector, tuned for a worker that holds thousands of sockets: every event
# wakes one writer greenlet per socket, and what each leaves behind until the next event counts
# as young objects. With the default thresholds a collection ran about once per event at 1000
# sockets (some 6% of the CPU per event) and a full one stalled every socket for ~150 ms now and
# then. What exists once the app is loaded is never garbage: frozen, later collections skip it.
gc.collect()
gc.freeze()
gc.set_threshold(50_000, 20, 100)

if __name__ == "__main__":
    from webapp.config import Server

    socketio.run(app, host=Server.HOST, port=Server.PORT)
