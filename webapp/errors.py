"""Errors that services raise and routes and handlers turn into 4xx answers."""


class ValidationError(ValueError):
    """Input that cannot be accepted; ``str(error)`` is a message for the user."""

    status = 422


class NotFound(LookupError):
    """The thing asked for does not exist."""

    status = 404
