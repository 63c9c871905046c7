"""The id of this worker process, the one every part of the app uses.

It names the worker in presence entries (and their heartbeat key), in the ``X-Worker`` header
and in ``server:worker`` answers. Random and made anew in each process (a forked child gets its
own): never reused, so the entries of a process that died are always its alone, and the reaper
drops them once its heartbeat expires, even on a host whose next worker got the same pid.
"""

import os
import uuid

_worker = {"pid": None, "id": None}


def worker_id() -> str:
    """An opaque id of this process (12 hex digits)."""
    if _worker["pid"] != os.getpid():
        _worker.update(pid=os.getpid(), id=uuid.uuid4().hex[:12])
    return _worker["id"]
