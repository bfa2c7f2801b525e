"""Volume use cases as callers see them: validate, write rows, start operations.

A volume belongs to a project (its quota's disk counts its size) and is attached to at most
one VM of that project: its row's claim, taken in the request's transaction with the VM's,
decides between two attaches at once."""

from ..adapters.volume_files import check_volume_name
from ..db import transaction
from ..errors import Conflict, InvalidInput, NotFound
from ..extensions import adapters
from ..limits import VOLUME_SIZE
from ..numbers import disk_gib
from ..ops import claims, kinds
from ..ops.claims import Target
from ..ops.launch import launch
from ..ops.request import record
from ..repositories import projects as projects_repo
from ..repositories import volumes as volumes_repo
from . import access, projects, redaction, snapshots, validate, vms
from .common import db
from .volume_work import check_free_space

ADD_FIELDS = ("name", "size", "image", "project")
SORT_COLUMNS = tuple(volumes_repo.SORT_COLUMNS)
PUBLIC_KEYS = ("name", "size", "format", "image", "vm", "target", "state", "task", "project")

# The buttons a volume offers and the states each shows in (the kinds' own from_states).
ACTIONS = {
    "attach": kinds.VOLUME_ATTACH.from_states,
    "detach": kinds.VOLUME_DETACH.from_states,
    "grow": kinds.VOLUME_GROW.from_states,
    "remove": kinds.VOLUME_REMOVE.from_states,
}


def public(row):
    """The contract's view of a volume row (size in GiB)."""
    return {key: row[key] for key in PUBLIC_KEYS}


def detail(row, shown=None):
    """A volume row with what pages show too: the serial the guest finds it by, and its
    maker's name as the viewer may read it."""
    shown = shown or redaction.for_viewer()
    volume = public(row)
    volume.update(
        serial=row["name"],
        task_op=row["task_op"],
        created_by=shown.user(row["created_by"]),
        created_at=row["created_at"],
    )
    return volume


def get(name):
    """A volume by name that the viewer may see; NotFound otherwise (another project's too)."""
    if not isinstance(name, str):
        raise InvalidInput(f"volume name must be text, not {name!r:.40}")
    row = volumes_repo.get(db(), name)
    if row is None or not access.current().sees(row["project_id"]):
        raise NotFound(f"volume {name} not found")
    return row


def search(query="", sort="name", descending=False, limit=None, offset=0):
    """Volumes the viewer may see matching a filter expression (all, or one page)."""
    if not isinstance(query or "", str):
        raise InvalidInput("query must be text")
    rows = volumes_repo.search(
        db(), query or "", sort, descending, limit, offset, access.visible_projects()
    )
    shown = redaction.for_viewer()
    return [detail(row, shown) for row in rows]


def count(query=""):
    """How many volumes the viewer may see match a filter expression."""
    return volumes_repo.count(db(), query or "", access.visible_projects())


def attached_to(vm_id):
    """The volumes attached to a VM the viewer sees, by target."""
    vm = vms.get(vm_id)
    shown = redaction.for_viewer()
    return [detail(row, shown) for row in volumes_repo.attached_to(db(), vm["id"])]


def attachable_to(vm_id):
    """The volumes that could be attached to a VM now: available, in the VM's project."""
    vm = vms.get(vm_id)
    rows = volumes_repo.in_project(db(), vm["project_id"], kinds.VOLUME_ATTACH.from_states)
    return [row["name"] for row in rows if not row["task"]]


def _size(data):
    """A size in whole GiB, within bounds."""
    return validate.within(data, VOLUME_SIZE)


def _check_new(data):
    """Validate addVolume input; returns the clean fields."""
    validate.require_dict(data, "volume")
    validate.refuse_unknown(data, ADD_FIELDS, "volume")
    image = data.get("image")
    return {
        "name": check_volume_name(data.get("name")),
        "size": _size(data),
        "image": None if image in (None, "") else validate.text(data, "image"),
        "project": validate.text(data, "project", required=False),
    }


def add(data, actor, wait):
    """Make a volume (empty, or from an image) in a project; returns the operation id."""
    volume = _check_new(data)
    storage = adapters().storage
    if volume["image"] is not None:
        storage.checked_base_format(volume["image"])  # NotFound / InvalidInput before writing
        smallest = disk_gib(storage.image_info(volume["image"]).virtual_size)
        if volume["size"] < smallest:
            raise InvalidInput(
                f"size must be at least {smallest} GiB: image {volume['image']} is that large"
            )
    check_free_space(storage, volume["size"], f"volume {volume['name']}")
    conn = db()
    with transaction(conn):  # the quota's count and the insert under one write lock
        if volumes_repo.get(conn, volume["name"]):
            raise Conflict(f"a volume named {volume['name']} already exists")
        if storage.volume_exists(volume["name"]):
            raise Conflict(
                f"volumes/{volume['name']}.qcow2 already exists in the repository (left by an"
                " earlier volume?): remove it or choose another name"
            )
        project = projects.for_new_resource(conn, volume["project"])
        projects.check_room(conn, project, {"disk": volume["size"]}, "this volume")
        volumes_repo.insert(
            conn,
            name=volume["name"],
            size=volume["size"],
            image=volume["image"],
            task=kinds.VOLUME_CREATE.task,
            created_by=actor,
            project_id=project["id"],
        )
        input_data = {**volume, "project": project["name"], "project_id": project["id"]}
        op_id = record(conn, kinds.VOLUME_CREATE, _target(volume["name"]), actor, input_data)
    return launch(op_id, wait)


