"""Errors that services raise and routes and handlers turn into 4xx answers."""

import contextlib


class ValidationError(ValueError):
    """Input that cannot be accepted; ``str(error)`` is a message for the user.

    ``field`` names the form field at fault, when there is one, so the page can point at it.
    """

    status = 422

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class NotFound(LookupError):
    """The thing asked for does not exist."""

    status = 404


DATABASE_DOWN = "The database is not answering just now. Try again in a few seconds."
RETRY_AFTER_SECONDS = 5


def register(app) -> None:
    """Answer a request the database could not serve with 503 and a readable page, not a 500.

    A lost or refused connection, a connect or statement timeout and an exhausted pool all
    surface as these SQLAlchemy errors; the pool's pre-ping recovers by itself once the database
    answers again, so the request can simply be tried again.
    """
    from sqlalchemy.exc import InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from .extensions import db

    def database_down(error: Exception):
        app.logger.warning("database unavailable: %s", str(error).splitlines()[0][:300])
        # The connection may be gone: the session is discarded at teardown anyway.
        with contextlib.suppress(Exception):
            db.session.rollback()
        from flask import g

        from . import _error_response

        # Flask-Login's template context loads the user, from the database: render the page
        # as for a visitor rather than fail again while rendering it.
        if g.get("_login_user") is None:
            g._login_user = app.login_manager.anonymous_user()
        return _error_response(503, DATABASE_DOWN, RETRY_AFTER_SECONDS)

    for kind in (OperationalError, InterfaceError, PoolTimeout):
        app.register_error_handler(kind, database_down)
