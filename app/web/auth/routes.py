"""Routes of the auth blueprint."""

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.exceptions import HTTPException

from ...errors import InvalidInput, NubeError
from ...services import user_keys, users
from .forms import KeyForm, LoginForm, PasswordForm, RemoveKeyForm

bp = Blueprint("auth", __name__)


def _safe_next(target):
    """Only local pages are followed after login: no open redirect, and no URL a GET cannot
    open (an action's POST-only URL would answer 405)."""
    if not target:
        return url_for("main.overview")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("main.overview")
    try:
        current_app.url_map.bind("localhost").match(parts.path, method="GET")
    except HTTPException:
        return url_for("main.overview")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Log in."""
    if current_user.is_authenticated:
        return redirect(url_for("main.overview"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = users.authenticate(
                form.username.data, form.password.data, current_app.config["LOGIN_RATE_LIMIT"]
            )
        except InvalidInput as error:
            flash(str(error), "danger")
            return render_template("auth/login.html", form=form), 429
        if user is None:
            flash("Wrong user name or password.", "danger")
            return render_template("auth/login.html", form=form), 401
        login_user(user)
        return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """Log out (POST only, so a link or image cannot log anybody out)."""
    users.logout(current_user)
    logout_user()
    flash("Logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password():
    """Change one's own password."""
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            user = users.change_password(
                current_user.id, form.current.data, form.new.data, current_user.username
            )
        except InvalidInput as error:
            flash(str(error), "danger")
        else:
            login_user(user)  # this tab goes on with the new session; the old one has ended
            flash("Password changed.", "success")
            return redirect(url_for("main.overview"))
    return render_template("auth/password.html", form=form)


def _me():
    """The logged-in user as the keys service takes it."""
    return {"id": current_user.id, "username": current_user.username}


@bp.route("/account/keys", methods=["GET", "POST"])
@login_required
def keys():
    """One's own SSH public keys: list, add."""
    form = KeyForm()
    if form.validate_on_submit():
        try:
            name = user_keys.add(_me(), form.name.data.strip(), form.public_key.data)
        except NubeError as error:
            flash(str(error), "danger")
        else:
            flash(f"Key {name} added.", "success")
            return redirect(url_for("auth.keys"))
    return render_template("auth/keys.html", form=form, keys=user_keys.of_user(current_user.id))


@bp.route("/account/keys/<int:key_id>/remove", methods=["POST"])
@login_required
def remove_key(key_id):
    """Forget one of one's own keys."""
    if RemoveKeyForm().validate_on_submit():
        try:
            user_keys.remove(_me(), key_id)
        except NubeError as error:
            flash(str(error), "danger")
        else:
            flash("Key removed.", "success")
    return redirect(url_for("auth.keys"))
