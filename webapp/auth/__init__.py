"""Accounts: register, log in and out; Flask-Login loads the user from the session."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from . import login, routes  # noqa: F401  (they register on bp and the login manager)
