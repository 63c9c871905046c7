"""The fan-out benchmark's smoke run: 20 clients, one round, so `make bench` cannot rot."""

import json
import shutil
import subprocess
import sys

import pytest

from .server import ROOT

pytestmark = pytest.mark.e2e


def test_benchmark_smoke_run_delivers_every_row(tmp_path):
    if not shutil.which("node") or not (ROOT / "node_modules" / "socket.io-client").is_dir():
        pytest.skip("the load generator needs node and node_modules (make install)")
    out = tmp_path / "smoke.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    [run] = [run for run in report["runs"] if run["scenario"] == "table"]
    assert run["connected"] == 20 and run["failed"] == 0
    assert run["latency"]["missing"] == 0 and run["latency"]["latency_ms"]["count"] == 20
    assert run["throughput"]["missing"] == 0 and run["throughput"]["duplicates"] == 0
    assert run["throughput"]["delivered"] == run["throughput"]["messages"] * 20
    assert run["cpu_ms_per_row"] > 0 and run["kib_per_connection"] is not None
    assert {result["path"] for result in report["http"]} == {"/", "/table/rows"}
    assert all(result["requests"] > 0 for result in report["http"])
    assert "| sqlite ×1 | table | 20 | 20 |" in result.stdout