def _target(name):
    """A volume as an operation's target."""
    return Target("volume", name, name)


def _refuse_vm(kind, vm):
    """Refuse at once a volume operation whose VM cannot be taken now (busy, or in a state
    the kind does not start from); the compare-and-swap in the request still decides."""
    error = claims.refusal(kind.claim.each, kind.name, vm["id"], vm)
    if error is not None:
        raise error


def _request_with_vm(kind, volume, vm, actor, input_data, wait, reserve=None):
    """Record a volume operation that changes a VM: the volume's claim and the VM's, in one
    transaction with reserve(conn) (a quota's count and what it reserves); any refused:
    nothing written. Returns the operation id."""
    claims.check(kind, volume)  # a fast, clear answer before any write
    if vm is not None:
        _refuse_vm(kind, vm)
    conn = db()
    with transaction(conn):
        if reserve is not None:
            reserve(conn)
        op_id = record(conn, kind, _target(volume["name"]), actor, input_data)
        if vm is not None:
            claims.take(conn, kind.claim.each, Target("vm", vm["id"], vm["id"]), op_id, kind.name)
    return launch(op_id, wait)


def _refuse_held(name, doing):
    """Refuse to detach or grow a volume a VM snapshot holds (its revert needs the volume
    there, at its size)."""
    held = snapshots.holding(name)
    if held:
        raise Conflict(
            f"volume {name} is in snapshot {', '.join(held)}: remove the snapshot before {doing}"
        )


def attach(name, vm_id, actor, wait):
    """Attach an available volume to a VM of its project (hot-plugged when the VM runs);
    returns the operation id."""
    volume = get(name)
    vm = vms.get(vm_id)
    if volume["vm"] is not None:
        raise Conflict(f"volume {name} is attached to VM {volume['vm']}: detach it first")
    if vm["project_id"] != volume["project_id"]:
        raise Conflict(
            f"volume {name} is in project {volume['project']}, VM {vm['id']} in"
            f" {vm['project']}: a volume attaches to a VM of its own project"
        )
    return _request_with_vm(kinds.VOLUME_ATTACH, volume, vm, actor, {"vm": vm["id"]}, wait)


def detach(name, actor, wait):
    """Detach a volume from its VM (a running guest is asked to release it); returns the
    operation id."""
    volume = get(name)
    if volume["vm"] is None:
        raise Conflict(f"volume {name} is not attached to any VM")
    vm = vms.get(volume["vm"])
    _refuse_held(name, "detaching it")
    input_data = {"vm": vm["id"], "target": volume["target"]}
    return _request_with_vm(kinds.VOLUME_DETACH, volume, vm, actor, input_data, wait)


def grow(name, size, actor, wait):
    """Grow a volume to size GiB (never shrink; live when its VM runs); returns the
    operation id. The new size is the row's from the request on, so that the project's quota
    counts it at once (a failed grow records the size the file really has)."""
    volume = get(name)
    size = _size({"size": size})
    if size <= volume["size"]:
        raise InvalidInput(
            f"volume {name} is {volume['size']} GiB: it can only grow (asked {size} GiB)"
        )
    _refuse_held(name, "growing it")
    check_free_space(adapters().storage, size - volume["size"], f"volume {name}")
    vm = vms.get(volume["vm"]) if volume["vm"] is not None else None

    def reserve(conn):
        now = volumes_repo.get(conn, name)
        if now is None or now["size"] != volume["size"]:
            raise Conflict(f"volume {name} changed during the request: try again")
        project = projects_repo.get(conn, volume["project_id"])
        projects.check_room(conn, project, {"disk": size - volume["size"]}, "growing it")
        volumes_repo.set_size(conn, name, size)

    input_data = {"size": size, "from": volume["size"]}
    return _request_with_vm(kinds.VOLUME_GROW, volume, vm, actor, input_data, wait, reserve)


def remove(name, actor, wait):
    """Remove a volume attached to no VM: its file and its row; returns the operation id."""
    volume = get(name)
    if volume["vm"] is not None:
        raise Conflict(f"volume {name} is attached to VM {volume['vm']}: detach it first")
    return _request_with_vm(kinds.VOLUME_REMOVE, volume, None, actor, {}, wait)
