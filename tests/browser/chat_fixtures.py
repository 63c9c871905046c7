"""One gunicorn for all the chat tests of a module: starting one costs seconds on a busy machine.

The tests of a module share it, so each uses users and rooms of its own (``unique_name``).
A module may set ``SERVER_ENV = {...}`` for extra environment. When a test fails, the server
log so far is saved with its artifacts.
"""

import itertools
import shutil

import pytest

from ..e2e.server import LiveServer
from .conftest import artifact_dir, has_failed

_names = itertools.count(1)


def unique_name(prefix: str) -> str:
    """A username or room name no other test of this session uses."""
    return f"{prefix}{next(_names)}"


@pytest.fixture(scope="module")
def module_chat_server(browser, migrated_sqlite, tmp_path_factory, request):
    folder = tmp_path_factory.mktemp("chat-server")
    database = folder / "chat.db"
    shutil.copy(migrated_sqlite, database)
    server = LiveServer(
        {
            "SECRET_KEY": "browser-secret",
            "DATABASE_URL": f"sqlite:///{database}",
            "MESSAGE_QUEUE_URL": "",
            **getattr(request.module, "SERVER_ENV", {}),
        },
        log_path=folder / "gunicorn-chat.log",
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def chat_server(module_chat_server, request):
    """The module's server (gunicorn, gevent websocket worker, SQLite, strict CSP)."""
    yield module_chat_server
    if has_failed(request.node) and module_chat_server.log_path.exists():
        shutil.copy(module_chat_server.log_path, artifact_dir(request.node) / "gunicorn-chat.log")
