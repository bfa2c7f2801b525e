"""Every kind of operation Nube runs, in one table that the runner reads.

A kind names what it targets, the task its target shows while it runs (set by a
compare-and-swap when the request writes the operation row; the runner releases every task an
operation holds when it ends), the states a VM action may start from, its work, the undo that
runs when it fails, is canceled or is interrupted, and its time limit. Work and undo take the
operation's context; the undo also takes the status it ended with.
"""

from collections.abc import Callable
from dataclasses import dataclass

from ..services import (
    controller_work,
    host_work,
    image_work,
    migrate_work,
    recheck_work,
    vm_work,
)


@dataclass(frozen=True)
class Kind:
    """One kind of operation."""

    name: str
    target_type: str
    task: str | None
    work: Callable
    undo: Callable | None = None
    time_limit: float = 600.0
    label: str = ""
    from_states: tuple = ()


ANY_VM_STATE = ("stopped", "running", "error", "unknown")

VM_CREATE = Kind(
    "vm.create", "vm", "creating", vm_work.create_vm, vm_work.undo_create, 3600, "create VM"
)
VM_START = Kind(
    "vm.start",
    "vm",
    "starting",
    vm_work.start_vm,
    vm_work.recheck_state,
    300,
    "start VM",
    ("stopped", "error", "unknown"),
)
VM_STOP = Kind(
    "vm.stop",
    "vm",
    "stopping",
    vm_work.stop_vm,
    vm_work.recheck_state,
    600,
    "stop VM",
    ("running", "unknown", "error"),
)
VM_REMOVE = Kind(
    "vm.remove",
    "vm",
    "removing",
    vm_work.remove_vm,
    vm_work.recheck_state,
    600,
    "remove VM",
    ANY_VM_STATE,
)
VM_MIGRATE = Kind(
    "vm.migrate",
    "vm",
    "migrating",
    migrate_work.migrate_vm,
    migrate_work.find_after_failed_migration,
    1800,
    "migrate VM",
    ("running", "stopped"),
)
VM_RECHECK = Kind("vm.recheck", "vm", "checking", recheck_work.recheck_vm, None, 120, "re-check VM")
HOST_ADD = Kind(
    "host.add", "host", "adding", host_work.add_host, host_work.forget_failed_host, 1800, "add host"
)
HOST_PREPARE = Kind(
    "host.prepare",
    "host",
    "preparing",
    host_work.reprepare_host,
    host_work.mark_prepare_failed,
    1800,
    "re-prepare host",
)
HOST_REMOVE = Kind(
    "host.remove",
    "host",
    "removing",
    host_work.remove_host,
    host_work.keep_failed_removal,
    3600,
    "remove host",
)
HOST_DRAIN = Kind(
    "host.drain",
    "host",
    "draining",
    migrate_work.drain_host,
    migrate_work.end_drain,
    7200,
    "drain host",
)
HOST_RECHECK = Kind(
    "host.recheck", "host", "checking", recheck_work.recheck_host, None, 120, "re-check host"
)
CONTROLLER_INIT = Kind(
    "controller.init",
    "controller",
    None,
    controller_work.init_controller,
    None,
    1800,
    "initialise controller",
)
CONTROLLER_DESTROY = Kind(
    "controller.destroy",
    "controller",
    None,
    controller_work.destroy_controller,
    None,
    7200,
    "destroy IaaS",
)
IMAGE_BUILD = Kind(
    "image.build", "image", None, image_work.build_image, image_work.undo_build, 3600, "build image"
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
        HOST_ADD,
        HOST_PREPARE,
        HOST_REMOVE,
        HOST_DRAIN,
        HOST_RECHECK,
        CONTROLLER_INIT,
        CONTROLLER_DESTROY,
        IMAGE_BUILD,
    )
}


def get(name):
    """The kind with this name; KeyError for one this Nube does not know."""
    return KINDS[name]
