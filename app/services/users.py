"""Operator accounts: create, authenticate, change passwords and roles, delete."""

import re
import time

from flask_login import UserMixin
from werkzeug.security import check_password_hash, generate_password_hash

from ..db import transaction
from ..errors import InvalidInput, NotFound
from ..repositories import users as users_repo
from .common import audit, db, remote_addr

ROLES = ("admin", "operator")
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 8
RATE_WINDOW = 300.0
# A fixed hash to check against when the user does not exist, so timing says nothing.
_DUMMY_HASH = generate_password_hash("nube-not-a-user", method="scrypt")


class User(UserMixin):
    """The logged-in user as Flask-Login sees it."""

    def __init__(self, row):
        self.id = row["id"]
        self.username = row["username"]
        self.role = row["role"]
        self.created_at = row["created_at"]
        self.last_login = row["last_login"]

    @property
    def is_admin(self):
        """Whether the user may manage users and see the audit log."""
        return self.role == "admin"


def _check_password(password):
    """Refuse passwords too short to be worth hashing."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD} characters")
    return password


def _check_role(role):
    """Refuse unknown roles."""
    if role not in ROLES:
        raise InvalidInput(f"role must be admin or operator, not {role!r}")
    return role


def load(user_id):
    """The User with this id, or None (Flask-Login's loader)."""
    try:
        row = users_repo.get(db(), int(user_id))
    except (TypeError, ValueError):
        return None
    return User(row) if row else None


def get(user_id):
    """A user row by id; NotFound otherwise."""
    row = users_repo.get(db(), int(user_id))
    if row is None:
        raise NotFound(f"user {user_id} not found")
    return User(row)


def all_users():
    """Every user."""
    return [User(row) for row in users_repo.all_users(db())]


def count():
    """How many users exist."""
    return users_repo.count(db())


def create(username, password, role, actor):
    """Add a user with a hashed password."""
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        raise InvalidInput("user name must be letters, digits, '_', '.', '@' or '-' (at most 64)")
    _check_password(password)
    _check_role(role)
    conn = db()
    with transaction(conn):
        if users_repo.by_username(conn, username):
            raise InvalidInput(f"user {username} already exists")
        user_id = users_repo.insert(
            conn, username, generate_password_hash(password, "scrypt"), role
        )
        audit(conn, actor, "user.create", f"user:{username}", f"role {role}")
    return get(user_id)


def authenticate(username, password, limit):
    """The User when the credentials are right; None otherwise. Rate-limited per address."""
    conn = db()
    addr = remote_addr() or "local"
    now = time.time()
    users_repo.clear_login_failures(conn, addr, before=now - RATE_WINDOW)
    if users_repo.recent_login_failures(conn, addr, now - RATE_WINDOW) >= limit:
        audit(conn, username, "login.throttled")
        raise InvalidInput("too many failed logins from your address: wait a few minutes")
    row = users_repo.by_username(conn, username or "")
    if row is None or not check_password_hash(
        row["password_hash"] if row else _DUMMY_HASH, password or ""
    ):
        if row is None:
            check_password_hash(_DUMMY_HASH, password or "")
        users_repo.record_login_failure(conn, addr, now)
        audit(conn, username, "login.failed")
        return None
    users_repo.clear_login_failures(conn, addr)
    users_repo.touch_login(conn, row["id"])
    audit(conn, row["username"], "login")
    return User(row)


def logout(user):
    """Record a logout."""
    audit(db(), user.username, "logout")


def change_password(user_id, current, new, actor):
    """Change one's own password, proving the current one."""
    conn = db()
    row = users_repo.get(conn, int(user_id))
    if row is None or not check_password_hash(row["password_hash"], current or ""):
        raise InvalidInput("current password is wrong")
    _check_password(new)
    users_repo.set_password(conn, row["id"], generate_password_hash(new, "scrypt"))
    audit(conn, actor, "user.password", f"user:{row['username']}")


def reset_password(user_id, new, actor):
    """Set another user's password (admins)."""
    user = get(user_id)
    _check_password(new)
    conn = db()
    users_repo.set_password(conn, user.id, generate_password_hash(new, "scrypt"))
    audit(conn, actor, "user.reset_password", f"user:{user.username}")


def set_role(user_id, role, actor):
    """Change a user's role, keeping at least one admin."""
    _check_role(role)
    conn = db()
    with transaction(conn):
        user = get(user_id)
        if user.role == "admin" and role != "admin" and users_repo.count(conn, "admin") <= 1:
            raise InvalidInput("the last admin cannot lose the admin role")
        users_repo.set_role(conn, user.id, role)
        audit(conn, actor, "user.role", f"user:{user.username}", f"{user.role} -> {role}")


def delete(user_id, actor_user):
    """Remove a user; nobody removes themselves, and one admin always stays."""
    conn = db()
    with transaction(conn):
        user = get(user_id)
        if user.id == actor_user.id:
            raise InvalidInput("you cannot remove your own account")
        if user.role == "admin" and users_repo.count(conn, "admin") <= 1:
            raise InvalidInput("the last admin cannot be removed")
        users_repo.delete(conn, user.id)
        audit(conn, actor_user.username, "user.delete", f"user:{user.username}")
