"""/api/v1/users: accounts, for admins only."""

from flask_login import current_user

from ...services import users
from ..helpers import actor
from .auth import admin_only, session_only
from .common import Window, blueprint
from .schemas import PageArgs, User, UserCreate, UserUpdate, page_of

DESCRIPTION = "User accounts (admins; creating and changing them: a dashboard session only)"
bp = blueprint("users", __name__, "/users", DESCRIPTION)
UserPage = page_of(User, "UserPage")


def _public(user):
    """A user as the API shows it (never a hash)."""
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "created_at": user.created_at,
        "last_login": user.last_login,
    }


@bp.route("")
@admin_only
@bp.arguments(PageArgs, location="query")
@bp.response(200, UserPage)
def index(args):
    """Every user, by name, paged."""
    return Window(args).slice([_public(user) for user in users.all_users()])


@bp.route("", methods=["POST"])
@admin_only
@session_only
@bp.arguments(UserCreate)
@bp.response(201, User)
def create(data):
    """Add a user (a dashboard session only: API tokens are refused)."""
    return _public(users.create(data["username"].strip(), data["password"], data["role"], actor()))


@bp.route("/<int:user_id>")
@admin_only
@bp.response(200, User)
def show(user_id):
    """One user."""
    return _public(users.get(user_id))


@bp.route("/<int:user_id>", methods=["PATCH"])
@admin_only
@session_only
@bp.arguments(UserUpdate)
@bp.response(200, User)
def update(data, user_id):
    """Change a user's role or password (a dashboard session only: API tokens are refused);
    their sessions and tokens end with a new password. A refused change changes nothing."""
    return _public(users.update(user_id, data, actor()))


@bp.route("/<int:user_id>", methods=["DELETE"])
@admin_only
@bp.response(204)
def remove(user_id):
    """Remove a user and their tokens (never yourself, never the last admin)."""
    users.delete(user_id, current_user)
    return ""
