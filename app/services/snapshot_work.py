"""What a VM snapshot's operations do once a worker runs them.

Design (issue 23): a Nube snapshot is a qcow2 *internal* snapshot, tagged "nube-<name>", in
the VM's disk (vms/<id>.qcow2) and in each volume attached when it was taken; Nube's rows
(app/repositories/snapshots.py) say which exist. Three designs were weighed:

- libvirt's own snapshot metadata lives on the host that took the snapshot, and libvirt
  refuses to migrate a domain that has any: checked on lab hosts (libvirt 9.0), a VM with one
  snapshot made by `virsh snapshot-create-as` fails core.migrateVm with "cannot migrate domain
  with 1 snapshots" (qemuMigrationSrcIsAllowed), so a drain could never move it; and the
  metadata is a domain definition a host supplies, which Nube never takes from a host.
- External snapshots (a new overlay per snapshot) change the file a VM runs on, so every path
  Nube renders, checks and grows would have to follow a chain that grows with each snapshot;
  and libvirt 9.0 cannot revert or delete them.
- Internal snapshots stay inside the files the repository shares: a VM's files are the same
  before and after a snapshot, a revert or a migration, so the definition Nube renders and the
  header checks do not change, and the snapshots move with the VM by themselves.

A stopped VM's files are changed by qemu-img (storage.take/apply/delete_snapshot, as the hosts'
user, the chain cut). A running VM's disks are snapshotted together by QEMU, at one instant,
with the guest's file systems frozen by its agent when it has one (hypervisor_snapshots.py);
memory is not saved (libvirt 9.0 saves it only with savevm, reverted only through its
host-bound metadata). A revert needs the VM stopped; a deletion runs either way."""

from ..adapters.qcow2_calls import snapshot_tag
from ..db import transaction
from ..errors import Conflict, NotFound, OperationFailed
from ..repositories import hosts as hosts_repo
from ..repositories import snapshots as snapshots_repo
from ..repositories import vms as vms_repo
from ..repositories import volumes as volumes_repo
from ..states import RUNNING, STOPPED, vm_state
from .definition import check_headers
from .vm_work import vm_and_host


def _snapshot_and_files(ctx, vm):
    """The operation's snapshot row and its files: [(target, path)], the VM's disk first."""
    row = snapshots_repo.get(ctx.conn, vm["id"], ctx.input["name"])
    if row is None or row["id"] != ctx.input["snapshot"]:
        raise NotFound(f"VM {vm['id']} no longer has snapshot {ctx.input['name']}")
    files = [("vda", ctx.storage.disk_path(vm["id"]))]
    attached = {v["name"]: v["target"] for v in volumes_repo.attached_to(ctx.conn, vm["id"])}
    for held in snapshots_repo.volumes_of(ctx.conn, row["id"]):
        if attached.get(held["volume"]) != held["target"]:
            raise Conflict(
                f"volume {held['volume']} of snapshot {row['name']} is no longer attached to"
                f" {vm['id']} as {held['target']}"
            )
        files.append((held["target"], ctx.storage.volume_path(held["volume"])))
    return row, files


def _running(ctx, vm, host):
    """Whether the VM's domain runs (paused counts: QEMU has its files open)."""
    return vm_state(ctx.hypervisor.domain_state(host, vm["id"])) == RUNNING


def take_snapshot(ctx):
    """Take the snapshot the request recorded: live (frozen when the guest agent answers) or
    with qemu-img on a stopped VM's files; then record the bytes its files hold."""
    vm, host = vm_and_host(ctx)
    row, files = _snapshot_and_files(ctx, vm)
    name = row["name"]
    check_headers(ctx, vm)  # a clear refusal, if a host altered a header
    # a tag no row records (a removal that could not reach a kept volume's file) goes first
    _delete_tags(ctx, vm, host, name, files, stale=True)
    if _running(ctx, vm, host):
        ctx.log(f"taking snapshot {name} of running {vm['id']} ({', '.join(t for t, _ in files)})")
        frozen, why = ctx.hypervisor.snapshot_live(
            host, vm["id"], snapshot_tag(name), [t for t, _ in files]
        )
        ctx.log(
            "the guest's file systems were frozen for it"
            if frozen
            else f"no guest agent answered ({why:.200}): the snapshot is crash-consistent"
        )
    else:
        frozen = None
        for target, path in files:
            ctx.log(f"taking snapshot {name} of {target} ({_label(ctx, path)})")
            ctx.storage.take_snapshot(path, name, ctx.log)
    size = sum(ctx.storage.allocated_bytes(path) for _, path in files)
    with transaction(ctx.conn):
        snapshots_repo.set_taken(ctx.conn, row["id"], frozen, size)
    ctx.log(f"snapshot {name} of {vm['id']} taken ({size} bytes held)")


