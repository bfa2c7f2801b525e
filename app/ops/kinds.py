"""Every kind of operation Nube runs, in one table that the runner reads.

A kind names what it targets; its claim (app/ops/claims.py): the table, the task its target
shows while it runs, the states it may start from and any extra condition, taken by one
compare-and-swap when app/ops/request.py writes the operation row (the runner releases every
task an operation holds when it ends); its work; the undo that runs when it fails, is canceled
or is interrupted, and the facts its work records for that undo (ctx.remember); and its time
limit. Work and undo take the operation's context; the undo also takes the status it ended with.
"""

from collections.abc import Callable
from dataclasses import dataclass

from .. import states
from ..services import (
    controller_work,
    host_work,
    image_save_work,
    image_work,
    import_work,
    migrate_work,
    network_work,
    recheck_work,
    resize_work,
    snapshot_work,
    vm_work,
    volume_work,
)
from .claims import HOST_AND_VMS, NEW_ROW, ONE_ACTIVE, ROW, Claim


@dataclass(frozen=True)
class Kind:
    """One kind of operation."""

    name: str
    target_type: str
    claim: Claim
    work: Callable
    undo: Callable | None = None
    time_limit: float = 600.0
    label: str = ""
    undo_needs: tuple = ()  # what the work may ctx.remember() for its undo

    @property
    def task(self):
        """The task its target shows while it runs (None: a target with no task column)."""
        return self.claim.task

    @property
    def from_states(self):
        """The states it may start from (() means any)."""
        return self.claim.from_states


# a host removal's claim: the controller's destroy takes it of each host in turn
REMOVE_HOST_AND_VMS = Claim(HOST_AND_VMS, "hosts", "removing", sets_state="removing")

