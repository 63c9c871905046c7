"""Account use cases: validate names and passwords, register, check a login."""

import logging
import re

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import ValidationError
from ..extensions import db, socketio
from .models import User

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{3,32}")
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
BAD_LOGIN = "Wrong username or password."

_dummy_hash: str | None = None


def check_name(value, what: str = "Username") -> str:
    """A username or room name: 3–32 letters, digits, '_' or '-'."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{what} is required.")
    name = value.strip()
    if not NAME_PATTERN.fullmatch(name):
        raise ValidationError(f"{what} must be 3 to 32 characters: letters, digits, '_' or '-'.")
    return name


def check_password(value) -> str:
    if not isinstance(value, str) or value == "":
        raise ValidationError("Password is required.")
    if len(value) < PASSWORD_MIN:
        raise ValidationError(f"Password must be at least {PASSWORD_MIN} characters.")
    if len(value) > PASSWORD_MAX:
        raise ValidationError(f"Password must be at most {PASSWORD_MAX} characters.")
    return value


def find_user(username: str) -> User | None:
    return db.session.scalar(select(User).where(User.username_key == username.lower()))


def _hash(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def register(username, password) -> User:
    """Create an account; ValidationError for a bad or taken name or a weak password."""
    name = check_name(username)
    secret = check_password(password)
    if find_user(name) is not None:
        raise ValidationError("That username is taken. Choose another one.")
    user = User(username=name, username_key=name.lower(), password_hash=_hash(secret))
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:  # registered at the same moment by someone else
        db.session.rollback()
        raise ValidationError("That username is taken. Choose another one.") from None
    return user


def authenticate(username, password) -> User:
    """The user with this name and password; one answer for any mismatch, unknown names too."""
    global _dummy_hash
    name = username.strip() if isinstance(username, str) else ""
    secret = password if isinstance(password, str) else ""
    user = find_user(name) if NAME_PATTERN.fullmatch(name) else None
    if user is None:
        # Spend the same work as a real check, so timing does not tell which names exist.
        _dummy_hash = _dummy_hash or _hash("not-a-password")
        check_password_hash(_dummy_hash, secret[:PASSWORD_MAX])
        raise ValidationError(BAD_LOGIN)
    if len(secret) > PASSWORD_MAX or not check_password_hash(user.password_hash, secret):
        raise ValidationError(BAD_LOGIN)
    return user


def end_sessions(user: User) -> None:
    """Log ``user`` out of every browser and every socket, on every worker and host.

    The session epoch in the database is what holds: each request and each socket event loads
    the user through it (webapp/auth/login.py), so after this commit no session from before
    counts as logged in anywhere. Then the user's open sockets are closed, so that their pages
    notice at once (they reload and show the user logged out): the presence store lists every
    socket with the worker that holds it, and python-socketio's message queue takes the
    disconnect to that worker.
    """
    db.session.execute(
        update(User).where(User.id == user.id).values(session_epoch=User.session_epoch + 1)
    )
    db.session.commit()
    try:
        sockets = current_app.extensions["presence"].connections(user.id)
    except Exception:  # the presence store is down: the epoch alone logs the sockets out
        log.exception("could not list the sockets of a user who logged out")
        return
    for connection in sockets:
        socketio.server.disconnect(connection.sid, namespace="/")
