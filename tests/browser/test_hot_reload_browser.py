"""Hot reload as a developer meets it: `flask run --debug` on a copy of the app, real edits."""

import os
import shutil
import signal
import subprocess
import time

import pytest
import requests
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from ..e2e.server import BIN, ROOT, free_port
from .conftest import artifact_dir, has_failed
from .pages import TablePage, assert_no_console_errors, wait_live

pytestmark = pytest.mark.browser

COPIED = ["webapp", "templates", "static", "migrations", "wsgi.py"]


@pytest.fixture
def dev_server(tmp_path, request):
    """`flask --app wsgi run --debug` (as `make dev` runs it) in a copy of the app."""
    app_dir = tmp_path / "app"
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, app_dir / name, ignore=shutil.ignore_patterns("__pycache__", "node_modules")
            )
        else:
            shutil.copy(source, app_dir / name)
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLASK_")}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'dev.db'}",
        MESSAGE_QUEUE_URL="",
        SECRET_KEY="dev-secret",
        PYTHONDONTWRITEBYTECODE="1",
    )
    flask = str(BIN / "flask")
    subprocess.run(
        [flask, "--app", "wsgi", "db", "upgrade"],
        cwd=app_dir,
        env=env,
        check=True,
        capture_output=True,
    )
    log_path = tmp_path / "flask-run.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [flask, "--app", "wsgi", "run", "--debug", "--port", str(port)],
            cwd=app_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if requests.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "flask run did not start:\n" + log_path.read_text()
            time.sleep(0.2)
        yield app_dir, url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if has_failed(request.node):
            shutil.copy(log_path, artifact_dir(request.node) / log_path.name)


def edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def mark(page) -> None:
    """Leave a mark on the page that only a reload removes."""
    page.evaluate("window.notReloaded = true")


def reloaded(page) -> bool:
    try:
        return page.evaluate("window.notReloaded !== true")
    except PlaywrightError:  # evaluated while the page was navigating: ask again
        return False


def wait_until(predicate, timeout: float) -> None:
    # Not page.wait_for_function: its polling evaluates strings, which the page's CSP forbids.
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"still not true after {timeout}s"
        time.sleep(0.1)


def test_edits_reload_every_open_page(dev_server, new_page):
    app_dir, url = dev_server
    pages = [TablePage.open(new_page(), url).page for _ in range(2)]
    # The page uses the copy's files and knows its server process.
    assert pages[0].locator("script[data-boot-id]").count() == 1

    # A template: every page shows the change soon after the save.
    for page in pages:
        mark(page)
    started = time.monotonic()
    edit(app_dir / "templates/table/index.html", "Add a row</h1>", "Add a row, edited</h1>")
    for page in pages:
        expect(page.get_by_role("heading", name="Add a row, edited")).to_be_visible()
        assert reloaded(page)
    template_seconds = time.monotonic() - started

    # A stylesheet.
    for page in pages:
        wait_live(page)
        mark(page)
    edit(
        app_dir / "static/css/app.css",
        "#live-table time {",
        "#add-row-heading { letter-spacing: 7px; }\n#live-table time {",
    )
    for page in pages:
        expect(page.locator("#add-row-heading")).to_have_css("letter-spacing", "7px")
        assert reloaded(page)

    # Python: the server restarts, and the pages reload once it is back.
    for page in pages:
        wait_live(page)
        mark(page)
    edit(
        app_dir / "webapp/table/routes.py",
        '"""HTTP routes of the table: thin wrappers around the services."""',
        '"""HTTP routes of the table: thin wrappers around the services (edited)."""',
    )
    for page in pages:
        wait_until(lambda page=page: reloaded(page), timeout=30)
        wait_live(page)
    print(f"template edit to reloaded pages: {template_seconds:.2f}s")
    # Each reload may log the socket's failed reconnects while the server restarted.
    assert_no_console_errors(*pages, allow=("WebSocket connection",))
