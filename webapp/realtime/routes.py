"""``GET /events``: a stream's events after a number, for clients that saw a gap."""

from flask import Blueprint, Response, abort, current_app, jsonify, request

from ..htmx import is_htmx
from . import outbox, streams

bp = Blueprint("realtime", __name__)


def _refuse(status: int, message: str):
    if is_htmx():
        abort(status, description=message)
    return jsonify(ok=False, error=message), status


@bp.get("/events")
def events():
    """The events of ?stream=NAME numbered after ?after_seq=N, in order (JSON; htmx: fragments).

    At most EVENTS_PAGE_MAX at once: when ``last_seq`` is below ``head`` (``more``), ask again
    with ``after_seq=last_seq``. 410 when the events after N are no longer kept (reload the list).
    """
    stream = request.args.get("stream", "")
    after = request.args.get("after_seq", "")
    if not stream:
        return _refuse(400, "Query parameter 'stream' is required (for example stream=table).")
    if not (after.isascii() and after.isdigit()) or len(after) > 18:
        return _refuse(
            400,
            "Query parameter 'after_seq' must be a whole number, 0 or more (the last seq seen).",
        )
    try:
        streams.check_readable(stream)
    except streams.StreamRefused as error:
        return _refuse(error.status, str(error))
    config = current_app.config
    try:
        page = outbox.events_after(
            stream, int(after), config["EVENTS_PAGE_MAX"], config["OUTBOX_RETENTION_SECONDS"]
        )
    except outbox.Expired as error:
        return _refuse(410, str(error))
    headers = {"X-Last-Seq": str(page.last_seq), "X-Head-Seq": str(page.head)}
    if is_htmx():
        return Response("".join(event.html for event in page.events), headers=headers)
    listed = [{"event": e.event, **e.payload(), "html": e.html} for e in page.events]
    answer = jsonify(
        ok=True,
        stream=stream,
        events=listed,
        last_seq=page.last_seq,
        head=page.head,
        more=page.more,
    )
    answer.headers.update(headers)
    return answer
