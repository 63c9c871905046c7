"""Real-browser fixtures: Debian's Chromium driven by Playwright against gunicorn.

- ``browser``: one Chromium for the whole session (in this folder it stands in for the
  test-client ``browser`` helper of ``tests/conftest.py``).
- ``new_page(**context_options)``: a page in a context of its own (own cookies, own offline
  switch) with its console recorded. The app sends a strict Content-Security-Policy, so an
  inline script or style shows up as a console error: tests assert there is none.
- ``live_server``: the app under gunicorn with the gevent websocket worker on a fresh SQLite
  database, one per test; ``start_server(**env)`` starts one with extra environment.

When a test fails, every page it opened leaves a screenshot and its console log, and the
server its log, under ``artifacts/<test>/``.
"""

import os
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect, sync_playwright

from ..e2e.server import ROOT, LiveServer

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "artifacts"
INSTALL_HINT = (
    "Install Debian's Chromium with `sudo apt-get install -y chromium` "
    "(or set CHROMIUM to the path of a Chromium binary)."
)
TIMEOUT_MS = 15_000


def _unavailable(message: str):
    """Skip locally with the way to fix it; fail in CI, where the browser tests must run."""
    message = f"{message}. {INSTALL_HINT}"
    if os.environ.get("CI"):
        pytest.fail(message + " CI must run the browser tests.", pytrace=False)
    pytest.skip(message)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell that the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def has_failed(node) -> bool:
    return any(
        getattr(node, f"report_{when}", None) is not None and getattr(node, f"report_{when}").failed
        for when in ("setup", "call")
    )


def artifact_dir(node) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", node.nodeid.split("::", 1)[-1])
    path = ARTIFACTS / f"{Path(node.path).stem}-{name}"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for every test of the session."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"Chromium is not installed at {CHROMIUM}")
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


class ConsoleLog:
    """Everything a page printed to its console, and its uncaught errors."""

    def __init__(self, page):
        self.lines: list[str] = []
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self._add("pageerror", str(error), error=True))
        page.on("crash", lambda _page: self._add("crash", "the page crashed", error=True))

    def _console(self, message) -> None:
        where = message.location or {}
        text = f"{message.text}  ({where.get('url', '')}:{where.get('lineNumber', '')})"
        self._add(message.type, text, error=message.type == "error")

    def _add(self, kind: str, text: str, error: bool) -> None:
        self.lines.append(f"[{kind}] {text}")
        if error:
            self.errors.append(text)


@pytest.fixture
def new_page(browser, request):
    """Factory: ``new_page(**context_options)`` opens a page in a fresh browser context.

    Each page has ``page.console`` (a ConsoleLog). On failure each page's screenshot and console log are saved as artifacts.
    """
    opened = []

    def open_page(**options):
        options.setdefault("viewport", {"width": 1280, "height": 800})
        context = browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.console = ConsoleLog(page)
        opened.append((context, page))
        return page

    yield open_page
    if has_failed(request.node):
        folder = artifact_dir(request.node)
        for number, (_context, page) in enumerate(opened, 1):
            (folder / f"page{number}-console.log").write_text("\n".join(page.console.lines) + "\n")
            try:
                page.screenshot(path=folder / f"page{number}.png", full_page=True, timeout=5000)
            except PlaywrightError as error:  # a crashed or closed page has no screenshot
                (folder / f"page{number}.png.txt").write_text(f"no screenshot: {error}\n")
    for context, _page in opened:
        context.close()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """An empty SQLite database built by the migrations once; each server gets a copy."""
    path = tmp_path_factory.mktemp("browser-db") / "migrated.db"
    LiveServer({"SECRET_KEY": "browser-secret", "DATABASE_URL": f"sqlite:///{path}"}).migrate()
    # Fold the write-ahead log into the file, so that copying the one file copies everything.
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=DELETE")
    connection.close()
    return path


@pytest.fixture
def start_server(tmp_path, request, migrated_sqlite):
    """Factory: ``start_server(**env)`` runs gunicorn on a fresh SQLite database."""
    servers = []

    def start(**env) -> LiveServer:
        number = len(servers) + 1
        database = tmp_path / f"browser{number}.db"
        shutil.copy(migrated_sqlite, database)
        server = LiveServer(
            {
                "SECRET_KEY": "browser-secret",
                "DATABASE_URL": f"sqlite:///{database}",
                "MESSAGE_QUEUE_URL": "",
                **env,
            },
            log_path=tmp_path / f"gunicorn{number}.log",
        )
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
    if has_failed(request.node):
        folder = artifact_dir(request.node)
        for server in servers:
            if server.log_path and server.log_path.exists():
                shutil.copy(server.log_path, folder / server.log_path.name)


@pytest.fixture
def live_server(start_server):
    """The app as `make run` serves it (gunicorn, gevent websocket worker, SQLite)."""
    return start_server()


# The chat tests of a module share one server (tests/browser/chat_fixtures.py).
from ..e2e.cluster import own_redis  # noqa: F401  (a redis-server of the test's own)
from .chat_fixtures import chat_server, module_chat_server  # noqa: F401
