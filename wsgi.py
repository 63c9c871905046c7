"""WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app`, `flask --app wsgi run`.

gunicorn's gevent websocket worker monkey-patches before it imports this module; run directly
(`python wsgi.py`) the module patches first and serves with gevent itself.
"""

if __name__ == "__main__":
    from gevent import monkey

    monkey.patch_all()

from webapp import create_app  # noqa: E402
from webapp.extensions import socketio  # noqa: E402

app = create_app()

if __name__ == "__main__":
    import os

    socketio.run(app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", 8000)))
