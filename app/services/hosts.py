"""Host use cases as callers see them: validate, write rows, start operations."""

from flask import current_app

from .. import states
from ..db import transaction
from ..domain_xml import domain_type
from ..errors import Busy, Conflict, HostKeyChanged, InvalidInput, NotFound
from ..extensions import adapters
from ..numbers import is_digits
from ..ops import kinds
from ..ops.claims import Target
from ..ops.launch import launch
from ..ops.request import record, request
from ..repositories import hosts as hosts_repo
from ..repositories import networks as networks_repo
from ..repositories import operations as ops_repo
from ..repositories import vms as vms_repo
from . import access, host_secrets, validate
from .common import audit, busy_message, db

ADD_FIELDS = ("address", "user", "password", "name", "prepare", "share", "network", "data_address")
UPDATE_FIELDS = (
    "name",
    "user",
    "password",
    "network",
    "state",
    "address",
    "share",
    "data_address",
)
SORT_COLUMNS = hosts_repo.SORT_COLUMNS
SHARES = states.SHARE.values
PUBLIC_KEYS = (
    "id",
    "name",
    "address",
    "data_address",
    "user",
    "state",
    "share",
    "network",
    "cpus",
    "mem",
    "mem_allocated",
    "kvm",
    "last_seen",
)


def public(row):
    """The contract's view of a host row: never a password."""
    host = {key: row[key] for key in PUBLIC_KEYS}
    host["kvm"] = bool(host["kvm"])
    return host


def detail(row):
    """A host row with everything pages show (still no password)."""
    host = public(row)
    for key in (
        "free_mem",
        "vm_count",
        "vcpus_allocated",
        "task",
        "task_op",
        "error",
        "host_key",
        "created_at",
    ):
        host[key] = row[key]
    host["domain_type"] = domain_type(row["kvm"], current_app.config["VIRT_TYPE"])
    host["key_refused"] = _key_refused(row)
    return host


def _key_refused(row) -> bool:
    """Whether the host's SSH key change was refused: by the monitor (the host's error) or by
    its newest operation; only then do admins need the form that accepts a new key."""
    newest = ops_repo.for_target(db(), "host", row["id"], 1)
    return HostKeyChanged.named_in(row["error"]) or bool(
        newest and newest[0]["status"] == "failed" and HostKeyChanged.named_in(newest[0]["error"])
    )


def get(host_ref):
    """A host by id (int or digits) or name; NotFound otherwise."""
    access.require("hosts")
    conn = db()
    row = None
    if isinstance(host_ref, int) or is_digits(str(host_ref).strip()):
        row = hosts_repo.get(conn, validate.host_id(host_ref))
    elif isinstance(host_ref, str):
        row = hosts_repo.by_name(conn, host_ref)
    else:
        raise InvalidInput(f"host must be an id or a name, not {host_ref!r}")
    if row is None:
        raise NotFound(f"host {host_ref} not found")
    return row


def search(query="", sort="name", descending=False, limit=None, offset=0):
    """Hosts matching a filter expression (all, or one page)."""
    access.require("hosts")
    if query is None:
        query = ""
    if not isinstance(query, str):
        raise InvalidInput("query must be text")
    conn = db()
    rows = hosts_repo.search(conn, query, sort, descending, limit, offset)
    return [detail(row) for row in rows]


def count(query=""):
    """How many hosts match a filter expression."""
    access.require("hosts")
    return hosts_repo.count(db(), query or "")


def default_share():
    """How a new host mounts the repository unless told: over NFS where the controller
    exports it, a bind mount on an all-in-one controller that exports nothing."""
    return "bind" if current_app.config["EXPORT"] == "none" else "nfs"


def _share(share):
    """A valid repository mount for this controller: NFS only where it exports."""
    validate.choice(share, SHARES, "share")
    if share == "nfs" and current_app.config["EXPORT"] == "none":
        raise InvalidInput(
            "this controller exports no repository (EXPORT=none): use share bind, a bind mount"
            " for a host on the controller's own machine, or set EXPORT=nfs"
        )
    return share


def _check_new(data):
    """Validate addHost input; returns the clean fields."""
    validate.require_dict(data, "host")
    validate.refuse_unknown(data, ADD_FIELDS, "host")
    prepare = validate.boolean(data, "prepare", True)
    host = {
        "address": validate.address(validate.text(data, "address")),
        "user": validate.user(validate.text(data, "user")),
        "password": validate.host_password(data),
        "prepare": prepare,
        "share": _share(data.get("share") or default_share()),
        "network": validate.network(
            validate.text(data, "network", required=False, default="default")
        ),
    }
    if prepare and not host["password"]:
        raise InvalidInput("password is required to prepare a host (sudo password of user)")
    host["name"] = validate.name(
        validate.text(data, "name", required=False, default=host["address"]), "host name"
    )
    host["data_address"] = _data_address(data, host["address"])
    return host


