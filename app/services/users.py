"""Operator accounts: create, authenticate, change passwords and roles, delete."""

import hashlib
import ipaddress
import secrets
import time
from datetime import UTC, datetime, timedelta

from flask import current_app
from flask_login import UserMixin
from werkzeug.security import check_password_hash, generate_password_hash

from .. import states
from ..db import stamp, transaction
from ..errors import Conflict, InvalidInput, NotFound
from ..limits import (
    PASSWORD_MAX,
    PASSWORD_MESSAGE,
    PASSWORD_MIN,
    USERNAME_MESSAGE,
    USERNAME_RE,
)
from ..numbers import parse_id
from ..repositories import audit as audit_repo
from ..repositories import tokens as tokens_repo
from ..repositories import users as users_repo
from . import access
from .common import audit, db, remote_addr

ROLES = states.ROLE.values
RATE_WINDOW = 300.0
# An account (from any address) or an address (on any account) is throttled after this many
# times LOGIN_RATE_LIMIT failures, except where the account logged in from that address
# within KNOWN_FOR: a guesser elsewhere, or a colleague behind the same tunnel, locks no one out.
WIDE_FACTOR = 4
KNOWN_FOR = timedelta(days=30)
SESSION_TOUCH = timedelta(minutes=5)  # how often a session's last use is written
SESSION_IDLE = timedelta(hours=12)  # a session unused this long has ended
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
    """Refuse passwords too short to be worth hashing, or longer than a login can send."""
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise InvalidInput(PASSWORD_MESSAGE)
    return password


def _check_role(role):
    """Refuse unknown roles."""
    if role not in ROLES:
        raise InvalidInput(f"role must be admin, operator or member, not {role!r}")
    return role


def load(session_id):
    """The User of a live server-side session ('<user id>:<token>'), or None (Flask-Login's
    loader): a session that logout, a password change or the user's removal ended is gone."""
    if not isinstance(session_id, str) or session_id.count(":") != 1:
        return None
    user_id, token = session_id.split(":")
    if parse_id(user_id) is None or not 20 <= len(token) <= 64:
        return None
    moment = datetime.now(UTC)
    oldest = stamp(moment - current_app.permanent_session_lifetime)
    token_hash = _hash(token)
    conn = db()
    row = users_repo.session_user(
        conn, token_hash, int(user_id), oldest, stamp(moment - SESSION_IDLE)
    )
    if row is None:
        return None
    if row["session_seen"] < stamp(moment - SESSION_TOUCH):
        users_repo.touch_session(conn, token_hash)
    return User(row, token)


def start_session(user):
    """Open a server-side session for a user who just proved their password."""
    conn = db()
    with transaction(conn):
        _open_session(conn, user)
    return user


def _open_session(conn, user):
    """Inside a transaction: record a new session for a user and give it to the User."""
    token = secrets.token_urlsafe(32)
    oldest = stamp(datetime.now(UTC) - current_app.permanent_session_lifetime)
    users_repo.prune_sessions(conn, oldest)
    users_repo.insert_session(conn, _hash(token), user.id, remote_addr())
    user.session_token = token


def _hash(token):
    """Only a session token's SHA-256 is stored: the table opens no session."""
    return hashlib.sha256(token.encode()).hexdigest()


def get(user_id):
    """A user row by id; NotFound otherwise."""
    row = users_repo.get(db(), int(user_id))
    if row is None:
        raise NotFound(f"user {user_id} not found")
    return User(row)


def all_users():
    """Every user."""
    access.require("users")
    return [User(row) for row in users_repo.all_users(db())]


def count():
    """How many users exist."""
    return users_repo.count(db())


def create(username, password, role, actor):
    """Add a user with a hashed password."""
    access.require("users")
    if not isinstance(username, str) or not USERNAME_RE.fullmatch(username):
        raise InvalidInput(USERNAME_MESSAGE)
    _check_password(password)
    _check_role(role)
    conn = db()
    with transaction(conn):
        if users_repo.by_username(conn, username):
            raise Conflict(f"user {username} already exists")
        user_id = users_repo.insert(
            conn, username, generate_password_hash(password, "scrypt"), role
        )
        audit(conn, actor, "user.create", f"user:{username}", f"role {role}")
    return get(user_id)


