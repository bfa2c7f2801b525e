"""Console use cases: issue a single-use link to a running VM's screen, and redeem it."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app

from ..db import now, stamp, transaction
from ..errors import InvalidInput, NotFound, NubeError
from ..extensions import adapters
from ..repositories import audit as audit_repo
from ..repositories import console as console_repo
from ..repositories import hosts as hosts_repo
from ..repositories import users as users_repo
from ..repositories import vms as vms_repo
from . import access
from .common import audit, db

TOKEN_BYTES = 32  # 256 bits, URL-safe base64: 43 characters
MAX_TOKEN_LENGTH = 128


class ConsoleRefused(NubeError):
    """A console link that opens nothing: unknown, expired, used, or not the caller's."""

    def __init__(self, message, vm_id=None):
        super().__init__(message)
        self.vm_id = vm_id


@dataclass(frozen=True)
class ConsoleTarget:
    """What a redeemed link opens: a VM's VNC display on its host, for one user."""

    vm_id: str
    username: str
    host_name: str
    address: str
    user: str
    vnc_address: str
    vnc_port: int


def hash_token(token):
    """The stored form of a token: only its SHA-256 is kept, so the table opens nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


def _check_token(token):
    """Refuse what cannot be a token before it reaches the database."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise ConsoleRefused("no valid console token")
    return token


def mint(vm_id, user_id, username):
    """A new console link for a running VM, valid CONSOLE_TOKEN_TTL seconds and once."""
    conn = db()
    vm = vms_repo.get(conn, vm_id) if isinstance(vm_id, str) else None
    holder = access.of_user(conn, users_repo.get(conn, user_id))  # whom the link is for
    if vm is None or not holder.sees(vm["project_id"]):
        raise NotFound(f"VM {vm_id} not found")
    if vm["state"] != "running":
        raise InvalidInput(f"VM {vm['id']} is {vm['state']}: only a running VM has a console")
    ttl = current_app.config["CONSOLE_TOKEN_TTL"]
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires_at = stamp(datetime.now(UTC) + timedelta(seconds=ttl))
    with transaction(conn):
        console_repo.delete_expired(conn, now())
        console_repo.insert(conn, hash_token(token), user_id, vm["id"], expires_at)
        audit(conn, username, "vm.console", f"vm:{vm['id']}", f"console link valid {ttl}s")
    return token


def peek(token, user_id):
    """The link's row if it belongs to this user and can still open a console; it stays unused.

    Another user's link is NotFound, as if it did not exist; a used or expired one of the
    user's own is ConsoleRefused (carrying the VM, so a page can offer a new link).
    """
    try:
        token = _check_token(token)
    except ConsoleRefused:
        raise NotFound("no such console link") from None
    row = console_repo.get(db(), hash_token(token))
    if row is None or row["user_id"] != user_id:
        raise NotFound("no such console link")
    if row["used_at"]:
        raise ConsoleRefused("This console link was already used.", row["vm_id"])
    if row["expires_at"] <= now():
        raise ConsoleRefused("This console link has expired.", row["vm_id"])
    return dict(row)


def redeem(token, session_user_id, remote_addr=None):
    """Use a link (once): check it, its user's session and the VM; find the VM's VNC display.

    session_user_id is the user id of the browser session that presents the link; a link only
    opens for the user it was issued to. The link is spent even when a later check refuses it.
    """
    conn = db()
    token_hash = hash_token(_check_token(token))
    with transaction(conn):  # the compare-and-swap makes a link single-use under races too
        row = console_repo.get(conn, token_hash)  # None as well once its user is deleted
        if row is None:
            raise ConsoleRefused("unknown console token")
        fresh = console_repo.consume(conn, token_hash, now(), remote_addr)
    vm_id, username = row["vm_id"], row["username"]

    def refuse(reason):
        audit_repo.add(conn, username, "vm.console.refused", f"vm:{vm_id}", reason, remote_addr)
        return ConsoleRefused(reason, vm_id)

    if not fresh:
        reason = "console token already used" if row["used_at"] else "console token expired"
        raise refuse(reason)
    if session_user_id is None or str(session_user_id) != str(row["user_id"]):
        raise refuse("console token presented without its user's session")
    vm = vms_repo.get(conn, vm_id)
    if vm is None:
        raise refuse("the VM no longer exists")
    holder = access.of_user(conn, users_repo.get(conn, row["user_id"]))
    if not holder.sees(vm["project_id"]):  # their membership ended since the link was made
        raise refuse("the console token's user no longer sees this VM")
    host = hosts_repo.get(conn, vm["host"])
    display = adapters().hypervisor.vnc_display(dict(host), vm_id)
    if display is None:
        raise refuse("the VM is not running (no VNC display)")
    return ConsoleTarget(
        vm_id=vm_id,
        username=username,
        host_name=host["name"],
        address=host["address"],
        user=host["user"],
        vnc_address=display.address,
        vnc_port=display.port,
    )


def record_open(target, remote_addr=None, error=None):
    """Audit a console that opened (or whose tunnel failed) for a redeemed link."""
    where = f"VNC {target.vnc_address}:{target.vnc_port} on host {target.host_name}"
    if error is None:
        action, detail = "vm.console.open", where
    else:
        action, detail = "vm.console.failed", f"{where}: {error}"
    audit_repo.add(db(), target.username, action, f"vm:{target.vm_id}", detail, remote_addr)
