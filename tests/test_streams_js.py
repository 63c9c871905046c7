"""The browser's stream logic (static/js/streams.js) under Node's test runner: ordering, held
events, gap repair, repeats, stream:head and 410 (tests/js/streams.test.js)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NODE_TESTS = [ROOT / "tests" / "js" / "streams.test.js"]


def test_stream_client_logic_passes_its_node_tests():
    node = shutil.which("node")
    if node is None:
        message = "Node.js is not installed (it comes with npm, which `make install` needs)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    result = subprocess.run(
        [node, "--test", *map(str, NODE_TESTS)],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
