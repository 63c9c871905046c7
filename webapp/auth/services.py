"""Account use cases: validate names and passwords, register, check a login."""

import logging
import re

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import ValidationError
from ..extensions import db
from ..realtime.connections.closing import close_user_sockets
from .models import User

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{3,32}")
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
BAD_LOGIN = "Wrong username or password."

# Per hash method: a test app and the production config hash differently.
_dummy_hashes: dict[str, str] = {}

# Called with each new account after it is stored (the chat makes it a member of general):
# accounts know nothing of the features built on them.
_on_register: list = []


def on_register(fn):
    """Decorator: call ``fn(user)`` for every account registered from now on."""
    _on_register.append(fn)
    return fn


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
    for hook in _on_register:
        hook(user)
    return user


def authenticate(username, password) -> User:
    """The user with this name and password; one answer for any mismatch, unknown names too.

    Every attempt costs exactly one password hash of the configured method, whatever was wrong
    (an unknown or malformed name, a password too short, too long or wrong), so neither the
    answer nor the time it takes tells which usernames exist.
    """
    name = username.strip() if isinstance(username, str) else ""
    secret = password if isinstance(password, str) else ""
    # Made by the first attempt in this process, whatever its name: not by the first miss.
    dummy = _dummy_hash()
    user = find_user(name) if NAME_PATTERN.fullmatch(name) else None
    stored = user.password_hash if user is not None else dummy
    # Over the limit is refused, but only after the same work as any other attempt.
    matches = check_password_hash(stored, secret[:PASSWORD_MAX])
    if user is None or not matches or len(secret) > PASSWORD_MAX:
        raise ValidationError(BAD_LOGIN)
    return user


def _dummy_hash() -> str:
    """A hash of the configured method, checked against when the name is unknown."""
    method = current_app.config["PASSWORD_HASH_METHOD"]
    if method not in _dummy_hashes:
        _dummy_hashes[method] = _hash("not-a-password")
    return _dummy_hashes[method]


def change_password(user: User, current, new) -> None:
    """Replace ``user``'s password after checking the current one; every session ends.

    The caller logs the browser that asked back in (webapp/auth/routes.py): the others stay out,
    as after a logout.
    """
    current = current if isinstance(current, str) else ""
    if not check_password_hash(user.password_hash, current[:PASSWORD_MAX]):
        raise ValidationError("The current password is wrong.", field="current_password")
    try:
        secret = check_password(new)
    except ValidationError as error:
        raise ValidationError(str(error), field="new_password") from None
    if secret == current:
        raise ValidationError(
            "The new password is the same as the current one.", field="new_password"
        )
    user.password_hash = _hash(secret)
    db.session.commit()
    end_sessions(user)
    db.session.refresh(user)


def end_sessions(user: User) -> None:
    """Log ``user`` out of every browser and every socket, on every worker and host.

    The session epoch in the database is what holds: each request and each socket event loads
    the user through it (webapp/auth/login.py), so after this commit no session from before
    counts as logged in anywhere. Then the user's open sockets are closed, so that their pages
    notice at once (they reload and show the user logged out): the presence store lists every
    socket with the worker that holds it, and python-socketio's message queue takes the
    disconnect to that worker (webapp/realtime/connections/closing.py).
    """
    db.session.execute(
        update(User).where(User.id == user.id).values(session_epoch=User.session_epoch + 1)
    )
    db.session.commit()
    close_user_sockets(user.id)
