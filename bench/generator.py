"""A Node load generator as a child process: one JSON command per line in, one JSON reply out.

bench/run.py drives bench/loadgen.mjs and bench/soak.py drives bench/soak.mjs through it; both
scripts answer as bench/http.mjs's serveCommands does.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Generator:
    """``node SCRIPT URL``; its stderr goes to ``log_path``, failures raise ``error``."""

    def __init__(
        self,
        command: list[str],
        log_path: Path,
        error: type[Exception] = RuntimeError,
        quit_timeout: float = 30,
    ):
        self.error = error
        self.quit_timeout = quit_timeout
        self.log = open(log_path, "ab")  # noqa: SIM115 (closed by close())
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._reply(30)

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _reply(self, timeout: float) -> dict:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise self.error(f"the load generator did not answer within {timeout:.0f}s") from None
        if line is None:
            raise self.error("the load generator exited; see its log")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise self.error(f"the load generator failed: {reply.get('error')}")
        return reply

    def __call__(self, cmd: str, timeout: float, **args) -> dict:
        self.process.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.process.stdin.flush()
        return self._reply(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self("quit", self.quit_timeout)
            except (self.error, OSError):  # it has gone already (BrokenPipeError included)
                pass
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def children_of(pid: int) -> list[int]:
    """The process ids whose parent is ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)
