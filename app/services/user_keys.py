"""Each user's SSH public keys: kept once, picked from when creating a VM."""

from .. import cloudinit
from ..db import transaction
from ..errors import Conflict, InvalidInput, NotFound
from ..repositories import user_keys as keys_repo
from . import validate
from .common import audit, db

KEYS_PER_USER = cloudinit.SSH_KEYS_MAX  # a VM takes at most this many keys anyway
NAME_MAX = 63


def of_user(user_id):
    """A user's keys as their page lists them: id, name, type, fingerprint, comment."""
    return [
        {"id": row["id"], "name": row["name"], **cloudinit.describe_key(row["public_key"])}
        for row in keys_repo.of_user(db(), user_id)
    ]


def add(user, name, public_key):
    """Keep a public key under a name for a user (a dict with id and username)."""
    name = validate.name(validate.text({"name": name}, "name"), "key name")
    if len(name) > NAME_MAX:
        raise InvalidInput(f"key name must be at most {NAME_MAX} characters")
    if not isinstance(public_key, str) or not public_key.strip():
        raise InvalidInput("paste a public key")
    if "\n" in public_key.strip() or "\r" in public_key:
        raise InvalidInput("paste one public key (one line) at a time")
    key = cloudinit.check_ssh_key(public_key)
    fingerprint = cloudinit.fingerprint(key)
    conn = db()
    with transaction(conn):
        if keys_repo.find(conn, user["id"], name=name):
            raise Conflict(f"you already have a key named {name}")
        same = keys_repo.find(conn, user["id"], fingerprint=fingerprint)
        if same:
            raise Conflict(f"this key is already kept as {same['name']}")
        if len(keys_repo.of_user(conn, user["id"])) >= KEYS_PER_USER:
            raise InvalidInput(f"at most {KEYS_PER_USER} keys per user")
        keys_repo.insert(conn, user["id"], name, key, fingerprint)
        audit(conn, user["username"], "key.add", f"user:{user['username']}", fingerprint)
    return name


def remove(user, key_id):
    """Forget one of a user's keys (VMs made with it keep it)."""
    conn = db()
    with transaction(conn):
        if not keys_repo.delete(conn, user["id"], key_id):
            raise NotFound(f"key {key_id} not found")
        audit(conn, user["username"], "key.remove", f"user:{user['username']}", f"key {key_id}")


def public_keys(user_id, key_ids):
    """The public keys behind a user's chosen key ids (their own only), in order."""
    rows = {row["id"]: row["public_key"] for row in keys_repo.of_user(db(), user_id)}
    missing = [key_id for key_id in key_ids if key_id not in rows]
    if missing:
        raise NotFound(f"key {missing[0]} not found")
    return [rows[key_id] for key_id in key_ids]
