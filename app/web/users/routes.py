"""Routes of the users blueprint: accounts and the audit log, for admins only."""

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import current_user

from ...errors import InvalidInput, NubeError
from ...services import audit as audit_service
from ...services import users as users_service
from ..helpers import Page, actor, admin_required, flash_error, flash_form_errors
from .forms import RemoveForm, ResetPasswordForm, RoleForm, UserForm

bp = Blueprint("users", __name__, url_prefix="/users")


@bp.route("/", methods=["GET", "POST"])
@admin_required
def index():
    """Every user, with the forms to add, change and remove users."""
    form = UserForm()
    if form.validate_on_submit():
        try:
            user = users_service.create(
                form.username.data.strip(), form.password.data, form.role.data, actor()
            )
        except NubeError as error:
            flash_error(error)
        else:
            flash(f"User {user.username} added ({user.role}).", "success")
            return redirect(url_for("users.index"))
    return render_template(
        "users/index.html", users=users_service.all_users(), form=form, roles=users_service.ROLES
    )


@bp.route("/<int:user_id>/role", methods=["POST"])
@admin_required
def set_role(user_id):
    """Change a user's role (one admin always stays)."""
    form = RoleForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return redirect(url_for("users.index"))
    try:
        users_service.set_role(user_id, form.role.data, actor())
    except InvalidInput as error:
        flash_error(error)
        return redirect(url_for("users.index"))
    flash(f"Role changed to {form.role.data}.", "success")
    if user_id == current_user.id and form.role.data != "admin":
        return redirect(url_for("main.overview"))  # no longer allowed on the users page
    return redirect(url_for("users.index"))


@bp.route("/<int:user_id>/password", methods=["POST"])
@admin_required
def reset_password(user_id):
    """Set another user's password."""
    form = ResetPasswordForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return redirect(url_for("users.index"))
    try:
        users_service.reset_password(user_id, form.password.data, actor())
    except InvalidInput as error:
        flash_error(error)
    else:
        flash("Password reset.", "success")
    return redirect(url_for("users.index"))


@bp.route("/<int:user_id>/remove", methods=["POST"])
@admin_required
def remove(user_id):
    """Remove a user; the service refuses oneself and the last admin."""
    form = RemoveForm()
    if form.validate_on_submit():
        try:
            users_service.delete(user_id, current_user)
        except InvalidInput as error:
            flash_error(error)
        else:
            flash("User removed.", "success")
    return redirect(url_for("users.index"))


@bp.route("/audit")
@admin_required
def audit():
    """The audit log, filtered and paged, newest first."""
    page = Page(current_app.config["PAGE_SIZE"], None, ())
    records = []
    try:
        records, page.total = audit_service.page(page.query, page.per_page, page.offset)
    except NubeError as error:
        page.error = str(error)
    return render_template("users/audit.html", records=records, page=page)
