"""Start the app the way production runs it (gunicorn, gevent websocket worker) for tests."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# Tests and the benchmark drive many clients from 127.0.0.1: limits far above what they do, so
# nothing is refused, yet every request and connection is still counted as in production (open
# connections per address too). A test of the limits themselves passes its own values in
# ``env``.
LOOPBACK_LIMITS = {
    name: "1000000 per minute"
    for name in (
        "RATELIMIT_LOGIN_PER_IP",
        "RATELIMIT_LOGIN_PER_USERNAME",
        "RATELIMIT_LOGIN_PER_DEVICE",
        "RATELIMIT_REGISTER_PER_IP",
        "RATELIMIT_REGISTER_PER_USERNAME",
        "RATELIMIT_ROWS_PER_CLIENT",
        "RATELIMIT_SOCKET_CONNECTS_PER_IP",
        "RATELIMIT_ROOMS_PER_USER",
        "RATELIMIT_EDITS_PER_USER",
        "RATELIMIT_PRESENCE_PER_USER",
    )
} | {"MAX_CONNECTIONS_PER_IP": "1000000"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """A gunicorn process serving wsgi:app on a free port, with its own environment."""

    def __init__(
        self,
        env: dict[str, str],
        workers: int = 1,
        port: int | None = None,
        log_path: Path | None = None,
    ):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            **LOOPBACK_LIMITS,
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(workers),
            **env,
        }
        self.env.pop("BIND", None)
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def migrate(self) -> None:
        subprocess.run(
            [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
        )

    def flask(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run ``flask --app wsgi ARGS`` with this server's configuration (another process)."""
        return subprocess.run(
            [str(BIN / "flask"), "--app", "wsgi", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, timeout: float = 20, healthy: bool = True) -> "LiveServer":
        """Start and wait until /healthz answers 200 (any answer when ``healthy`` is False)."""
        # The child keeps its own copy of the descriptor.
        with open(self.log_path or os.devnull, "ab") as log:
            self.process = subprocess.Popen(
                [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited with {self.process.returncode}; see {self.log_path}"
                )
            try:
                status = requests.get(self.url + "/healthz", timeout=5).status_code
                if status == 200 or not healthy:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer /healthz within {timeout}s")

    def stop(self, sig: int = signal.SIGQUIT) -> None:
        """Stop gunicorn: quickly by default (SIGQUIT), gracefully with SIGTERM."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
