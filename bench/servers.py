"""The servers the fan-out benchmark measures side by side, in the same run.

- ``app``: this working tree, as production runs it (gunicorn -c gunicorn.conf.py wsgi:app).
- ``baseline``: the app at another commit (``--baseline REF``), checked out into a temporary
  worktree (``git worktree add --detach``), with this tree's virtualenv when its dependencies
  are the same, else a virtualenv of its own, and this tree's node_modules.
- ``flask-socketio``: bench/reference/flask_push.py under the same gunicorn settings and worker
  class: what the stack itself costs for the same pushes.
- ``node-ws``: bench/reference/ws_server.mjs, Node and `ws`: how far below the Python stack the
  same pushes go on this machine.

The references answer the same HTTP endpoints and Socket.IO events the load generator uses, so
its clients run unchanged against all of them; a figure's ratio to a reference taken minutes
apart on the same machine says more than the figure alone on a shared machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from bench.generator import children_of
from tests.e2e.server import LOOPBACK_LIMITS, free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass
class Target:
    """One kind of server: where it runs from and how it starts."""

    key: str  # app, baseline, flask-socketio, node-ws: the names in the JSON report
    label: str  # as the markdown report shows it
    root: Path  # its working directory
    bin: Path | None = None  # its virtualenv's bin directory (gunicorn targets)
    app: str | None = None  # gunicorn's WSGI app; None: the Node reference
    reference: bool = False
    commit: str | None = None

    @property
    def node(self) -> bool:
        return self.app is None

    def command(self) -> list[str]:
        if self.node:
            return ["node", str(ROOT / "bench" / "reference" / "ws_server.mjs")]
        return [str(self.bin / "gunicorn"), "-c", "gunicorn.conf.py", self.app]

    def processes(self, workers: int) -> int:
        """Server processes, as the report counts them (Node: one)."""
        return 1 if self.node else workers

    def migrate(self, env: dict[str, str]) -> None:
        """Apply this tree's migrations to the database in ``env`` (the app and the baseline)."""
        subprocess.run(
            [str(self.bin / "flask"), "--app", "wsgi", "db", "upgrade"],
            cwd=self.root,
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )


def app_target() -> Target:
    return Target("app", "app", ROOT, BIN, "wsgi:app")


def reference_targets() -> list[Target]:
    return [
        Target(
            "flask-socketio",
            "Flask-SocketIO",
            ROOT,
            BIN,
            "bench.reference.flask_push:app",
            reference=True,
        ),
        Target("node-ws", "Node ws", ROOT, reference=True),
    ]


