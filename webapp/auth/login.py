"""Flask-Login wiring: the user loader and what an anonymous request for a member page gets."""

from flask import jsonify, redirect, request, url_for

from ..extensions import db, login_manager
from ..htmx import is_htmx, wants_json
from .models import User

LOGIN_MESSAGE = "Log in to see this page."


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    try:
        return db.session.get(User, int(user_id))
    except (TypeError, ValueError):
        return None


@login_manager.unauthorized_handler
def unauthorized():
    """Pages redirect to the login form and back; fragments and JSON get a plain 401."""
    if wants_json():
        return jsonify(ok=False, error=LOGIN_MESSAGE), 401
    login_url = url_for("auth.login", next=request.full_path.rstrip("?"))
    if is_htmx():
        return "", 401, {"HX-Redirect": login_url}
    return redirect(login_url)
