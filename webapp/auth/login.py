"""Flask-Login wiring: the user loader and what an anonymous request for a member page gets."""

from flask import jsonify, redirect, request, url_for

from ..extensions import db, login_manager
from ..htmx import is_htmx, wants_json
from .models import User

LOGIN_MESSAGE = "Log in to see this page."


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """The user of a session ("id:epoch"), unless they logged out since (a newer epoch).

    Runs for every request and every socket event (each gets a fresh app context), so a logout
    in one browser ends the session in every other browser and on every worker at once.
    """
    user_id, _, epoch = str(session_id).partition(":")
    try:
        user = db.session.get(User, int(user_id))
        epoch = int(epoch or 0)  # sessions from before epochs existed: epoch 0
    except (TypeError, ValueError):
        return None
    if user is None or epoch != (user.session_epoch or 0):
        return None
    return user


@login_manager.unauthorized_handler
def unauthorized():
    """Pages redirect to the login form and back; fragments and JSON get a plain 401."""
    if wants_json():
        return jsonify(ok=False, error=LOGIN_MESSAGE), 401
    login_url = url_for("auth.login", next=request.full_path.rstrip("?"))
    if is_htmx():
        return "", 401, {"HX-Redirect": login_url}
    return redirect(login_url)