def _data_address(data, address):
    """The data address a host's input asks for: None (stored NULL) when it is empty or the
    host's address, so that it follows the address."""
    value = validate.text(data, "data_address", required=False)
    if value is None:
        return None
    value = validate.address(value)
    return None if value == address else value


def add(data, actor, wait):
    """Register a host and start preparing it (host_add.yaml) or checking it; returns op id."""
    access.require("hosts")
    host = _check_new(data)
    conn = db()
    box = adapters().secrets
    with transaction(conn):
        if hosts_repo.by_name(conn, host["name"]):
            raise Conflict(f"a host named {host['name']} already exists")
        if hosts_repo.by_address(conn, host["address"]):
            raise Conflict(f"a host with address {host['address']} already exists")
        host_id = hosts_repo.insert(
            conn,
            name=host["name"],
            address=host["address"],
            user=host["user"],
            password_enc=host_secrets.seal_password(
                box, host["password"], host["address"], host["user"]
            ),
            state="preparing",
            share=host["share"],
            network=host["network"],
            data_address=host["data_address"],
            task=kinds.HOST_ADD.task,
        )
        safe_input = {k: v for k, v in host.items() if k != "password"}
        op_id = record(conn, kinds.HOST_ADD, {**host, "id": host_id}, actor, safe_input)
    return launch(op_id, wait)


def update(host_ref, data, actor, wait):
    """Change a host's fields; address/share changes re-run host_add.yaml. Returns op id or None."""
    access.require("hosts")
    validate.require_dict(data, "data")
    validate.refuse_unknown(data, UPDATE_FIELDS, "host")
    conn = db()
    row = get(host_ref)
    if row["task"] == kinds.HOST_DRAIN.task:  # its state and VMs are the drain's until it ends
        raise Busy(busy_message("host", row["name"], row["task"], row["task_op"]), row["task_op"])
    changes, reprepare, password = _check_update(row, data)
    with transaction(conn):
        _refuse_clashes(conn, row, changes.get("name"), reprepare.get("address"))
        op_id = _start_reprepare(conn, row, reprepare, actor) if reprepare else None
        if op_id is None and "data_address" in changes:
            op_id = _resync_peers(conn, row, actor)
        _store_password(conn, row, changes.get("user"), reprepare.get("address"), password)
        hosts_repo.update(conn, row["id"], **changes)
        safe = sorted(k for k in data if k != "password") + (["password"] if password else [])
        audit(conn, actor, "host.update", f"host:{row['name']}", ", ".join(safe))
    return launch(op_id, wait) if op_id else None


def update_message(name, op_id):
    """What an update's operation does, as the pages say it."""
    kind = ops_repo.get(db(), op_id)["kind"]
    if kind == kinds.PEERS_UPDATE.name:
        return f"Updating the network peers of the hosts for {name}'s new data address."
    return f"Re-preparing host {name}."


def _resync_peers(conn, row, actor):
    """A peers.update operation for a new data address (the overlays learn it now), or None:
    no host has networks, or one still pending will read it when it runs."""
    if not networks_repo.hosts_with_networks(conn):
        return None
    if any(op["status"] == "pending" for op in ops_repo.active_for(conn, "peers", PEERS)):
        return None
    return record(conn, kinds.PEERS_UPDATE, Target("peers", PEERS, row["name"]), actor, {})


def _store_password(conn, row, user, address, password):
    """Seal a new password for the host's (new) address and user; or, when only the user
    changes, reseal the stored one for it (the same machine)."""
    box = adapters().secrets
    user, for_address = user or row["user"], address or row["address"]
    if password is not None:
        sealed = host_secrets.seal_password(box, password, for_address, user)
        hosts_repo.set_secret(conn, row["id"], sealed, for_address)
    elif user != row["user"]:
        host_secrets.rebind_user(conn, box, row, user)


PEERS = "hosts"  # the one target of peers.update operations: every host's peer lists

# States an operator sets: maintenance is ready with no new VMs (placement skips it).
OPERATOR_STATES = states.HOST_OPERATOR_SETTABLE

