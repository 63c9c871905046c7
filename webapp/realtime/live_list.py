"""The live-list protocol: one implementation for every list a page keeps live (the table's
rows, a room's messages).

A live list shows items whose ids only grow, and the stream its changes are numbered in. Every
answer lists items oldest first (ascending id), whatever order a page shows them in (the table's
templates reverse them); one cap, ``LIVE_LIST_CATCHUP_MAX``, bounds a catch-up, and
``LIVE_LIST_PAGE_MAX`` a page:

- :meth:`LiveList.newest`: the page a list starts with;
- :meth:`LiveList.before`: paging back (``?before=ID&limit=N``);
- :meth:`LiveList.catch_up`: what is newer than the list's last id (``?after=ID``); more than
  the cap is no catch-up but a reload (``overflow``: htmx gets ``HX-Refresh``); the answer's
  ``X-Seq`` header is the stream's number it reflects, as ``data-seq`` is a page's;
- :meth:`LiveList.seq`: the last number of its stream the list reflects (``data-seq``). Read
  before the items: every event up to that number has committed (numbers follow commit order),
  so the items read next reflect at least those; a later event the list already shows is applied
  again by the page without harm (an insert it shows is dropped, an edit or deletion is the same).

Reading never marks anything read: that belongs to the pages that show a list.
"""

from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import Select, select

from ..extensions import clamp_id, db
from .models import EventStream


@dataclass(frozen=True)
class CatchUp:
    items: list[Any]
    overflow: bool  # more than the cap were newer: the list is reloaded instead
    seq: int  # the stream's last number these items reflect (read before them)


@dataclass(frozen=True)
class LiveList:
    query: Select  # the items the list may show, unordered
    id_column: Any  # their id, the list's cursor
    stream: str  # the stream its changes are numbered in

    def newest(self, limit: int) -> list[Any]:
        """The newest ``limit`` items, oldest first."""
        found = self.query.order_by(self.id_column.desc()).limit(limit)
        return list(reversed(list(db.session.scalars(found))))

    def before(self, before_id: int, limit: int) -> list[Any]:
        """The ``limit`` items just older than ``before_id``, oldest first."""
        found = (
            self.query.where(self.id_column < clamp_id(before_id))
            .order_by(self.id_column.desc())
            .limit(limit)
        )
        return list(reversed(list(db.session.scalars(found))))

    def after(self, after_id: int, limit: int) -> list[Any]:
        """The ``limit`` items just newer than ``after_id``, oldest first."""
        found = (
            self.query.where(self.id_column > clamp_id(after_id))
            .order_by(self.id_column.asc())
            .limit(limit)
        )
        return list(db.session.scalars(found))

    def catch_up(self, after_id: int) -> CatchUp:
        """What is newer than ``after_id``, up to the cap, oldest first."""
        cap = current_app.config["LIVE_LIST_CATCHUP_MAX"]
        seq = self.seq()
        found = self.after(after_id, cap + 1)
        return CatchUp(found[:cap], len(found) > cap, seq)

    def seq(self) -> int:
        """The stream's last number: read it before the items (see the module's docstring)."""
        head = select(EventStream.seq).where(EventStream.stream == self.stream)
        return db.session.scalar(head) or 0


def page_limit(asked: int | None, default: int) -> int:
    """A page's size: what the client asked for (or ``default``), within 1 and the cap."""
    return min(max(asked or default, 1), current_app.config["LIVE_LIST_PAGE_MAX"])
