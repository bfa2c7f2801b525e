"""Projects: who may use what, and how much. Quotas are limits only; what a project uses is
always counted from its rows inside the transaction that adds or grows a resource (under the
write lock on SQLite and PostgreSQL alike), so no usage counter exists to drift."""

from ..db import transaction
from ..errors import Conflict, InvalidInput, NotFound, QuotaExceeded
from ..repositories import projects as projects_repo
from ..repositories import users as users_repo
from . import access, validate
from .common import audit, db

DEFAULT_PROJECT = "default"
RESERVED_NAMES = ("usage", "usage.csv")  # the showback pages' addresses under /projects/
QUOTAS = ("vms", "vcpus", "mem", "disk")
# How each quota reads in a message and on a page: its label and unit.
QUOTA_WORDS = {
    "vms": ("VMs", ""),
    "vcpus": ("vCPUs", ""),
    "mem": ("memory", "MiB"),
    "disk": ("disk", "GiB"),
}
QUOTA_MAX = 10**9  # a limit above any real cloud's size is a typing mistake
DESCRIPTION_MAX = 500
ADD_FIELDS = ("name", "description", "quota")
UPDATE_FIELDS = ADD_FIELDS


def _check_quota_input(value, base=None):
    """A quota mapping: each of QUOTAS a whole number >= 0, or None for no limit."""
    quota = dict(base or {})
    if value is None:
        return quota
    validate.require_dict(value, "quota")
    validate.refuse_unknown(value, QUOTAS, "quota")
    for key in QUOTAS:
        if key in value:
            quota[key] = (
                None
                if value[key] is None
                else validate.integer(value, key, minimum=0, maximum=QUOTA_MAX)
            )
    return quota


def _check_description(data, default=""):
    """A project's description: free text on one line, at most DESCRIPTION_MAX characters."""
    description = validate.text(data, "description", required=False, default=default) or ""
    if len(description) > DESCRIPTION_MAX or any(ch in description for ch in "\r\n"):
        raise InvalidInput(f"description must be one line of at most {DESCRIPTION_MAX} characters")
    return description


def _check_name(name):
    """A project's name: a display name, but none the showback pages use."""
    validate.name(name, "project name")
    if name in RESERVED_NAMES:
        raise InvalidInput(f"project name {name!r} is reserved")
    return name


def as_dict(conn, row):
    """A project with its quotas, usage and members (members see no other user), as callers
    see it."""
    seen_users = access.current().may("hosts")  # admins and operators: redaction's rule too
    return {
        "name": row["name"],
        "description": row["description"],
        "quota": {key: row[projects_repo.QUOTA_COLUMNS[key]] for key in QUOTAS},
        "usage": projects_repo.usage(conn, row["id"]),
        "members": [m["username"] for m in projects_repo.members(conn, row["id"])]
        if seen_users
        else [],
        "created_at": row["created_at"],
    }


def _get(conn, name):
    """A project row by name that the viewer sees; NotFound otherwise."""
    if not isinstance(name, str):
        raise InvalidInput(f"project must be a name, not {name!r}")
    row = projects_repo.by_name(conn, name)
    if row is None or not access.current().sees(row["id"]):
        raise NotFound(f"project {name} not found")
    return row


def name_of(project_id):
    """The name of today of a project by id (what a retried creation goes into; None for none,
    as a creation from before projects has); InvalidInput when it was removed meanwhile."""
    if project_id is None:
        return None
    row = projects_repo.get(db(), project_id)
    if row is None:
        raise InvalidInput("its project no longer exists: create the VM again in another one")
    return row["name"]


def get(name):
    """One project, with usage and members."""
    conn = db()
    return as_dict(conn, _get(conn, name))


def all_projects():
    """Every project the viewer sees, with usage and members."""
    conn = db()
    rows = projects_repo.all_projects(conn, access.visible_projects())
    return [as_dict(conn, row) for row in rows]


def add(data, actor):
    """Create a project; returns its name."""
    access.require("projects.manage")
    validate.require_dict(data, "project")
    validate.refuse_unknown(data, ADD_FIELDS, "project")
    name = _check_name(validate.text(data, "name"))
    description = _check_description(data)
    quota = _check_quota_input(data.get("quota"))
    conn = db()
    with transaction(conn):
        if projects_repo.by_name(conn, name):
            raise Conflict(f"a project named {name} already exists")
        projects_repo.insert(conn, name, description, quota)
        audit(conn, actor, "project.create", f"project:{name}", _describe_quota(quota))
    return name


