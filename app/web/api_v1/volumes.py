"""/api/v1/volumes: list, create, show, attach, detach, grow and remove volumes."""

from ...services import volumes
from ..helpers import actor
from .common import accepted, blueprint, referring, sorted_page
from .schemas import Accepted, ListArgs, page_of
from .volume_schemas import Volume, VolumeAttach, VolumeCreate, VolumeGrow

bp = blueprint("volumes", __name__, "/volumes", "Volumes: disks of their own, attached to VMs")
VolumePage = page_of(Volume, "VolumePage")


@bp.route("")
@bp.arguments(ListArgs, location="query")
@bp.response(200, VolumePage)
def index(args):
    """Volumes matching a filter, sorted and paged."""
    return sorted_page(args, volumes, "name")


@bp.route("", methods=["POST"])
@bp.arguments(VolumeCreate)
@bp.response(202, Accepted)
def create(data):
    """Make a volume in the repository (volumes/NAME.qcow2): empty, or from an image."""
    return accepted(referring(lambda: volumes.add(data, actor(), wait=False)))


@bp.route("/<name>")
@bp.response(200, Volume)
def show(name):
    """One volume."""
    return volumes.detail(volumes.get(name))


@bp.route("/<name>/attach", methods=["POST"])
@bp.arguments(VolumeAttach)
@bp.response(202, Accepted)
def attach(data, name):
    """Attach an available volume to a VM of its project (hot-plugged when the VM runs)."""
    name = volumes.get(name)["name"]  # a missing volume is a 404; a missing VM a bad body
    return accepted(referring(lambda: volumes.attach(name, data["vm"], actor(), wait=False)))


@bp.route("/<name>/detach", methods=["POST"])
@bp.response(202, Accepted)
def detach(name):
    """Detach a volume from its VM (a running guest is asked to release it)."""
    return accepted(volumes.detach(name, actor(), wait=False))


@bp.route("/<name>/grow", methods=["POST"])
@bp.arguments(VolumeGrow)
@bp.response(202, Accepted)
def grow(data, name):
    """Grow a volume (never shrink; live when its VM runs)."""
    return accepted(volumes.grow(name, data["size"], actor(), wait=False))


@bp.route("/<name>", methods=["DELETE"])
@bp.response(202, Accepted)
def remove(name):
    """Remove a volume attached to no VM: its file and its record."""
    return accepted(volumes.remove(name, actor(), wait=False))
