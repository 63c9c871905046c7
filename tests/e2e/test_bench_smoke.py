"""The fan-out benchmark's smoke run: 20 clients, one round, so `make bench` cannot rot.

One run measures the app, the app at HEAD as a ``--baseline`` (a temporary git worktree) and
both references (the minimal Flask-SocketIO app and the Node `ws` server), and reports every
figure of the app also as a ratio to each of them.
"""

import json
import shutil
import subprocess
import sys

import pytest

from .server import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SERVERS = ("app", "baseline", "flask-socketio", "node-ws")


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def bench_worktrees() -> set[str]:
    """Worktrees the benchmark made (under its temporary bench-* folder)."""
    listing = git("worktree", "list", "--porcelain").splitlines()
    paths = {line.split(" ", 1)[1] for line in listing if line.startswith("worktree ")}
    return {path for path in paths if "/bench-" in path and path.endswith("/baseline")}


def test_benchmark_smoke_run_measures_app_baseline_and_references(tmp_path):
    if not shutil.which("node") or not (ROOT / "node_modules" / "socket.io-client").is_dir():
        pytest.skip("the load generator needs node and node_modules (make install)")
    if not (ROOT / "node_modules" / "ws").is_dir():
        pytest.skip("the Node reference needs node_modules/ws (make install)")
    try:
        head = git("rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("--baseline needs a git checkout")
    worktrees_before = bench_worktrees()
    out = tmp_path / "smoke.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--smoke",
            "--baseline",
            "HEAD",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert report["baseline"]["commit"] == head
    assert bench_worktrees() == worktrees_before  # the temporary worktree is gone

    runs = {(run["server"], run["scenario"]): run for run in report["runs"]}
    assert set(runs) == {(server, "table") for server in SERVERS} | {
        ("app", "chat"),
        ("baseline", "chat"),
    }
    for run in runs.values():
        assert run["connected"] == 20 and run["failed"] == 0
        assert run["latency"]["missing"] == 0 and run["latency"]["latency_ms"]["count"] == 20
        assert run["throughput"]["missing"] == 0 and run["throughput"]["duplicates"] == 0
        assert run["throughput"]["delivered"] == run["throughput"]["messages"] * 20
        assert run["cpu_ms_per_row"] > 0 and run["kib_per_connection"] is not None
    # The references send events of the app's size (the tag in `a` varies by a few bytes).
    app = runs["app", "table"]
    for reference in ("flask-socketio", "node-ws"):
        assert abs(runs[reference, "table"]["payload_bytes"] - app["payload_bytes"]) <= 20

    # Every figure of the app, as a ratio to each reference and to the baseline, in this run.
    assert set(app["ratios"]) == {"flask-socketio", "node-ws", "baseline"}
    for other, ratios in app["ratios"].items():
        theirs = runs[other, "table"]["figures"]
        assert set(ratios) == set(app["figures"])
        for key in ("p99_ms", "cpu_ms_per_row", "deliveries_per_s", "connect_s"):
            assert ratios[key] == round(app["figures"][key] / theirs[key], 2), (other, key)
    assert set(runs["baseline", "table"]["ratios"]) == {"flask-socketio", "node-ws"}
    # No reference has a chat: its ratios say so; the baseline's chat is compared.
    chat = runs["app", "chat"]
    assert chat["ratios"]["flask-socketio"] == chat["ratios"]["node-ws"] == "n/a"
    assert chat["ratios"]["baseline"]["p99_ms"] > 0

    http = {(entry["server"], entry["path"]): entry for entry in report["http"]}
    assert set(http) == {(server, path) for server in SERVERS for path in ("/", "/table/rows")}
    assert all(entry["requests"] > 0 for entry in http.values())
    assert set(http["app", "/"]["ratios"]) == {"flask-socketio", "node-ws", "baseline"}
    assert http["app", "/"]["ratios"]["node-ws"]["requests_per_s"] > 0

    label = report["labels"]["baseline"]
    for line in (
        "| sqlite ×1 | table | 20 | app | 20 |",
        f"| sqlite ×1 | table | 20 | {label} | 20 |",
        "| sqlite ×1 | table | 20 | Flask-SocketIO | 20 |",
        "| sqlite ×1 | table | 20 | Node ws | 20 |",
        "| sqlite ×1 | table | 20 | app ÷ Flask-SocketIO | |",
        f"| sqlite ×1 | table | 20 | app ÷ {label} | |",
        "| sqlite ×1 | chat | 20 | app ÷ Node ws | | n/a |",
        "| sqlite ×1 | `/` | app ÷ Node ws |",
    ):
        assert line in result.stdout, line