VM_CREATE = Kind(
    "vm.create",
    "vm",
    Claim(NEW_ROW, "vms", "creating"),
    vm_work.create_vm,
    vm_work.undo_create,
    3600,
    "create VM",
    undo_needs=("made_disk", "made_seed"),
)
VM_START = Kind(
    "vm.start",
    "vm",
    Claim(ROW, "vms", "starting", states.VM_STARTABLE),
    vm_work.start_vm,
    vm_work.recheck_state,
    300,
    "start VM",
)
VM_STOP = Kind(
    "vm.stop",
    "vm",
    Claim(ROW, "vms", "stopping", states.VM_STOPPABLE),
    vm_work.stop_vm,
    vm_work.recheck_state,
    600,
    "stop VM",
)
VM_REMOVE = Kind(
    "vm.remove",
    "vm",
    Claim(ROW, "vms", "removing", states.VM_REMOVABLE),
    vm_work.remove_vm,
    vm_work.recheck_state,
    600,
    "remove VM",
)
VM_MIGRATE = Kind(
    "vm.migrate",
    "vm",
    Claim(ROW, "vms", "migrating", states.VM_MIGRATABLE),
    migrate_work.migrate_vm,
    migrate_work.find_after_failed_migration,
    1800,
    "migrate VM",
)
VM_RECHECK = Kind(
    "vm.recheck",
    "vm",
    Claim(ROW, "vms", "checking"),
    recheck_work.recheck_vm,
    None,
    120,
    "re-check VM",
)
VM_RESIZE = Kind(
    "vm.resize",
    "vm",
    Claim(ROW, "vms", "resizing", states.VM_RESIZABLE),
    resize_work.resize_vm,
    resize_work.undo_resize,
    1800,
    "resize VM",
    undo_needs=("resources",),
)
# A snapshot's operations are the VM's: its files change, so nothing else runs on it meanwhile.
VM_SNAPSHOT = Kind(
    "vm.snapshot",
    "vm",
    Claim(ROW, "vms", "snapshotting", states.VM_SNAPSHOTTABLE),
    snapshot_work.take_snapshot,
    snapshot_work.undo_snapshot,
    900,
    "snapshot VM",
)
VM_REVERT = Kind(
    "vm.revert",
    "vm",
    Claim(ROW, "vms", "reverting", states.VM_REVERTIBLE),
    snapshot_work.revert_snapshot,
    None,
    900,
    "revert VM to snapshot",
)
# a snapshot has no task column: one operation on it at a time, and its VM taken in the
# request's transaction (running or stopped)
SNAPSHOT_REMOVE = Kind(
    "snapshot.remove",
    "snapshot",
    Claim(ONE_ACTIVE, each=Claim(ROW, "vms", "deleting-snapshot", states.VM_SNAPSHOTTABLE)),
    snapshot_work.remove_snapshot,
    snapshot_work.undo_remove,
    1800,
    "delete snapshot",
)
# A volume's operations that change a VM take that VM too (its task), in the request's
# transaction: never a migration, a stop or another volume's attach on it meanwhile.
VOLUME_CREATE = Kind(
    "volume.create",
    "volume",
    Claim(NEW_ROW, "volumes", "creating"),
    volume_work.create_volume,
    volume_work.undo_create,
    3600,
    "create volume",
    undo_needs=("made_file",),
)
VOLUME_ATTACH = Kind(
    "volume.attach",
    "volume",
    Claim(
        ROW,
        "volumes",
        "attaching",
        states.VOLUME_ATTACHABLE,
        each=Claim(ROW, "vms", "attaching", states.VM_ATTACHABLE),
    ),
    volume_work.attach_volume,
    volume_work.undo_attach,
    600,
    "attach volume",
    undo_needs=("recorded", "plugged"),
)
VOLUME_DETACH = Kind(
    "volume.detach",
    "volume",
    Claim(
        ROW,
        "volumes",
        "detaching",
        states.VOLUME_DETACHABLE,
        each=Claim(ROW, "vms", "detaching", states.VM_ATTACHABLE),
    ),
    volume_work.detach_volume,
    volume_work.undo_detach,
    600,
    "detach volume",
    undo_needs=("unrecorded",),
)
VOLUME_GROW = Kind(
    "volume.grow",
    "volume",
    Claim(
        ROW,
        "volumes",
        "growing",
        states.VOLUME_GROWABLE,
        each=Claim(ROW, "vms", "growing", states.VM_ATTACHABLE),
    ),
    volume_work.grow_volume,
    volume_work.after_failed_grow,
    1800,
    "grow volume",
)
VOLUME_REMOVE = Kind(
    "volume.remove",
    "volume",
    Claim(ROW, "volumes", "removing", states.VOLUME_REMOVABLE),
    volume_work.remove_volume,
    volume_work.after_failed_remove,
    600,
    "remove volume",
)
HOST_ADD = Kind(
    "host.add",
    "host",
    Claim(NEW_ROW, "hosts", "adding"),
    host_work.add_host,
    host_work.forget_failed_host,
    1800,
    "add host",
)
HOST_PREPARE = Kind(
    "host.prepare",
    "host",
    Claim(ROW, "hosts", "preparing"),
    host_work.reprepare_host,
    host_work.mark_prepare_failed,
    1800,
    "re-prepare host",
)
HOST_REMOVE = Kind(
    "host.remove",
    "host",
    REMOVE_HOST_AND_VMS,
    host_work.remove_host,
    host_work.keep_failed_removal,
    3600,
    "remove host",
)
HOST_DRAIN = Kind(
    "host.drain",
    "host",
    # placement skips the host from the claim on; each VM is taken as its move begins
    Claim(
        ROW,
        "hosts",
        "draining",
        states.HOST_DRAINABLE,
        sets_state="maintenance",
        each=Claim(ROW, "vms", "migrating"),
    ),
    migrate_work.drain_host,
    migrate_work.end_drain,
    7200,
    "drain host",
)
HOST_RECHECK = Kind(
    "host.recheck",
    "host",
    Claim(ROW, "hosts", "checking"),
    recheck_work.recheck_host,
    None,
    120,
    "re-check host",
)
# the controller has no row: one of its operations at a time
CONTROLLER_INIT = Kind(
    "controller.init",
    "controller",
    Claim(ONE_ACTIVE),
    controller_work.init_controller,
    None,
    1800,
    "initialise controller",
)
CONTROLLER_DESTROY = Kind(
    "controller.destroy",
    "controller",
    Claim(ONE_ACTIVE, each=REMOVE_HOST_AND_VMS),
    controller_work.destroy_controller,
    None,
    7200,
    "destroy IaaS",
)
# an image is a file, not a row: one build of a name at a time
IMAGE_BUILD = Kind(
    "image.build",
    "image",
    Claim(ONE_ACTIVE, busy_as="being built"),
    image_work.build_image,
    image_work.undo_build,
    3600,
    "build image",
    undo_needs=("published",),
)
# a VM's disk saved as an image: one operation on the image's name (as a build), and the VM
# taken in the request's transaction (stopped; no start, move or resize until it is copied)
IMAGE_SAVE = Kind(
    "image.save",
    "image",
    Claim(ONE_ACTIVE, each=Claim(ROW, "vms", "saving", states.VM_SAVABLE)),
    image_save_work.save_image,
    image_save_work.undo_save,
    3600,
    "save VM as image",
    undo_needs=("published",),
)
# an import writes a file as a build does: one operation on a name at a time
IMAGE_IMPORT = Kind(
    "image.import",
    "image",
    Claim(ONE_ACTIVE, busy_as="being imported"),
    import_work.import_image,
    import_work.undo_import,
    7200,
    "import image",
    undo_needs=("published",),
)
# a host's data address changed: the hosts with networks take it. Its target is the hosts'
# peer lists, not the host (whose other operations it must not refuse): one at a time, and a
# pending one reads every address when it runs, so a second change needs none of its own
PEERS_UPDATE = Kind(
    "peers.update",
    "peers",
    Claim(ONE_ACTIVE, busy_as="being updated"),
    network_work.resync_after_address_change,
    None,
    1800,
    "update network peers",
)
# a network has no task column: one change of its rules at a time
NETWORK_RULES = Kind(
    "network.rules",
    "network",
    Claim(ONE_ACTIVE, busy_as="having its rules applied"),
    network_work.apply_rules,
    None,
    1800,
    "apply network rules",
)

KINDS = {
    kind.name: kind
    for kind in (
        VM_CREATE,
        VM_START,
        VM_STOP,
        VM_REMOVE,
        VM_MIGRATE,
        VM_RECHECK,
        VM_RESIZE,
        VM_SNAPSHOT,
        VM_REVERT,
        SNAPSHOT_REMOVE,
        VOLUME_CREATE,
        VOLUME_ATTACH,
        VOLUME_DETACH,
        VOLUME_GROW,
        VOLUME_REMOVE,
        HOST_ADD,
        HOST_PREPARE,
        HOST_REMOVE,
        HOST_DRAIN,
        HOST_RECHECK,
        CONTROLLER_INIT,
        CONTROLLER_DESTROY,
        IMAGE_BUILD,
        IMAGE_SAVE,
        IMAGE_IMPORT,
        NETWORK_RULES,
        PEERS_UPDATE,
    )
}


def get(name):
    """The kind with this name; KeyError for one this Nube does not know."""
    return KINDS[name]
