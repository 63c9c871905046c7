"""Accounts on a real gunicorn server: passwords never reach a log line, a wrong password and an
unknown user get the same answer, and the server refuses to start without SECRET_KEY."""

import re
import subprocess

import pytest

from .clients import BrowserSession, logged_in
from .server import BIN, ROOT, LiveServer, free_port

pytestmark = pytest.mark.e2e

SECRET = "Tr0ub4dor&3-never-logged"
CSRF_TOKEN = re.compile(r'"[\w-]{20,}\.[\w-]+\.[\w-]+"')  # signed anew on every page
WRONG = "Wr0ng-guess-never-logged"


def test_passwords_are_in_no_log_line_and_wrong_answers_are_alike(tmp_path):
    log = tmp_path / "gunicorn.log"
    server = LiveServer(
        {
            "SECRET_KEY": "e2e-secret",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'e2e.db'}",
            "MESSAGE_QUEUE_URL": "",
            "LOG_LEVEL": "debug",
        },
        log_path=log,
    )
    server.migrate()
    server.start()
    try:
        logged_in(server.url, "alice", SECRET)
        answers = {}
        for name in ("alice", "nobody"):
            session = BrowserSession(server.url)
            response = session.http.post(
                server.url + "/login",
                data={"username": name, "password": WRONG, "csrf_token": session.token},
                allow_redirects=False,
                timeout=10,
            )
            assert response.status_code == 422
            answers[name] = CSRF_TOKEN.sub('"TOKEN"', response.text).replace(name, "NAME")
        assert answers["alice"] == answers["nobody"]
        assert "Wrong username or password." in answers["alice"]
    finally:
        server.stop()
    text = log.read_text(errors="replace")
    assert "POST /login" in text  # the requests were logged, at debug level
    assert SECRET not in text and WRONG not in text
    assert "Tr0ub4dor" not in text and "Wr0ng-guess" not in text


def test_gunicorn_refuses_to_start_without_a_secret_key(tmp_path):
    if (ROOT / "instance" / "secret_key").exists():
        pytest.skip("instance/secret_key exists here (make run wrote it): it is the key")
    env = {
        "PATH": str(BIN),
        "HOME": str(tmp_path),
        "PORT": str(free_port()),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'e2e.db'}",
        "SECRET_KEY": "",
    }
    result = subprocess.run(
        [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set. Set the SECRET_KEY environment variable" in result.stderr
