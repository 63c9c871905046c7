"""Errors that services raise and routes and handlers turn into 4xx answers."""


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
