"""Socket.IO events of the table (browsers only listen; scripts may ask to catch up)."""

from ..extensions import socketio
from . import services


@socketio.on("table:catchup")
def catchup(*args):
    """Sent by a non-browser client after (re)connecting: rows newer than ``after``, oldest first."""
    data = args[0] if len(args) == 1 else None
    after = data.get("after") if isinstance(data, dict) else None
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        return {"ok": False, "error": "'after' must be a row id (a whole number, 0 or more)."}
    # At most LIVE_LIST_CATCHUP_MAX: a client that got that many asks again after the last.
    found = services.ROWS.catch_up(after)
    return {"ok": True, "rows": [row.to_dict() for row in found.items]}
