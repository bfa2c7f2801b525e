"""Operator accounts: create, authenticate, change passwords and roles, delete."""

import hashlib
import re
import secrets
import time
from datetime import UTC, datetime, timedelta

from flask import current_app
from flask_login import UserMixin
from werkzeug.security import check_password_hash, generate_password_hash

from ..db import transaction
from ..errors import InvalidInput, NotFound
from ..repositories import audit as audit_repo
from ..repositories import users as users_repo
from .common import audit, db, remote_addr

ROLES = ("admin", "operator")
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 8
RATE_WINDOW = 300.0
# An account (from any address) or an address (on any account) is throttled after this many
# times LOGIN_RATE_LIMIT failures, except where the account logged in from that address
# within KNOWN_FOR: a guesser elsewhere, or a colleague behind the same tunnel, locks no one out.
WIDE_FACTOR = 4
KNOWN_FOR = timedelta(days=30)
SESSION_TOUCH = timedelta(minutes=5)
# A fixed hash to check against when the user does not exist, so timing says nothing.
_DUMMY_HASH = generate_password_hash("nube-not-a-user", method="scrypt")


class User(UserMixin):
    """The logged-in user as Flask-Login sees it."""

    def __init__(self, row, session_token=None):
        self.id = row["id"]
        self.username = row["username"]
        self.role = row["role"]
        self.created_at = row["created_at"]
        self.last_login = row["last_login"]
        self.session_token = session_token  # the server-side session this login holds

    def get_id(self):
        """What the session cookie carries: the user id and the session's secret token."""
        return f"{self.id}:{self.session_token}"

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


def load(session_id):
    """The User of a live server-side session ('<user id>:<token>'), or None (Flask-Login's
    loader): a session that logout, a password change or the user's removal ended is gone."""
    if not isinstance(session_id, str) or session_id.count(":") != 1:
        return None
    user_id, token = session_id.split(":")
    if not user_id.isdigit() or not 20 <= len(token) <= 64:
        return None
    lifetime = current_app.permanent_session_lifetime
    oldest = _stamp(datetime.now(UTC) - lifetime)
    token_hash = _hash(token)
    conn = db()
    row = users_repo.session_user(conn, token_hash, int(user_id), oldest)
    if row is None:
        return None
    if row["session_seen"] < _stamp(datetime.now(UTC) - SESSION_TOUCH):
        users_repo.touch_session(conn, token_hash)
    return User(row, token)


def start_session(user):
    """Open a server-side session for a user who just proved their password."""
    conn = db()
    token = secrets.token_urlsafe(32)
    oldest = _stamp(datetime.now(UTC) - current_app.permanent_session_lifetime)
    with transaction(conn):
        users_repo.prune_sessions(conn, oldest)
        users_repo.insert_session(conn, _hash(token), user.id, remote_addr())
    user.session_token = token
    return user


def _hash(token):
    """Only a session token's SHA-256 is stored: the table opens no session."""
    return hashlib.sha256(token.encode()).hexdigest()


def _stamp(moment):
    """A time in the ISO-8601 form every table stores."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    if not isinstance(username, str) or not USERNAME_RE.fullmatch(username):
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
    """The User when the credentials are right; None otherwise. Throttled per account and
    address (InvalidInput); every attempt is counted before its password is checked."""
    conn = db()
    addr = remote_addr() or "local"
    username = username if isinstance(username, str) else ""
    now = time.time()
    with transaction(conn):  # count and reserve in one step: parallel guesses all count
        users_repo.prune_login_attempts(conn, now - RATE_WINDOW)
        reason = _throttled(conn, username, addr, now - RATE_WINDOW, limit)
        attempt = None if reason else users_repo.reserve_login_attempt(conn, username, addr, now)
    if reason:
        audit(conn, username, "login.throttled", None, reason)
        raise InvalidInput(f"{reason}: wait a few minutes")
    row = users_repo.by_username(conn, username)
    good = check_password_hash(row["password_hash"] if row else _DUMMY_HASH, password or "")
    if row is None or not good:
        users_repo.fail_login_attempt(conn, attempt)
        audit(conn, username, "login.failed")
        return None
    with transaction(conn):
        users_repo.clear_login_attempts(conn, attempt, username, addr)
        users_repo.touch_login(conn, row["id"])
        audit(conn, row["username"], "login")
    return start_session(User(row))


def _throttled(conn, username, addr, since, limit):
    """Why this attempt must wait, or None."""
    pair, account, address = users_repo.login_attempt_counts(conn, username, addr, since)
    if pair >= limit:
        return "too many failed logins for this account from your address"
    if account < limit * WIDE_FACTOR and address < limit * WIDE_FACTOR:
        return None
    known_since = _stamp(datetime.now(UTC) - KNOWN_FOR)
    if audit_repo.logged_in_from(conn, username, addr, known_since):
        return None  # this account's owner has logged in from here: never locked out
    if account >= limit * WIDE_FACTOR:
        return "too many failed logins for this account"
    return "too many failed logins from your address"


def logout(user):
    """End the user's current session and record the logout."""
    conn = db()
    if user.session_token:
        users_repo.delete_session(conn, _hash(user.session_token))
    audit(conn, user.username, "logout")


def change_password(user_id, current, new, actor, current_session=None):
    """Change one's own password, proving the current one."""
    conn = db()
    row = users_repo.get(conn, int(user_id))
    if row is None or not check_password_hash(row["password_hash"], current or ""):
        raise InvalidInput("current password is wrong")
    _check_password(new)
    keep = _hash(current_session) if current_session else None
    with transaction(conn):
        users_repo.set_password(conn, row["id"], generate_password_hash(new, "scrypt"))
        users_repo.delete_sessions(conn, row["id"], keep_hash=keep)  # every other session ends
        audit(conn, actor, "user.password", f"user:{row['username']}")


def reset_password(user_id, new, actor):
    """Set another user's password (admins)."""
    user = get(user_id)
    _check_password(new)
    conn = db()
    with transaction(conn):
        users_repo.set_password(conn, user.id, generate_password_hash(new, "scrypt"))
        users_repo.delete_sessions(conn, user.id)  # whoever held the old password is out
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
