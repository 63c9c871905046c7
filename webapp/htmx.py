"""Helpers for answering htmx and plain requests from the same view."""

from flask import abort, render_template, request


def is_htmx() -> bool:
    """True when the request was made by htmx (and so wants a fragment)."""
    return request.headers.get("HX-Request") == "true"


def wants_json() -> bool:
    """True when a non-browser client asked for JSON."""
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and not is_htmx()


def render(page: str, fragment: str, status: int = 200, **context):
    """Render ``fragment`` for htmx, the full ``page`` otherwise."""
    template = fragment if is_htmx() else page
    return render_template(template, **context), status


def int_arg(name: str) -> int | None:
    """An optional integer query parameter; 400 with a readable message when malformed."""
    value = request.args.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        abort(400, description=f"Query parameter '{name}' must be a whole number.")
