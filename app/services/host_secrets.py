"""Hosts' sudo passwords sealed with the target they were given for (address and user), and
hosts' recorded SSH keys with the controller's MAC: a row changed by whoever can only write
the database (not Nube's code, not its keys) sends no password elsewhere and plants no key."""

import logging

from ..repositories import hosts as hosts_repo

log = logging.getLogger(__name__)

HOST_KEYS = "nube host keys v1"  # the MAC's purpose: its key is derived for this use only


def target(address, user):
    """What a host's password is sealed with: the machine and the account it belongs to."""
    return {"address": address, "user": user}


def seal_password(box, password, address, user):
    """The ciphertext of a host's sudo password, usable for user@address only (None: none)."""
    return box.seal(password, target(address, user)) if password else None


def password_for(conn, box, row):
    """(password, None) when the host's stored password was sealed for its current address
    and user; (None, why) otherwise, and then it is never sent. A password stored before
    passwords were sealed is sealed now, for the address it was recorded for."""
    token = hosts_repo.secret(conn, row["id"])  # only when recorded for the current address
    if not token:
        return None, None
    password, bound = box.unseal(token)
    wanted = target(row["address"], row["user"])
    if bound is None:  # an older Nube's ciphertext: bind it from now on
        hosts_repo.set_secret(conn, row["id"], box.seal(password, wanted), row["address"])
        log.info("host %s: its stored password is now sealed for its address", row["name"])
        return password, None
    if bound != wanted:
        return None, (
            f"the stored one was given for {bound.get('user')}@{bound.get('address')}, not for"
            f" {row['user']}@{row['address']} (the host's row was changed outside Nube?), and"
            " is never sent anywhere else: give the host's password again"
        )
    return password, None


def rebind_user(conn, box, row, user):
    """Keep a host's stored password usable after an operator changes its user (it stays
    with the same machine); a password that does not verify for the row stays as it is."""
    password, _why = password_for(conn, box, row)
    if password is not None:
        hosts_repo.set_secret(
            conn, row["id"], seal_password(box, password, row["address"], user), row["address"]
        )


def host_key_mac(box, host_id, address, key):
    """The controller's MAC of a host's recorded key text (for that host id and address)."""
    return box.mac(HOST_KEYS, host_id, address, key or "")


def record_host_key(conn, box, host_id, address, key):
    """Store a host's key text with the controller's MAC over it."""
    hosts_repo.set_host_key(conn, host_id, key, host_key_mac(box, host_id, address, key))


def key_verifies(box, host_id, address, key, mac):
    """Whether a row's recorded key carries the MAC only a controller can make."""
    return box.verify(mac, HOST_KEYS, host_id, address, key or "")
