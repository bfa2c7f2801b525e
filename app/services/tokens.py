"""API tokens: a user's named bearer tokens for /api/v1 (create, authenticate, list, revoke).

A token is shown once, when it is created; only its SHA-256 is stored, so the table opens
nothing. It acts as its user with the role the user has at the time of each request."""

import hashlib
import re
import secrets
from datetime import UTC, date, datetime, time, timedelta

from ..db import stamp, transaction
from ..errors import Conflict, InvalidInput, NotFound, TokenRefused
from ..limits import TOKEN_NAME_MAX, TOKEN_NAME_MESSAGE
from ..numbers import parse_id
from ..repositories import tokens as tokens_repo
from ..repositories import users as users_repo
from .common import audit, db
from .users import User

RAW_PREFIX = "nube_"
RAW_BYTES = 32  # secrets.token_urlsafe(32): 43 characters of base64url
RAW_LENGTH = len(RAW_PREFIX) + 43
RAW_RE = re.compile(r"nube_[A-Za-z0-9_-]{43}")
PREFIX_LENGTH = 12  # what the pages show: enough to tell tokens apart, far too little to guess
NAME_MAX = TOKEN_NAME_MAX
MAX_YEARS = 5
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
USE_TOUCH = timedelta(minutes=1)  # how often a token's last use is written
PUBLIC_KEYS = (
    "id",
    "name",
    "user_id",
    "username",
    "prefix",
    "created_at",
    "expires_at",
    "last_used_at",
    "revoked_at",
)

NOT_VALID = "the token is not valid"
EXPIRED = "the token has expired"
REVOKED = "the token was revoked"
MAX_ID = 2**62  # as the URL converter: a bigger id must never reach SQLite


def _hash(raw):
    """Only a token's SHA-256 is stored (the raw token is random enough for a plain hash)."""
    return hashlib.sha256(raw.encode()).hexdigest()


def _check_name(name):
    """The stripped name, or InvalidInput."""
    if not isinstance(name, str):
        raise InvalidInput("the token's name must be text")
    name = name.strip()
    if not name:
        raise InvalidInput("the token needs a name")
    if len(name) > NAME_MAX:
        raise InvalidInput(TOKEN_NAME_MESSAGE)
    if not name.isprintable():
        raise InvalidInput("the token's name must be printable (no tabs, newlines or controls)")
    return name


def _years_later(day, years):
    """The same day some years later (29 February becomes the 28th)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _as_date(value):
    """A date from a date or a 'YYYY-MM-DD' string, or InvalidInput."""
    if isinstance(value, str):
        text = value.strip()
        if not DATE_RE.fullmatch(text):
            raise InvalidInput("the expiry date must be a date, YYYY-MM-DD")
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(f"the expiry date {text} is not a real date") from None
    # a datetime is a date too, but its time would be silently dropped: refused
    if isinstance(value, datetime) or not isinstance(value, date):
        raise InvalidInput("the expiry date must be a date, YYYY-MM-DD")
    return value


def _expiry(value):
    """The stamp a token ends at (the end of its last day, UTC), or None when it never ends."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    day = _as_date(value)
    today = datetime.now(UTC).date()
    # the token ends at the end of the day, so today is still a (short) future
    if day < today:
        raise InvalidInput(f"the expiry date {day.isoformat()} is in the past")
    if day > _years_later(today, MAX_YEARS):
        raise InvalidInput(f"the expiry date must be at most {MAX_YEARS} years ahead")
    return stamp(datetime.combine(day, time.max, tzinfo=UTC))


def _state(row, moment):
    """'revoked', 'expired' or 'active' at a moment (a stored stamp)."""
    if row["revoked_at"]:
        return "revoked"
    if row["expires_at"] and row["expires_at"] < moment:
        return "expired"
    return "active"


def public(row):
    """What callers may see of a token: never its hash, never its secret."""
    item = {key: row[key] for key in PUBLIC_KEYS}
    item["state"] = _state(row, stamp(datetime.now(UTC)))
    return item


def create(user, name, expires_at, actor):
    """A new token for a user: (its public dict, the raw token), the raw one returned only here."""
    # the raw token is never stored, logged or audited: only its hash and its first characters
    name = _check_name(name)
    ends = _expiry(expires_at)
    raw = RAW_PREFIX + secrets.token_urlsafe(RAW_BYTES)
    conn = db()
    with transaction(conn):
        if users_repo.get(conn, user.id) is None:
            raise NotFound(f"user {user.id} not found")
        token_id = tokens_repo.insert(conn, user.id, name, _hash(raw), raw[:PREFIX_LENGTH], ends)
        audit(conn, actor, "token.create", f"token:{token_id}", name)
        row = tokens_repo.get(conn, token_id)
    return public(row), raw


def authenticate(raw):
    """(its User, its public dict) for a raw token, or TokenRefused; use noted once a minute."""
    # the shape is checked before any hashing or SQL: junk of any size costs nothing
    if not isinstance(raw, str) or len(raw) != RAW_LENGTH or not RAW_RE.fullmatch(raw):
        raise TokenRefused(NOT_VALID)
    conn = db()
    row = tokens_repo.by_hash(conn, _hash(raw))
    if row is None:
        raise TokenRefused(NOT_VALID)
    moment = datetime.now(UTC)
    state = _state(row, stamp(moment))
    if state != "active":
        raise TokenRefused(REVOKED if state == "revoked" else EXPIRED)
    user_row = users_repo.get(conn, row["user_id"])
    if user_row is None:  # removed between the two reads: its tokens are gone with it
        raise TokenRefused(NOT_VALID)
    token = public(row)
    if row["last_used_at"] is None or row["last_used_at"] < stamp(moment - USE_TOUCH):
        token["last_used_at"] = stamp(moment)
        tokens_repo.touch_used(conn, row["id"], token["last_used_at"], stamp(moment - USE_TOUCH))
    return User(user_row), token


def page(viewer, query="", limit=50, offset=0):
    """(tokens, total) the viewer may see (admins everyone's) matching a filter, newest first."""
    owner = None if viewer.is_admin else viewer.id
    rows, total = tokens_repo.page(db(), query or "", limit, offset, user_id=owner)
    return [public(row) for row in rows], total


def _token_id(token_id):
    """A token id from an int or a string of digits, or None."""
    if isinstance(token_id, bool):
        return None
    if isinstance(token_id, int):
        return token_id if 0 <= token_id <= MAX_ID else None
    return parse_id(token_id)


def revoke(token_id, viewer):
    """Revoke a token (admins any, others their own) and return it; Conflict if already revoked."""
    # someone else's token is NotFound, as a missing one: ids reveal nothing
    number = _token_id(token_id)
    conn = db()
    with transaction(conn):
        row = None if number is None else tokens_repo.get(conn, number)
        if row is None or not (viewer.is_admin or row["user_id"] == viewer.id):
            raise NotFound(f"token {token_id} not found")
        if not tokens_repo.revoke(conn, row["id"], viewer.username):
            raise Conflict(f"token {row['name']} is already revoked")
        audit(conn, viewer.username, "token.revoke", f"token:{row['id']}", row["name"])
        row = tokens_repo.get(conn, row["id"])
    return public(row)
