"""The live shared table: rows of two numbers and their sum, pushed to every browser."""

from flask import Blueprint

from ..realtime import streams
from .broadcasts import STREAM

bp = Blueprint("table", __name__)


def _public(key: str | None) -> None:
    """The table is public: anyone, logged in or not, may read its stream (one, unkeyed)."""
    if key is not None:
        raise streams.StreamRefused(f"There is no stream '{STREAM}:{key}'.")


# The table's stream: public, watched by every socket.
streams.register(STREAM, check_readable=_public, channel=lambda key: None)

from . import cli, events, routes  # noqa: F401  (they register on bp)
