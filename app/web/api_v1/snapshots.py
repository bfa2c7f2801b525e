"""/api/v1/vms/{vm_id}/snapshots: list, take, show, revert and delete a VM's snapshots."""

from ...services import snapshots
from ..helpers import actor
from .common import Window, accepted, blueprint
from .schemas import Accepted, PageArgs, page_of
from .snapshot_schemas import Snapshot, SnapshotCreate

bp = blueprint(
    "snapshots", __name__, "/vms", "VM snapshots: its disk and attached volumes, together"
)
SnapshotPage = page_of(Snapshot, "SnapshotPage")


@bp.route("/<vm_id>/snapshots")
@bp.arguments(PageArgs, location="query")
@bp.response(200, SnapshotPage)
def index(args, vm_id):
    """A VM's snapshots, oldest first, paged."""
    return Window(args).slice(snapshots.listing(vm_id))


@bp.route("/<vm_id>/snapshots", methods=["POST"])
@bp.arguments(SnapshotCreate)
@bp.response(202, Accepted)
def create(data, vm_id):
    """Snapshot a VM's disk and attached volumes together (a running guest's file systems
    frozen by its agent meanwhile)."""
    return accepted(snapshots.take(vm_id, data["name"], actor(), wait=False))


@bp.route("/<vm_id>/snapshots/<name>")
@bp.response(200, Snapshot)
def show(vm_id, name):
    """One snapshot of a VM."""
    return snapshots.get(vm_id, name)


@bp.route("/<vm_id>/snapshots/<name>/revert", methods=["POST"])
@bp.response(202, Accepted)
def revert(vm_id, name):
    """Bring a stopped VM's disk and the volumes the snapshot holds back to it: what was
    written since is lost."""
    return accepted(snapshots.revert(vm_id, name, actor(), wait=False))


@bp.route("/<vm_id>/snapshots/<name>", methods=["DELETE"])
@bp.response(202, Accepted)
def remove(vm_id, name):
    """Delete a snapshot (the VM running or stopped): its data merges away, the VM keeps its
    own."""
    return accepted(snapshots.remove(vm_id, name, actor(), wait=False))
