"""VM snapshots as callers see them: take one of a VM's disks and attached volumes (stopped,
or running with its file systems frozen), list them, revert a stopped VM to one, delete one.

A snapshot's row is written in the request's transaction (state creating) with the bytes its
files hold now, so the project's quota counts it at once and a second snapshot of the same
name is refused by the table itself; the work (app/services/snapshot_work.py) takes it."""

from ..db import transaction
from ..errors import Conflict, InvalidInput, NotFound
from ..extensions import adapters
from ..limits import SNAPSHOT_NAME_MESSAGE, SNAPSHOT_NAME_RE, SNAPSHOTS_PER_VM
from ..numbers import disk_gib
from ..ops import claims, kinds
from ..ops.claims import Target
from ..ops.launch import launch
from ..ops.request import record
from ..repositories import operations as ops_repo
from ..repositories import projects as projects_repo
from ..repositories import snapshots as snapshots_repo
from ..repositories import volumes as volumes_repo
from ..states import SNAPSHOT_REMOVABLE
from . import projects, vms
from .common import db

PUBLIC_KEYS = ("name", "vm", "state", "frozen", "size", "created_by", "created_at")

# The VM states each action starts from (its kind's claim): the pages offer it only then.
ACTIONS = {
    "take": kinds.VM_SNAPSHOT.from_states,
    "revert": kinds.VM_REVERT.from_states,
    "remove": kinds.SNAPSHOT_REMOVE.claim.each.from_states,
}


def check_name(name) -> str:
    """Return name if it is a valid snapshot name, else raise InvalidInput."""
    if not isinstance(name, str) or not SNAPSHOT_NAME_RE.fullmatch(name):
        raise InvalidInput(f"{SNAPSHOT_NAME_MESSAGE}, not {name!r:.50}")
    return name


def public(row, volumes=()):
    """The contract's view of a snapshot row (frozen: None when the VM was stopped; size in
    bytes), with the volumes it holds."""
    shown = {key: row[key] for key in PUBLIC_KEYS}
    shown["frozen"] = None if row["frozen"] is None else bool(row["frozen"])
    shown["volumes"] = [volume["volume"] for volume in volumes]
    return shown


def listing(vm_id):
    """A VM's snapshots, oldest first (each as public() shows it)."""
    vm = vms.get(vm_id)
    conn = db()
    return [
        public(row, snapshots_repo.volumes_of(conn, row["id"]))
        for row in snapshots_repo.of_vm(conn, vm["id"])
    ]


def get(vm_id, name):
    """A VM's snapshot by name (public()); NotFound when it has none of that name."""
    vm = vms.get(vm_id)
    row = _row(db(), vm, check_name(name))
    return public(row, snapshots_repo.volumes_of(db(), row["id"]))


def _row(conn, vm, name):
    """The snapshot row, or NotFound."""
    row = snapshots_repo.get(conn, vm["id"], name)
    if row is None:
        raise NotFound(f"VM {vm['id']} has no snapshot {name}")
    return row


def _held_bytes(vm, volumes):
    """The bytes the VM's disk and these volumes' files take now (what a snapshot of them
    keeps from being freed, at most)."""
    storage = adapters().storage
    try:
        total = storage.allocated_bytes(storage.disk_path(vm["id"]))
        for volume in volumes:
            total += storage.allocated_bytes(storage.volume_path(volume["name"]))
    except FileNotFoundError as exc:
        raise Conflict(f"a file of VM {vm['id']} is missing: {exc.filename}") from None
    return total


def take(vm_id, name, actor, wait):
    """Snapshot a VM's disk and the volumes attached to it, together; returns the operation
    id."""
    vm = vms.get(vm_id)
    name = check_name(name)
    claims.check(kinds.VM_SNAPSHOT, vm)
    conn = db()
    volumes = volumes_repo.attached_to(conn, vm["id"])
    size = _held_bytes(vm, volumes)
    with transaction(conn):
        if snapshots_repo.get(conn, vm["id"], name) is not None:
            raise Conflict(f"VM {vm['id']} already has a snapshot {name}")
        taken = snapshots_repo.names_of_vm(conn, vm["id"])
        if len(taken) >= SNAPSHOTS_PER_VM:
            raise Conflict(
                f"VM {vm['id']} has {len(taken)} snapshots, the most one VM keeps: remove one first"
            )
        project = projects_repo.get(conn, vm["project_id"])
        projects.check_room(conn, project, {"disk": disk_gib(size)}, "the snapshot")
        held = [(volume["name"], volume["target"]) for volume in volumes]
        snapshot_id = snapshots_repo.add(conn, vm["id"], name, actor, size, held)
        op_id = record(conn, kinds.VM_SNAPSHOT, vm, actor, {"snapshot": snapshot_id, "name": name})
    return launch(op_id, wait)


def revert(vm_id, name, actor, wait):
    """Bring a stopped VM's disk and the volumes the snapshot holds back to it (what was
    written since is lost); returns the operation id."""
    vm = vms.get(vm_id)
    row = _row(db(), vm, check_name(name))
    if row["state"] != "ready":
        raise Conflict(f"snapshot {name} of VM {vm['id']} is {row['state']}: it cannot be used")
    claims.check(kinds.VM_REVERT, vm)
    conn = db()
    with transaction(conn):
        op_id = record(conn, kinds.VM_REVERT, vm, actor, {"snapshot": row["id"], "name": name})
    return launch(op_id, wait)


def remove(vm_id, name, actor, wait):
    """Delete a snapshot from the VM's files (running or stopped; the VM keeps its data);
    returns the operation id."""
    vm = vms.get(vm_id)
    row = _row(db(), vm, check_name(name))
    if row["state"] not in SNAPSHOT_REMOVABLE:
        raise Conflict(f"snapshot {name} of VM {vm['id']} is {row['state']}")
    kind = kinds.SNAPSHOT_REMOVE
    refused = claims.refusal(kind.claim.each, kind.name, vm["id"], vm)
    if refused is not None:  # a fast, clear answer; the compare-and-swap below decides
        raise refused
    conn = db()
    with transaction(conn):
        now = snapshots_repo.get(conn, vm["id"], name)
        if now is None or now["state"] not in SNAPSHOT_REMOVABLE:
            raise Conflict(f"snapshot {name} of VM {vm['id']} changed meanwhile: try again")
        snapshots_repo.set_state(conn, row["id"], "removing")
        target = Target("snapshot", str(row["id"]), f"{vm['id']}/{name}")
        data = {"vm": vm["id"], "snapshot": row["id"], "name": name}
        op_id = record(conn, kind, target, actor, data)
        claims.take(conn, kind.claim.each, Target("vm", vm["id"], vm["id"]), op_id, kind.name)
        ops_repo.touch(conn, op_id, "vm", vm["id"])  # the VM's page lists it
    return launch(op_id, wait)


def holding(volume_name):
    """The snapshots ("vm/name") that hold a volume: while any does, it stays attached."""
    return [
        f"{row['vm']}/{row['name']}" for row in snapshots_repo.holding_volume(db(), volume_name)
    ]


def refuse_growth(vm_id, what):
    """Refuse to grow a disk of a VM that has snapshots (qemu-img's own rule for internal
    snapshots, and a revert would bring the old size back under the quota's count)."""
    names = snapshots_repo.names_of_vm(db(), vm_id)
    if names:
        raise Conflict(
            f"VM {vm_id} has snapshots ({', '.join(names)}): remove them before growing {what}"
        )