def update(name, data, actor):
    """Rename a project, change its description or quotas (given keys only). A quota lowered
    below usage deletes nothing: it refuses growth until usage is back under it."""
    access.require("projects.manage")
    validate.require_dict(data, "project")
    validate.refuse_unknown(data, UPDATE_FIELDS, "project")
    conn = db()
    with transaction(conn):
        row = _get(conn, name)
        new_name = name
        if data.get("name") not in (None, name):
            new_name = _check_name(validate.text(data, "name"))
            if name == DEFAULT_PROJECT:
                raise Conflict("the project default cannot be renamed")
            if projects_repo.by_name(conn, new_name):
                raise Conflict(f"a project named {new_name} already exists")
        current = {key: row[projects_repo.QUOTA_COLUMNS[key]] for key in QUOTAS}
        quota = _check_quota_input(data.get("quota"), current)
        description = _check_description(data, row["description"])
        projects_repo.update(conn, row["id"], name=new_name, description=description, quota=quota)
        audit(conn, actor, "project.update", f"project:{new_name}", _describe_quota(quota))
    return new_name


def remove(name, actor):
    """Remove an empty project; one that still has resources is refused."""
    access.require("projects.manage")
    conn = db()
    with transaction(conn):
        row = _get(conn, name)
        if name == DEFAULT_PROJECT:
            raise Conflict("the project default cannot be removed")
        held = projects_repo.resource_count(conn, row["id"])
        if held:
            raise Conflict(
                f"project {name} still has {held} VM(s), volume(s) or network(s): remove them first"
            )
        projects_repo.delete(conn, row["id"])
        audit(conn, actor, "project.remove", f"project:{name}")


def _user_row(conn, username):
    """A user row by name; NotFound otherwise."""
    if not isinstance(username, str):
        raise InvalidInput(f"user must be a name, not {username!r}")
    row = users_repo.by_username(conn, username)
    if row is None:
        raise NotFound(f"user {username} not found")
    return row


def add_member(project, username, actor):
    """Make a user a member of a project (a no-op when they are one already)."""
    access.require("projects.manage")
    conn = db()
    with transaction(conn):
        row = _get(conn, project)
        user = _user_row(conn, username)
        if projects_repo.add_member(conn, row["id"], user["id"]):
            audit(conn, actor, "project.member.add", f"project:{project}", f"user {username}")


def remove_member(project, username, actor):
    """End a user's membership of a project."""
    access.require("projects.manage")
    conn = db()
    with transaction(conn):
        row = _get(conn, project)
        user = _user_row(conn, username)
        if not projects_repo.remove_member(conn, row["id"], user["id"]):
            raise NotFound(f"user {username} is not a member of project {project}")
        audit(conn, actor, "project.member.remove", f"project:{project}", f"user {username}")


def names_for():
    """The projects the viewer may make resources in, by name: a member's own, or every one
    (the project default first) for admins and operators."""
    rows = projects_repo.all_projects(db(), access.visible_projects())
    names = [row["name"] for row in rows]
    return sorted(names, key=lambda name: (name != DEFAULT_PROJECT, name))


def for_new_resource(conn, requested):
    """Inside the caller's transaction: the project a new resource goes into. Given a name,
    that project (one the viewer sees); else a member's only project, or `default` for admins,
    operators and the system."""
    viewer = access.current()
    if requested not in (None, ""):
        row = projects_repo.by_name(conn, requested) if isinstance(requested, str) else None
        if row is None or not viewer.sees(row["id"]):
            raise NotFound(f"project {requested} not found")
        return row
    if viewer.project_ids is None:
        return projects_repo.by_name(conn, DEFAULT_PROJECT)
    if len(viewer.project_ids) != 1:
        names = [r["name"] for r in projects_repo.all_projects(conn, viewer.project_ids)]
        raise InvalidInput(
            "project is required: you are a member of " + (", ".join(names) or "no project")
        )
    return projects_repo.get(conn, viewer.project_ids[0])


def check_room(conn, project, need, what="this VM"):
    """Inside the caller's transaction (under the write lock): refuse, naming the quota, its
    usage and its limit, when adding need ({quota: amount}) would go over any limit."""
    usage = projects_repo.usage(conn, project["id"])
    for key in QUOTAS:
        limit = project[projects_repo.QUOTA_COLUMNS[key]]
        wanted = need.get(key, 0)
        if limit is not None and wanted and usage[key] + wanted > limit:
            label, unit = QUOTA_WORDS[key]
            unit = f" {unit}" if unit else ""
            raise QuotaExceeded(
                f"project {project['name']}'s quota is reached: {label}: {usage[key]:,} of "
                f"{limit:,}{unit} used, {what} needs {wanted:,}"
            )


def _describe_quota(quota):
    """A quota mapping as the audit log reads it."""
    return ", ".join(
        f"{key} {'unlimited' if quota.get(key) is None else quota[key]}" for key in QUOTAS
    )
