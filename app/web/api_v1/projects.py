"""/api/v1/projects: projects, their quotas and members (changes: admins only)."""

from ...services import projects
from ..helpers import actor
from .auth import admin_only
from .common import Window, blueprint
from .schemas import Member, PageArgs, Project, ProjectCreate, ProjectUpdate, page_of

bp = blueprint("projects", __name__, "/projects", "Projects, their quotas and members")
ProjectPage = page_of(Project, "ProjectPage")


@bp.route("")
@bp.arguments(PageArgs, location="query")
@bp.response(200, ProjectPage)
def index(args):
    """Every project, by name, with quotas, usage and members, paged."""
    return Window(args).slice(projects.all_projects())


@bp.route("", methods=["POST"])
@admin_only
@bp.arguments(ProjectCreate)
@bp.response(201, Project)
def create(data):
    """Create a project."""
    return projects.get(projects.add(data, actor()))


@bp.route("/<name>")
@bp.response(200, Project)
def show(name):
    """One project."""
    return projects.get(name)


@bp.route("/<name>", methods=["PATCH"])
@admin_only
@bp.arguments(ProjectUpdate)
@bp.response(200, Project)
def update(data, name):
    """Rename a project or change its description or quotas; a quota below usage refuses
    growth and removes nothing."""
    return projects.get(projects.update(name, data, actor()))


@bp.route("/<name>", methods=["DELETE"])
@admin_only
@bp.response(204)
def remove(name):
    """Remove a project with no resources left."""
    projects.remove(name, actor())
    return ""


@bp.route("/<name>/members", methods=["POST"])
@admin_only
@bp.arguments(Member)
@bp.response(200, Project)
def add_member(data, name):
    """Make a user a member of the project."""
    projects.add_member(name, data["user"], actor())
    return projects.get(name)


@bp.route("/<name>/members/<user>", methods=["DELETE"])
@admin_only
@bp.response(200, Project)
def remove_member(name, user):
    """End a user's membership of the project."""
    projects.remove_member(name, user, actor())
    return projects.get(name)