def undo_snapshot(ctx, status):
    """After a failed or canceled snapshot: delete its tag from whichever files got it, and
    its row."""
    try:
        vm, host = vm_and_host(ctx)
        row, files = _snapshot_and_files(ctx, vm)
    except (NotFound, Conflict) as exc:
        ctx.error(f"cannot undo the snapshot: {exc}")
        _forget(ctx)
        return
    try:
        _delete_tags(ctx, vm, host, row["name"], files)
    except Exception as exc:  # the tag may stay in a file: the row says so, as error
        ctx.error(f"could not delete snapshot {row['name']} from every file: {exc}")
        with transaction(ctx.conn):
            snapshots_repo.set_state(ctx.conn, row["id"], "error")
        return
    _forget(ctx)


def _forget(ctx):
    """Delete the operation's snapshot row (by id: never another one of the same name)."""
    with transaction(ctx.conn):
        snapshots_repo.delete(ctx.conn, ctx.input["snapshot"])


def revert_snapshot(ctx):
    """Bring a stopped VM's files back to the snapshot (each file checked to hold it first)."""
    vm, host = vm_and_host(ctx)
    row, files = _snapshot_and_files(ctx, vm)
    name = row["name"]
    if vm_state(ctx.hypervisor.domain_state(host, vm["id"])) != STOPPED:
        raise Conflict(f"VM {vm['id']} is not stopped: stop it to revert it")
    check_headers(ctx, vm)
    for target, path in files:
        if snapshot_tag(name) not in ctx.storage.file_snapshots(path):
            raise OperationFailed(
                f"{_label(ctx, path)} ({target}) no longer holds snapshot {name}: nothing reverted"
            )
    for target, path in files:
        ctx.log(f"reverting {target} ({_label(ctx, path)}) to snapshot {name}")
        ctx.storage.apply_snapshot(path, name, ctx.log)
    since = [
        volume["name"]
        for volume in volumes_repo.attached_to(ctx.conn, vm["id"])
        if volume["target"] not in {target for target, _ in files}
    ]
    if since:
        ctx.log(f"volumes attached since the snapshot keep their data: {', '.join(since)}")
    ctx.log(f"{vm['id']} is back at snapshot {name}")


def _its_vm_and_host(ctx):
    """The VM a snapshot.remove works on (its target is the snapshot), and its host."""
    vm = vms_repo.get(ctx.conn, str(ctx.input["vm"]))
    if vm is None:
        raise NotFound(f"VM {ctx.input['vm']} no longer exists")
    return dict(vm), dict(hosts_repo.get(ctx.conn, vm["host"]))


def remove_snapshot(ctx):
    """Delete the snapshot from the VM's files (live when it runs), then its row."""
    vm, host = _its_vm_and_host(ctx)
    row, files = _snapshot_and_files(ctx, vm)
    _delete_tags(ctx, vm, host, row["name"], files)
    _forget(ctx)
    ctx.log(f"snapshot {row['name']} of {vm['id']} deleted; the VM keeps its data")


def undo_remove(ctx, status):
    """A deletion that failed may have left the snapshot in some files: the row says error
    (it can be deleted again, not reverted to)."""
    with transaction(ctx.conn):
        snapshots_repo.set_state(ctx.conn, ctx.input["snapshot"], "error")


def _delete_tags(ctx, vm, host, name, files, stale=False):
    """Delete the snapshot's tag from the files that hold it (live when the VM runs); stale:
    a tag Nube's rows no longer record, left behind."""
    tag = snapshot_tag(name)
    holding = [(t, path) for t, path in files if tag in ctx.storage.file_snapshots(path)]
    if not holding:
        if not stale:
            ctx.log(f"no file holds snapshot {name}")
        return
    if stale:
        ctx.log(f"{', '.join(t for t, _ in holding)} still held a stale {tag}: deleting it")
    if _running(ctx, vm, host):
        ctx.log(f"deleting snapshot {name} from running {vm['id']}")
        ctx.hypervisor.delete_snapshot_live(host, vm["id"], tag, [t for t, _ in holding])
        return
    for target, path in holding:
        ctx.log(f"deleting snapshot {name} from {target} ({_label(ctx, path)})")
        ctx.storage.delete_snapshot(path, name, ctx.log)


def _label(ctx, path):
    """A file as the repository names it (vms/..., volumes/...)."""
    return str(path.relative_to(ctx.storage.root))
