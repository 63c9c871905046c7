"""HTTP routes of the table: thin wrappers around the services."""

import csv
import io

from flask import (
    Response,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
    stream_with_context,
)
from flask_login import current_user

from ..errors import NotFound, ValidationError
from ..htmx import int_arg as _int_arg
from ..htmx import is_htmx, render, wants_json
from ..realtime import live_list
from . import bp, services


def _page_context(**context) -> dict:
    seq = services.ROWS.seq()  # before the rows: see live_list
    size = current_app.config["TABLE_PAGE_SIZE"]
    rows = services.ROWS.newest(size)
    return {
        "rows": rows,
        "seq": seq,
        "totals": services.totals(),
        "last_id": rows[-1].id if rows else 0,
        "oldest_id": rows[0].id if rows else 0,
        "has_older": len(rows) == size,
        **context,
    }


@bp.get("/")
def index():
    """The live table page."""
    return render_template("table/index.html", **_page_context())


@bp.get("/table/rows")
def rows():
    """Row fragments: the newest page, rows newer than ?after=ID, or older than ?before=ID."""
    after, before, limit = _int_arg("after"), _int_arg("before"), _int_arg("limit")
    if after is not None and before is not None:
        abort(400, description="Use either 'after' or 'before', not both.")
    if after is not None:
        found = services.ROWS.catch_up(after)
        response = Response(
            render_template("table/_catchup.html", rows=found.items, totals=services.totals())
        )
        response.headers["X-Seq"] = str(found.seq)
        if found.overflow:
            # Too far behind to patch up row by row: htmx reloads the page.
            response.headers["HX-Refresh"] = "true"
        return response
    limit = live_list.page_limit(limit, current_app.config["TABLE_PAGE_SIZE"])
    found = (
        services.ROWS.before(before, limit) if before is not None else services.ROWS.newest(limit)
    )
    return render_template(
        "table/_page.html",
        rows=found,
        has_older=len(found) == limit,
        oldest_id=found[0].id if found else 0,
        limit=limit,
    )


@bp.post("/table/rows")
def add_row():
    """Add a row from form fields a and b; a resend with the same client_id answers 200."""
    form = request.form
    try:
        user = current_user._get_current_object() if current_user.is_authenticated else None
        row, stored = services.add_row_once(
            form.get("a"), form.get("b"), user=user, client_id=form.get("client_id")
        )
    except ValidationError as error:
        if wants_json():
            return jsonify(ok=False, error=str(error)), 422
        return render(
            "table/index.html",
            "table/_form_feedback.html",
            422,
            **({} if is_htmx() else _page_context()),
            error=str(error),
            error_field=error.field,
            form=request.form,
        )
    status = 201 if stored else 200
    if wants_json():
        return jsonify(ok=True, **row.to_dict()), status
    return render(
        "table/index.html",
        "table/_form_feedback.html",
        status,
        **({} if is_htmx() else _page_context()),
        added=row,
    )


@bp.delete("/table/rows/<int:row_id>")
def delete_row(row_id: int):
    """Delete a row; htmx removes it from this page, the broadcast updates every footer."""
    try:
        services.delete_row(row_id)
    except NotFound as error:
        abort(404, description=str(error))
    if wants_json():
        return jsonify(ok=True, id=row_id)
    if is_htmx():
        # No out-of-band footer here: htmx would look for it from the delete button, which the
        # table:row-deleted broadcast (sent before this answer) may already have removed.
        return "", 200
    return render_template("table/_footer.html", oob=True, totals=services.totals())


@bp.get("/table/rows.csv")
def rows_csv():
    """The whole table as CSV, oldest first, streamed."""

    def generate():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["id", "a", "b", "sum", "created_at"])
        for batch in services.iter_rows():
            for row in batch:
                data = row.to_dict()
                writer.writerow([data["id"], data["a"], data["b"], data["sum"], data["created_at"]])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=table.csv"},
    )