def authenticate(username, password, limit):
    """The User when the credentials are right; None otherwise. Throttled per account and
    address (InvalidInput); every attempt is counted before its password is checked."""
    conn = db()
    username = username if isinstance(username, str) else ""
    attempt = _reserve_attempt(conn, username, limit, "login")
    row = users_repo.by_username(conn, username)
    good = check_password_hash(row["password_hash"] if row else _DUMMY_HASH, password or "")
    if row is None or not good:
        attempt.failed()
        audit(conn, username, "login.failed")
        return None
    with transaction(conn):
        attempt.succeeded()
        users_repo.touch_login(conn, row["id"])
        audit(conn, row["username"], "login")
    return start_session(User(row))


class _Attempt:
    """One password check, counted before it happens (its row is 'pending' until settled)."""

    def __init__(self, conn, attempt_id, account, address):
        self.conn, self.id, self.account, self.address = conn, attempt_id, account, address

    def failed(self):
        """A wrong password: the attempt stays counted."""
        users_repo.fail_login_attempt(self.conn, self.id)

    def succeeded(self):
        """The right password: this account's failures from this address are forgotten."""
        users_repo.clear_login_attempts(self.conn, self.id, self.account, self.address)


def _reserve_attempt(conn, username, limit, action):
    """Count a password check for this account and address, or refuse it (audited) when they
    are throttled; returns the _Attempt to settle once the password is checked."""
    account, addr = username.lower(), remote_addr() or "local"  # user names ignore case
    address = _address_key(addr)
    now = time.time()
    with transaction(conn):  # count and reserve in one step: parallel guesses all count
        users_repo.prune_login_attempts(conn, now - RATE_WINDOW)
        reason = _throttled(conn, account, address, addr, now - RATE_WINDOW, limit)
        attempt_id = None
        if not reason:
            attempt_id = users_repo.reserve_login_attempt(conn, account, address, now)
    if reason:
        audit(conn, username, f"{action}.throttled", None, reason)
        raise InvalidInput(f"{reason}: wait a few minutes")
    return _Attempt(conn, attempt_id, account, address)


def _address_key(addr):
    """What throttling counts an address as: IPv4 itself, IPv6 by its /64 (one client
    commonly holds a whole /64)."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return addr
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _throttled(conn, account, address, addr, since, limit):
    """Why this attempt must wait, or None."""
    pair, on_account, from_address = users_repo.login_attempt_counts(conn, account, address, since)
    if pair >= limit:
        return "too many failed logins for this account from your address"
    if on_account < limit * WIDE_FACTOR and from_address < limit * WIDE_FACTOR:
        return None
    known_since = stamp(datetime.now(UTC) - KNOWN_FOR)
    if audit_repo.logged_in_from(conn, account, addr, known_since):
        return None  # this account's owner has logged in from here: never locked out
    if on_account >= limit * WIDE_FACTOR:
        return "too many failed logins for this account"
    return "too many failed logins from your address"


def logout(user):
    """End the user's current session and record the logout."""
    conn = db()
    if user.session_token:
        users_repo.delete_session(conn, _hash(user.session_token))
    audit(conn, user.username, "logout")


def verify_password(user_id, password, actor, action):
    """Prove a logged-in user's password again (changing it, creating an API token); counted
    like a login, so a stolen session cannot guess it. Returns the user's row."""
    conn = db()
    row = users_repo.get(conn, int(user_id))
    if row is None:
        raise NotFound(f"user {user_id} not found")
    attempt = _reserve_attempt(
        conn, row["username"], current_app.config["LOGIN_RATE_LIMIT"], action
    )
    if not check_password_hash(row["password_hash"], password or ""):
        attempt.failed()
        audit(conn, actor, f"{action}.failed", f"user:{row['username']}")
        raise InvalidInput("current password is wrong")
    attempt.succeeded()
    return row


