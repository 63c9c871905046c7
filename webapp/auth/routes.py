"""HTTP routes of accounts: register, log in, log out, change one's password."""

from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from ..errors import ValidationError
from . import bp, devices, services


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return None
    return target


def _account_form(template: str, check, welcome: bool = False):
    """GET shows ``template``; POST checks the username and password with ``check`` and logs in."""
    if request.method == "GET":
        return render_template(template, next=safe_next(request.args.get("next")))
    try:
        user = check(request.form.get("username"), request.form.get("password"))
    except ValidationError as error:
        return render_template(
            template,
            error=str(error),
            username=request.form.get("username", ""),
            next=safe_next(request.form.get("next")),
        ), 422
    # A fresh session on login: nothing from before (a planted session id) carries over.
    session.clear()
    login_user(user)
    if welcome:
        flash(f"Welcome, {user.username}!", "success")
    response = redirect(safe_next(request.form.get("next")) or url_for("chat.index"), 303)
    # This browser's later login attempts as this user count against it, not the username.
    return devices.remember(response, user.username_key)


@bp.route("/register", methods=["GET", "POST"])
def register():
    """Create an account and log in."""
    if request.method == "GET" and current_user.is_authenticated:
        # The form would log them in as someone else: send them on instead, and say why.
        flash(
            f"You are logged in as {current_user.username}. "
            "Log out first to create another account.",
            "info",
        )
        return redirect(safe_next(request.args.get("next")) or url_for("chat.index"), 303)
    return _account_form("auth/register.html", services.register, welcome=True)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Log in with a username and password."""
    return _account_form("auth/login.html", services.authenticate)


@bp.post("/logout")
def logout():
    """End the session, in every browser and tab where this user is logged in."""
    if current_user.is_authenticated:
        user = current_user._get_current_object()
        logout_user()
        services.end_sessions(user)
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("table.index"), 303)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Change one's password (current and new); every other session ends, as at logout."""
    if request.method == "GET":
        return render_template("auth/password.html")
    user = current_user._get_current_object()
    try:
        services.change_password(
            user, request.form.get("current_password"), request.form.get("new_password")
        )
    except ValidationError as error:
        return render_template("auth/password.html", error=str(error), field=error.field), 422
    # Every session ended with the new epoch, this one too: it starts afresh, logged in again.
    session.clear()
    login_user(user)
    flash("Your password is changed. Your other browsers and tabs are logged out.", "success")
    return redirect(url_for("chat.index"), 303)
