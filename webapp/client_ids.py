"""Client ids: the UUID a page makes per thing it submits, so that a resend is recognised."""

import uuid

from .errors import ValidationError


def check_client_id(value) -> str | None:
    """The optional client id of a submission (a UUID, in its canonical form), or None."""
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, str) or len(value) > 64:
            raise ValueError
        return str(uuid.UUID(value))
    except ValueError:
        raise ValidationError("'client_id' must be a UUID.") from None
