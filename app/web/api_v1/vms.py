"""/api/v1/vms: list, create, show, start, stop, migrate, resize, save as an image and remove
VMs."""

from ...services import boot_log, image_save, resize, vms
from ..helpers import actor
from .common import accepted, blueprint, referring, sorted_page
from .image_save_schemas import VmSaveImage
from .schemas import (
    Accepted,
    BootLog,
    BootLogArgs,
    ListArgs,
    Vm,
    VmCreate,
    VmMigrate,
    VmRemoveArgs,
    VmResize,
    VmStop,
    page_of,
)

bp = blueprint("vms", __name__, "/vms", "Virtual machines")
VmPage = page_of(Vm, "VmPage")


@bp.route("")
@bp.arguments(ListArgs, location="query")
@bp.response(200, VmPage)
def index(args):
    """VMs matching a filter, sorted and paged."""
    return sorted_page(args, vms, "id")


@bp.route("", methods=["POST"])
@bp.arguments(VmCreate)
@bp.response(202, Accepted)
def create(data):
    """Create a VM (its disk, seed and domain) on a host placement picks or the one asked."""
    return accepted(referring(lambda: vms.add(data, actor(), wait=False)))


@bp.route("/<vm_id>")
@bp.response(200, Vm)
def show(vm_id):
    """One VM."""
    return vms.detail(vms.get(vm_id))


@bp.route("/<vm_id>/start", methods=["POST"])
@bp.response(202, Accepted)
def start(vm_id):
    """Start a stopped VM."""
    return accepted(vms.start(vm_id, actor(), wait=False))


@bp.route("/<vm_id>/stop", methods=["POST"])
@bp.arguments(VmStop, required=False)
@bp.response(202, Accepted)
def stop(data, vm_id):
    """Shut a VM down (guest agent, then ACPI, then forced off), or power it off at once."""
    return accepted(vms.stop(vm_id, actor(), wait=False, force=data.get("force", False)))


@bp.route("/<vm_id>/migrate", methods=["POST"])
@bp.arguments(VmMigrate, required=False)
@bp.response(202, Accepted)
def migrate(data, vm_id):
    """Move a VM to another host, live when it runs."""
    vm_id = vms.get(vm_id)["id"]  # a missing VM is a 404; a missing host a bad body
    return accepted(referring(lambda: vms.migrate(vm_id, data.get("host"), actor(), wait=False)))


@bp.route("/<vm_id>/resize", methods=["POST"])
@bp.arguments(VmResize)
@bp.response(202, Accepted)
def resize_vm(data, vm_id):
    """Change a stopped VM's memory and vCPUs, and grow its disk (running or stopped)."""
    return accepted(resize.resize(vm_id, data, actor(), wait=False))


@bp.route("/<vm_id>/save-image", methods=["POST"])
@bp.arguments(VmSaveImage)
@bp.response(202, Accepted)
def save_image(data, vm_id):
    """Save a stopped VM's disk (or one of its snapshots) as an image: flattened, compressed,
    without the guest's identity (SSH host keys, machine-id, cloud-init's state)."""
    return accepted(image_save.save(vm_id, data["name"], data.get("snapshot"), actor(), wait=False))


@bp.route("/<vm_id>/boot-log")
@bp.arguments(BootLogArgs, location="query")
@bp.response(200, BootLog)
def boot_log_tail(args, vm_id):
    """The last lines of a VM's serial console log."""
    return {"text": boot_log.tail(vms.get(vm_id)["id"], args["lines"])}


@bp.route("/<vm_id>", methods=["DELETE"])
@bp.arguments(VmRemoveArgs, location="query")
@bp.response(202, Accepted)
def remove(args, vm_id):
    """Remove a VM (forced off if running), its disk, seed and boot log; its volumes are
    detached and kept, or removed with it (volumes=true)."""
    return accepted(vms.remove(vm_id, actor(), wait=False, volumes=args["volumes"]))
