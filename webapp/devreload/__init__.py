"""Hot reload for development: registered only when the app runs in debug mode.

`flask --app wsgi run --debug` (`make dev`) serves the app with Werkzeug and its reloader, and
Flask-SocketIO in threading mode (real WebSockets through simple-websocket). On top of that:

- editing a template, a stylesheet or a script under ``static/`` (not ``static/vendor``) makes
  every open page reload: a watcher notices the change within a quarter of a second and sends
  ``dev:reload`` through the socket;
- editing Python restarts the server (Werkzeug's reloader); each server process has its own
  boot id, the page knows the one it was rendered by, and when its socket reconnects to a
  process with another id it reloads.

Nothing of it exists in production: without debug this blueprint, its route ``/_dev/boot``,
its script and the script tag in the page are not there at all.
"""

import threading
import uuid
from pathlib import Path

from flask import Blueprint, Flask, current_app, jsonify, url_for

from ..extensions import socketio
from ..realtime import notify

bp = Blueprint("devreload", __name__, static_folder="static", static_url_path="/_dev/static")

# A new value in every process: the reloader's restart after a Python edit is a new process.
BOOT_ID = uuid.uuid4().hex
POLL_SECONDS = 0.25
WATCHED_SUFFIXES = {".html", ".jinja", ".css", ".js", ".svg", ".png", ".ico", ".json"}


@bp.get("/_dev/boot")
def boot():
    """The id of this server process; pages compare it with theirs after a reconnect."""
    return jsonify(boot_id=BOOT_ID)


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    watcher = Watcher(_watched_folders(app))

    @app.context_processor
    def dev_reload_context():
        return {
            "dev_reload": {
                "boot_id": BOOT_ID,
                "boot_url": url_for("devreload.boot"),
                "script_url": url_for("devreload.static", filename="devreload.js"),
            }
        }

    @app.before_request
    def start_watching():
        # Lazily, in the process that serves: with the reloader, the parent process also
        # builds the app but never serves; tests build debug apps and must not start threads.
        if not current_app.testing:
            watcher.start()


def _watched_folders(app: Flask) -> list[Path]:
    folders = [Path(app.root_path) / (app.template_folder or "templates")]
    if app.static_folder:
        folders.append(Path(app.static_folder))
    folders.append(Path(bp.static_folder))
    return folders


def snapshot(folders: list[Path]) -> dict[Path, int]:
    """Modification times of the files a page is made of (vendored libraries excluded)."""
    found = {}
    for folder in folders:
        for path in folder.rglob("*"):
            if path.suffix in WATCHED_SUFFIXES and "vendor" not in path.relative_to(folder).parts:
                try:
                    found[path] = path.stat().st_mtime_ns
                except OSError:  # deleted between listing and stat
                    pass
    return found


def changed(before: dict[Path, int], after: dict[Path, int]) -> list[Path]:
    """Files added, removed or modified between two snapshots."""
    return sorted(
        path for path in before.keys() | after.keys() if before.get(path) != after.get(path)
    )


class Watcher:
    """Polls the watched folders and sends ``dev:reload`` when a file changed."""

    def __init__(self, folders: list[Path]):
        self.folders = folders
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        socketio.start_background_task(self._run)

    def _run(self) -> None:
        current = snapshot(self.folders)
        while True:
            socketio.sleep(POLL_SECONDS)
            latest = snapshot(self.folders)
            paths = changed(current, latest)
            current = latest
            if paths:
                notify("dev:reload", {"paths": [str(path) for path in paths]})