def change_password(user_id, current, new, actor):
    """Change one's own password, proving the current one: every session of the user ends
    (the one it was changed in too: a copy of its cookie may be what the user fears) and their
    API tokens are revoked. Returns the User with the new session the caller goes on with."""
    row = verify_password(user_id, current, actor, "user.password")
    _check_password(new)
    password_hash = generate_password_hash(new, "scrypt")
    user = User(row)
    conn = db()
    with transaction(conn):
        users_repo.set_password(conn, row["id"], password_hash)
        users_repo.delete_sessions(conn, row["id"])  # whoever held a session is out
        revoked = tokens_repo.revoke_all_for_user(conn, row["id"], actor)
        audit(conn, actor, "user.password", f"user:{row['username']}", _revoked(revoked))
        _open_session(conn, user)
    return user


def _revoked(count):
    """The audit detail of a password change that revoked API tokens."""
    return f"{count} API token(s) revoked" if count else None


def reset_password(user_id, new, actor):
    """Set another user's password (admins): their sessions end and API tokens are revoked.
    Never one's own: that is Change password, which asks for the current one."""
    access.require("users")
    user = get(user_id)
    password_hash = _new_hash_for(user, new, actor)
    conn = db()
    with transaction(conn):
        _reset_password(conn, user, password_hash, actor)


def _new_hash_for(user, new, actor):
    """The hash of a password an admin sets for a user, once it passes every check."""
    if user.username == actor:
        raise Conflict("use Change password for your own account: it asks for the current one")
    return generate_password_hash(_check_password(new), "scrypt")


def _reset_password(conn, user, password_hash, actor):
    """Inside a transaction: store a user's new password; their sessions and tokens end."""
    users_repo.set_password(conn, user.id, password_hash)
    users_repo.delete_sessions(conn, user.id)  # whoever held the old password is out
    revoked = tokens_repo.revoke_all_for_user(conn, user.id, actor)
    audit(conn, actor, "user.reset_password", f"user:{user.username}", _revoked(revoked))


def set_role(user_id, role, actor):
    """Change a user's role, keeping at least one admin."""
    access.require("users")
    _check_role(role)
    conn = db()
    with transaction(conn):
        _set_role(conn, get(user_id), role, actor)


def _set_role(conn, user, role, actor):
    """Inside a transaction: change a user's role, unless it would leave no admin."""
    if user.role == "admin" and role != "admin" and users_repo.count(conn, "admin") <= 1:
        raise Conflict("the last admin cannot lose the admin role")
    users_repo.set_role(conn, user.id, role)
    audit(conn, actor, "user.role", f"user:{user.username}", f"{user.role} -> {role}")


def update(user_id, data, actor):
    """Change a user's role and/or password (admins) in one transaction: a refused change
    (either part) changes nothing."""
    access.require("users")
    if not data:
        raise InvalidInput("give a role, a password or both")
    if "role" in data:
        _check_role(data["role"])
    user = get(user_id)
    password_hash = _new_hash_for(user, data["password"], actor) if "password" in data else None
    conn = db()
    with transaction(conn):
        user = get(user_id)  # as it is now, under the write lock
        if "role" in data:
            _set_role(conn, user, data["role"], actor)
        if password_hash is not None:
            _reset_password(conn, user, password_hash, actor)
    return get(user_id)


def delete(user_id, actor_user):
    """Remove a user; nobody removes themselves, and one admin always stays."""
    access.require("users")
    conn = db()
    with transaction(conn):
        user = get(user_id)
        if user.id == actor_user.id:
            raise Conflict("you cannot remove your own account")
        if user.role == "admin" and users_repo.count(conn, "admin") <= 1:
            raise Conflict("the last admin cannot be removed")
        users_repo.delete(conn, user.id)
        audit(conn, actor_user.username, "user.delete", f"user:{user.username}")