class Server:
    """A target serving on a free loopback port, pinned to the server cores."""

    def __init__(
        self,
        target: Target,
        workers: int,
        env: dict[str, str],
        cpus: str | None,
        log_path: Path,
        error: type[Exception] = RuntimeError,
    ):
        self.target = target
        self.expected_workers = 0 if target.node else workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            **LOOPBACK_LIMITS,
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(workers),
            **env,
        }
        self.env.pop("BIND", None)
        self.cpus = cpus
        self.log_path = log_path
        self.error = error
        self.process: subprocess.Popen | None = None
        self.workers: list[int] = []

    def start(self, timeout: float = 60) -> Server:
        import requests

        with open(self.log_path, "ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                self.target.command(),
                cwd=self.target.root,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise self.error(
                    f"{self.target.label} exited with {self.process.returncode}; "
                    f"see {self.log_path}"
                )
            try:
                if requests.get(self.url + "/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise self.error(f"{self.target.label} did not answer /healthz in {timeout:.0f}s")
            time.sleep(0.1)
        master = self.process.pid
        if self.cpus:
            # Workers forked later inherit the master's affinity; those already there are pinned.
            self._pin(master)
        deadline = time.monotonic() + 30
        while len(children_of(master)) < self.expected_workers:
            if time.monotonic() > deadline:
                raise self.error(f"{self.target.label} did not start all its workers")
            time.sleep(0.1)
        self.workers = children_of(master) if self.expected_workers else []
        if self.cpus:
            for pid in self.workers:
                self._pin(pid)
        return self

    def _pin(self, pid: int) -> None:
        subprocess.run(
            ["taskset", "-a", "-cp", self.cpus, str(pid)], check=True, capture_output=True
        )

    @property
    def pids(self) -> list[int]:
        return [self.process.pid, *self.workers]

    def check_workers(self) -> None:
        if self.expected_workers and children_of(self.process.pid) != self.workers:
            raise self.error(
                f"a {self.target.label} worker restarted during the measurement; see the log"
            )

    def status(self, path: str) -> int:
        import requests

        return requests.get(self.url + path, timeout=10, allow_redirects=False).status_code

    def stop(self) -> None:
        """Quickly: SIGQUIT for gunicorn, SIGTERM for Node (which SIGQUIT would make dump core)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM if self.target.node else signal.SIGQUIT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


# ---------------------------------------------------------------- the baseline


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def dependencies(pyproject: str) -> list[str]:
    """What a server needs (the development tools in the extras do not matter here)."""
    return sorted(tomllib.loads(pyproject).get("project", {}).get("dependencies", []))


class Baseline:
    """The app at ``ref``, in a temporary worktree under ``workdir``; ``close()`` removes it."""

    def __init__(self, ref: str, workdir: Path, error: type[Exception] = RuntimeError):
        self.ref = ref
        self.error = error
        try:
            self.commit = git("rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}")
        except subprocess.CalledProcessError as failure:
            raise error(f"--baseline {ref}: not a commit here ({failure.stderr.strip()})") from None
        self.path = workdir / "baseline"
        self.venv: Path | None = None
        self.links: list[Path] = []
        git("worktree", "add", "--detach", str(self.path), self.commit)
        try:
            self._prepare(workdir)
        except BaseException:
            self.close()
            raise
        short = git("rev-parse", "--short", self.commit)
        self.target = Target(
            "baseline", f"baseline {short}", self.path, self.bin, "wsgi:app", commit=self.commit
        )

    def _prepare(self, workdir: Path) -> None:
        # The same node_modules (and the assets built from it) as this tree.
        for name in ("node_modules", "static/vendor"):
            source, link = ROOT / name, self.path / name
            if source.exists() and not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(source, target_is_directory=True)
                self.links.append(link)
        theirs = git("show", f"{self.commit}:pyproject.toml")
        ours = (ROOT / "pyproject.toml").read_text()
        if dependencies(theirs) == dependencies(ours):
            self.bin = BIN
        else:
            self.venv = workdir / "baseline-venv"
            print(
                f"baseline {self.ref}: other dependencies, so a virtualenv of its own", flush=True
            )
            subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True)
            self.bin = self.venv / "bin"
            subprocess.run(
                [str(self.bin / "pip"), "install", "--quiet", "--disable-pip-version-check", "-e",
                 str(self.path)],
                check=True,
            )  # fmt: skip
        # This tree's package is installed in place, but its import hook comes after the
        # working directory on sys.path: gunicorn and flask, started in the baseline's tree,
        # import the baseline's. Checked, because measuring this tree twice would be silent.
        found = subprocess.run(
            [str(self.bin / "python"), "-c", "import webapp; print(webapp.__file__)"],
            cwd=self.path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if not Path(found).resolve().is_relative_to(self.path.resolve()):
            raise self.error(f"the baseline's server would import {found}, not its own webapp")

    def close(self) -> None:
        for link in self.links:  # links first: nothing must follow them into this tree
            link.unlink(missing_ok=True)
        try:
            git("worktree", "remove", "--force", str(self.path))
        except subprocess.CalledProcessError as failure:
            print(f"removing the baseline worktree failed: {failure.stderr}", file=sys.stderr)
        if self.venv:
            shutil.rmtree(self.venv, ignore_errors=True)