# The fields updateHost takes as they are, each with its check.
PLAIN_FIELDS = {
    "name": lambda value: validate.name(value, "host name"),
    "user": validate.user,
    "network": validate.network,
}


def _check_update(row, data):
    """updateHost's input checked: (plain column changes, address/share changes that need a
    re-preparation, the new password or None)."""
    changes = {
        key: check(validate.text(data, key)) for key, check in PLAIN_FIELDS.items() if key in data
    }
    if "state" in data:
        changes["state"] = _state_change(row, validate.text(data, "state"))
    password = validate.host_password(data)
    reprepare = _reprepare_changes(row, data)
    if "data_address" in data:
        changes.update(_data_address_change(row, data, reprepare.get("address", row["address"])))
    if "address" in reprepare and row["prepared"] and password is None:
        # the stored password was given for the machine at the old address: it never goes to
        # another one, which the operator may not even know
        raise InvalidInput(
            f"a new address needs the sudo password of the machine at {reprepare['address']}:"
            " the stored password only goes to the machine it was given for"
        )
    return changes, reprepare, password


def _reprepare_changes(row, data):
    """The address and share changes in updateHost's input (those that differ from the row),
    checked: they need a re-preparation."""
    reprepare = {}
    if "address" in data:
        reprepare["address"] = validate.address(validate.text(data, "address"))
    if "share" in data:
        reprepare["share"] = validate.choice(data["share"], SHARES, "share")
    reprepare = {k: v for k, v in reprepare.items() if v != row[k]}
    if "share" in reprepare:
        _share(reprepare["share"])
    return reprepare


def _data_address_change(row, data, address):
    """{"data_address": new column value} when the input changes the host's data address,
    else {}: a form sends back the address it showed, which must not pin it when the
    address changes. It may change at any time: a migration reads it when it starts, so one
    under way keeps the address it began with."""
    wanted = _data_address(data, address)
    return {} if (wanted or address) == row["data_address"] else {"data_address": wanted}


def _refuse_clashes(conn, row, name, address):
    """Refuse a new name or address another host already has."""
    if name and name != row["name"] and hosts_repo.by_name(conn, name):
        raise Conflict(f"a host named {name} already exists")
    clash = hosts_repo.by_address(conn, address) if address else None
    if clash and clash["id"] != row["id"]:
        raise Conflict(f"host {clash['name']} already has address {address}")


def accept_host_key(host_ref, fingerprint, actor):
    """Record the SSH key a host offers now (reinstalled at the same address), when it has the
    fingerprint the admin confirmed; returns the new key text."""
    access.require("hosts")
    fingerprint = validate.fingerprint(fingerprint)
    row = get(host_ref)
    conn = db()
    key = adapters().provisioner.accept_host_key(row["address"], fingerprint)
    with transaction(conn):
        host_secrets.record_host_key(conn, adapters().secrets, row["id"], row["address"], key)
        audit(conn, actor, "host.accept_key", f"host:{row['name']}", fingerprint)
    return key


def _state_change(row, state):
    """Check an operator's state change: among ready, disabled and maintenance."""
    if state == row["state"]:
        return state
    if state not in OPERATOR_STATES or row["state"] not in OPERATOR_STATES:
        raise InvalidInput(
            f"host {row['name']} is {row['state']}: state can only change among"
            f" {', '.join(OPERATOR_STATES)}"
        )
    return state


def _start_reprepare(conn, row, new_values, actor):
    """Claim the host and write a host.prepare operation for an address/share change."""
    if vms_repo.on_host(conn, row["id"]):
        raise Conflict(
            f"host {row['name']} has VMs: address and share can only change on an empty host"
        )
    # a host Nube never prepared is only re-checked at its new address, never prepared now
    input_data = {"change": new_values, "prepare": bool(row["prepared"])}
    return record(conn, kinds.HOST_PREPARE, row, actor, input_data)


def remove(host_ref, actor, wait, drain=False):
    """Remove a host: its VMs first (deleted, or with drain moved to other hosts), then
    host_remove.yaml, then the row. Returns op id."""
    access.require("hosts")
    row = get(host_ref)
    drain = validate.boolean({"drain": drain}, "drain", False)
    return request(kinds.HOST_REMOVE, row, actor, {"drain": drain}, wait)


def drain(host_ref, actor, wait):
    """Put a host in maintenance and move its VMs to other hosts (operation host.drain);
    returns the operation id."""
    access.require("hosts")
    return request(kinds.HOST_DRAIN, get(host_ref), actor, None, wait)
