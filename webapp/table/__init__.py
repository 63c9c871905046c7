"""The live shared table: rows of two numbers and their sum, pushed to every browser."""

from flask import Blueprint

bp = Blueprint("table", __name__)

from . import cli, events, routes  # noqa: F401  (they register on bp)
