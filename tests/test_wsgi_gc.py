"""The production entry point tunes the garbage collector for a worker holding many sockets."""

import json
import os
import subprocess
import sys

from tests.e2e.server import ROOT


def test_wsgi_freezes_the_loaded_app_and_collects_less_often(tmp_path):
    probe = "import gc, json, wsgi; print(json.dumps([gc.get_threshold(), gc.get_freeze_count()]))"
    env = {
        **os.environ,
        "SECRET_KEY": "x",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'gc.db'}",
        "MESSAGE_QUEUE_URL": "",
    }
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout
    threshold, frozen = json.loads(out.strip().splitlines()[-1])
    assert threshold == [50_000, 20, 100]
    assert frozen > 10_000  # the app's modules, templates engine and models are frozen
