"""Who sees and does what: the one rule every surface asks (pages, live polls, the API, the
client through it, the Python API, console links, boot logs, guest facts, operations,
filters and counts).

Admins and operators see every project and run the cluster; a member sees only the projects
they belong to, and inside them uses VMs (create, start, stop, remove, console, boot log,
guest facts, operations) and sees images. A member never sees hosts, users, other projects'
anything or the audit log. A resource of a project one cannot see is "not found", never
"forbidden"; what a role may not do at all is forbidden, with the reason.

Inside a request the viewer is the logged-in user (session or API token); outside one (the
Python API, the CLI, the workers) it is the system, which sees everything, unless the caller
acts as a user (core.acting_as). A request with no user, or one whose account is gone, sees
nothing.
"""

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from flask import g, has_request_context
from flask_login import current_user

from .. import states
from ..errors import Forbidden, NotFound
from ..repositories import projects as projects_repo
from ..repositories import users as users_repo
from .common import db

ADMIN, OPERATOR, MEMBER = states.ADMIN, states.OPERATOR, states.MEMBER

# What each role may do beyond using its projects' VMs: a permission and its roles.
PERMISSIONS = {
    "hosts": (ADMIN, OPERATOR),  # see and manage hosts (addresses, users, keys)
    "images.manage": (ADMIN, OPERATOR),  # upload, build, import and remove images
    "vms.place": (ADMIN, OPERATOR),  # choose a VM's host, migrate VMs, see placement
    "operations.retry": (ADMIN, OPERATOR),  # retry or re-check a failed operation
    "operations.cancel_any": (ADMIN, OPERATOR),  # cancel others' (a member: their own only)
    "controller": (ADMIN, OPERATOR),  # initialise or destroy the IaaS
    "projects.manage": (ADMIN,),
    "users": (ADMIN,),
    "audit": (ADMIN,),
}
# How a refusal reads: "members cannot <this>".
DOING = {
    "hosts": "see or manage hosts",
    "images.manage": "upload, build, import or remove images",
    "vms.place": "choose hosts or move VMs",
    "operations.retry": "retry or re-check operations",
    "operations.cancel_any": "cancel operations others asked for",
    "controller": "initialise or destroy the IaaS",
    "projects.manage": "manage projects",
    "users": "manage users",
    "audit": "read the audit log",
}


@dataclass(frozen=True)
class Viewer:
    """Who is asking: a name, a role, and the projects they see (None: every one)."""

    name: str | None
    role: str
    project_ids: tuple | None

    def may(self, permission):
        """Whether this viewer's role allows a permission (the system's allows all)."""
        return self.role == "system" or self.role in PERMISSIONS[permission]

    def sees(self, project_id):
        """Whether a resource of this project is visible to this viewer."""
        return self.project_ids is None or project_id in self.project_ids


SYSTEM = Viewer(None, "system", None)
NOBODY = Viewer(None, "nobody", ())
# The user the Python API acts as in this thread or task (None: the request's user or the system).
_acting = ContextVar("nube_acting_viewer", default=None)


def of_user(conn, user):
    """The viewer of a user row (or User): a member's projects are read now."""
    if user is None:
        return NOBODY
    if user["role"] == MEMBER:
        ids = tuple(projects_repo.project_ids_of(conn, user["id"]))
        return Viewer(user["username"], MEMBER, ids)
    return Viewer(user["username"], user["role"], None)


def current():
    """The viewer the caller acts as, else this request's (read once per request), else the
    system outside requests."""
    if (acting := _acting.get()) is not None:
        return acting
    if not has_request_context():
        return SYSTEM
    viewer = g.get("nube_viewer")
    if viewer is None:
        viewer = NOBODY
        if current_user.is_authenticated:
            conn = db()
            viewer = of_user(conn, users_repo.get(conn, current_user.id))
        g.nube_viewer = viewer
    return viewer


def require(permission, viewer=None):
    """Refuse (Forbidden, with the reason) what the viewer's role may not do."""
    viewer = viewer or current()
    if not viewer.may(permission):
        who = "members" if viewer.role == MEMBER else "this account"
        raise Forbidden(f"{who} cannot {DOING[permission]}")
    return viewer


def visible_projects(viewer=None):
    """The project ids a viewer sees, for a repository's restriction (None: all)."""
    return (viewer or current()).project_ids


@contextmanager
def acting_as(username):
    """Inside: every service sees and may do what this user may (not found: NotFound)."""
    conn = db()
    user = users_repo.by_username(conn, username) if isinstance(username, str) else None
    if user is None:
        raise NotFound(f"user {username} not found")
    token = _acting.set(of_user(conn, user))
    try:
        yield _acting.get()
    finally:
        _acting.reset(token)


@contextmanager
def as_system():
    """Inside: the system's view (an operation's work, whoever asked for it)."""
    token = _acting.set(SYSTEM)
    try:
        yield SYSTEM
    finally:
        _acting.reset(token)
