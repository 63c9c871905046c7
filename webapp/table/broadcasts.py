"""Every event the table sends, in one place: all of them numbered in the ``table`` stream."""

from ..realtime.broadcasts import Broadcast

STREAM = "table"

# A row was added (by a page, a script or the command line); with the totals it left.
ROW_ADDED = Broadcast(
    "table:row",
    "table/_row_added.html",
    fields=lambda row, totals: row.to_dict(),
    stream=lambda **_: STREAM,
)

# A row was deleted; with the totals it left.
ROW_DELETED = Broadcast(
    "table:row-deleted",
    "table/_row_deleted.html",
    fields=lambda row_id, totals: {"id": row_id},
    stream=lambda **_: STREAM,
)
