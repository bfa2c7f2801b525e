"""Routes of the projects blueprint: list, show, create, change and remove projects, and
their members."""

from flask import Blueprint, Response, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from ...errors import NubeError
from ...services import metering
from ...services import projects as projects_service
from ...services import users as users_service
from ..helpers import actor, admin_required, flash_error
from .forms import MemberForm, ProjectForm, RemoveForm

bp = Blueprint("projects", __name__, url_prefix="/projects")


@bp.route("/", methods=["GET", "POST"])
def index():
    """Every project with its usage against its quotas; admins add projects here."""
    form = ProjectForm()
    if form.validate_on_submit():
        if not _is_admin():
            abort(403)
        try:
            name = projects_service.add(form.data_for_service(), actor())
        except NubeError as error:
            flash_error(error)
        else:
            flash(f"Project {name} created.", "success")
            return redirect(url_for("projects.show", name=name))
    return render_template(
        "projects/index.html",
        projects=projects_service.all_projects(),
        form=form,
        words=projects_service.QUOTA_WORDS,
    )


@bp.route("/usage")
def usage():
    """Showback: what each project used per month (vCPU, memory and disk hours)."""
    rows = metering.monthly()
    top = max((row["vcpu_hours"] for row in rows), default=0)
    return render_template("projects/usage.html", rows=rows, top=top)


@bp.route("/usage.csv")
def usage_csv():
    """The showback table as CSV."""
    return Response(
        metering.as_csv(metering.monthly()),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=nube-usage.csv"},
    )


@bp.route("/<name>", methods=["GET", "POST"])
def show(name):
    """One project: usage against quotas, members; admins change it here."""
    project = projects_service.get(name)
    form = ProjectForm(data=_form_data(project))
    if form.validate_on_submit():
        if not _is_admin():
            abort(403)
        try:
            new_name = projects_service.update(name, form.data_for_service(), actor())
        except NubeError as error:
            flash_error(error)
        else:
            flash(f"Project {new_name} saved.", "success")
            return redirect(url_for("projects.show", name=new_name))
    members = MemberForm()
    members.user.choices = _others(project) if _is_admin() else []  # only admins list users
    return render_template(
        "projects/show.html",
        project=project,
        form=form,
        member_form=members,
        remove_form=RemoveForm(),
        words=projects_service.QUOTA_WORDS,
    )


@bp.route("/<name>/remove", methods=["POST"])
@admin_required
def remove(name):
    """Remove an empty project."""
    if not RemoveForm().validate_on_submit():
        abort(400)
    try:
        projects_service.remove(name, actor())
    except NubeError as error:
        flash_error(error)
        return redirect(url_for("projects.show", name=name))
    flash(f"Project {name} removed.", "success")
    return redirect(url_for("projects.index"))


@bp.route("/<name>/members", methods=["POST"])
@admin_required
def add_member(name):
    """Make a user a member of the project."""
    form = MemberForm()
    form.user.choices = [u.username for u in users_service.all_users()]
    if form.validate_on_submit():
        try:
            projects_service.add_member(name, form.user.data, actor())
        except NubeError as error:
            flash_error(error)
        else:
            flash(f"{form.user.data} is now a member of {name}.", "success")
    else:
        flash("Choose a user to add.", "danger")
    return redirect(url_for("projects.show", name=name))


@bp.route("/<name>/members/<user>/remove", methods=["POST"])
@admin_required
def remove_member(name, user):
    """End a user's membership of the project."""
    if not RemoveForm().validate_on_submit():
        abort(400)
    try:
        projects_service.remove_member(name, user, actor())
    except NubeError as error:
        flash_error(error)
    else:
        flash(f"{user} is no longer a member of {name}.", "success")
    return redirect(url_for("projects.show", name=name))


def _is_admin():
    """Whether the logged-in user may change projects."""
    return current_user.is_admin


def _others(project):
    """The users who could join the project: everyone not yet a member."""
    return [u.username for u in users_service.all_users() if u.username not in project["members"]]


def _form_data(project):
    """A project as the form's initial values."""
    return {
        "name": project["name"],
        "description": project["description"],
        **{f"quota_{key}": value for key, value in project["quota"].items()},
    }
