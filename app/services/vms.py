"""VM use cases as callers see them: validate, place, write rows, start operations."""

import uuid
from dataclasses import asdict

from flask import current_app

from .. import cloudinit
from ..adapters.storage import check_image_name, check_vm_id
from ..db import transaction
from ..errors import Conflict, InvalidInput, NotFound
from ..extensions import adapters
from ..limits import MEM, VCPUS, VOLUME_SIZE
from ..numbers import disk_gib
from ..ops import claims, kinds
from ..ops.launch import launch
from ..ops.request import record, request
from ..placement import choose_host
from ..repositories import hosts as hosts_repo
from ..repositories import networks as networks_repo
from ..repositories import vms as vms_repo
from . import access, networks, projects, redaction, validate
from .common import db

ADD_FIELDS = (
    "id",
    "image",
    "mem",
    "vcpus",
    "host",
    "start",
    "hostname",
    "ssh_keys",
    "user_data",
    "project",
    "disk",
    "networks",
)
SORT_COLUMNS = tuple(vms_repo.SORT_COLUMNS)
PUBLIC_KEYS = (
    "id",
    "host",
    "host_name",
    "image",
    "mem",
    "vcpus",
    "disk",
    "project",
    "state",
    "task",
    "last_seen",
    "ip",
)


def public(row, nics=None):
    """The contract's view of a VM row, with its NICs ({network, ip, mac}; read when not
    given)."""
    vm = {key: row[key] for key in PUBLIC_KEYS}
    if nics is None:
        nics = networks_repo.nics_of(db(), row["id"])
    vm["networks"] = [{"network": n["network"], "ip": n["ip"], "mac": n["mac"]} for n in nics]
    return vm


def detail(row, shown=None, nics=None):
    """A VM row with what pages show too (its maker's name as the viewer may read it; a list
    passes its one redactor and its VMs' NICs)."""
    shown = shown or redaction.for_viewer()
    vm = public(row, nics)
    vm.update(
        task_op=row["task_op"],
        created_by=shown.user(row["created_by"]),
        created_at=row["created_at"],
        hostname=row["hostname"],
    )
    return vm


def first_boot(vm_id):
    """A VM's first-boot configuration with its keys' fingerprints, for its page."""
    boot = vms_repo.first_boot(db(), get(vm_id)["id"])
    boot["keys"] = [cloudinit.describe_key(key) for key in boot["ssh_keys"]]
    return boot


def get(vm_id):
    """A VM by id that the viewer may see; NotFound otherwise (another project's too)."""
    if not isinstance(vm_id, str):
        raise InvalidInput(f"VM id must be text, not {vm_id!r}")
    row = vms_repo.get(db(), vm_id)
    if row is None or not access.current().sees(row["project_id"]):
        raise NotFound(f"VM {vm_id} not found")
    return row


def search(query="", sort="id", descending=False, limit=None, offset=0):
    """VMs the viewer may see matching a filter expression (all, or one page)."""
    if query is None:
        query = ""
    if not isinstance(query, str):
        raise InvalidInput("query must be text")
    rows = vms_repo.search(db(), query, sort, descending, limit, offset, access.visible_projects())
    shown = redaction.for_viewer()
    nics = networks_repo.nics_of_vms(db(), [r["id"] for r in rows])
    return [detail(r, shown, nics.get(r["id"], [])) for r in rows]


def count(query=""):
    """How many VMs the viewer may see match a filter expression."""
    return vms_repo.count(db(), query or "", access.visible_projects())


def _check_new(data):
    """Validate addVm input; returns the clean fields."""
    validate.require_dict(data, "vm")
    validate.refuse_unknown(data, ADD_FIELDS, "vm")
    vm = {
        "id": check_vm_id(validate.text(data, "id")),
        "image": check_image_name(validate.text(data, "image")),
        "mem": validate.within(data, MEM),
        "vcpus": validate.within(data, VCPUS, required=False, default=1),
        "host": data.get("host") if data.get("host") not in ("", None) else None,
        "start": validate.boolean(data, "start", False),  # create and start in one operation
        "project": validate.text(data, "project", required=False),
        "disk": validate.integer(
            data, "disk", required=False, minimum=VOLUME_SIZE.minimum, maximum=VOLUME_SIZE.maximum
        ),
        "networks": networks.check_nic_requests(data.get("networks")),
    }
    if vm["host"] is not None and not isinstance(vm["host"], int | str):
        raise InvalidInput(f"host must be an id or a name, not {vm['host']!r}")
    hostname = data.get("hostname")
    vm["boot"] = {
        "hostname": cloudinit.check_hostname(hostname)
        if hostname not in (None, "")
        else cloudinit.default_hostname(vm["id"]),
        "ssh_keys": cloudinit.check_ssh_keys(data.get("ssh_keys")),
        "user_data": cloudinit.check_user_data(data.get("user_data")),
    }
    return vm


def disk_size(asked, image):
    """A new VM's disk in GiB: as asked, or the image's virtual size (rounded up to whole
    GiB); never smaller than the image (its file system would not fit)."""
    smallest = disk_gib(adapters().storage.image_info(image).virtual_size)
    if asked is None:
        return smallest
    if asked < smallest:
        raise InvalidInput(
            f"disk must be at least {smallest} GiB: image {image} is {smallest} GiB (its virtual"
            f" size), asked {asked} GiB"
        )
    return asked


def _place(conn, vm, config):
    """The host a new VM goes to. Placement's refusal names every host's room: a viewer who
    may not see hosts gets it without them."""
    try:
        return choose_host(
            [dict(h) for h in hosts_repo.search(conn)],
            vm["mem"],
            vcpus=vm["vcpus"],
            policy=config["PLACEMENT"],
            overcommit=config["MEM_OVERCOMMIT"],
            cpu_overcommit=config["CPU_OVERCOMMIT"],
            requested=vm["host"],
        )
    except InvalidInput as refusal:
        if access.current().may("hosts"):
            raise
        size = f"{vm['mem']} MiB and {vm['vcpus']} vCPU{'s' if vm['vcpus'] != 1 else ''}"
        raise InvalidInput(
            f"no host has room for a VM of {size} now: try a smaller one, or ask an operator"
        ) from refusal


def add(data, actor, wait):
    """Place a new VM on a host and start creating it; returns the operation id."""
    vm = _check_new(data)
    if vm["host"] is not None:
        access.require("vms.place")
    # NotFound / InvalidInput before any write; the worker checks the image again at use
    adapters().storage.checked_base_format(vm["image"])
    disk = disk_size(vm.pop("disk"), vm["image"])
    nic_requests = vm.pop("networks")
    domain_uuid = str(uuid.uuid4())  # chosen now: a failed create undefines only this domain
    conn = db()
    config = current_app.config
    # placement, the quota's count and the insert under one write lock: no double booking, and
    # no two requests can both take a project's last room
    with transaction(conn):
        if vms_repo.get(conn, vm["id"]):
            raise Conflict(f"a VM named {vm['id']} already exists")
        leftovers = adapters().storage.existing_vm_files(vm["id"])
        if leftovers:
            raise Conflict(
                f"vms/{leftovers[0]} already exists in the repository (left by an earlier VM "
                f"{vm['id']}?): remove it or choose another name"
            )
        project = projects.for_new_resource(conn, vm.pop("project"))
        need = {"vms": 1, "vcpus": vm["vcpus"], "mem": vm["mem"], "disk": disk}
        projects.check_room(conn, project, need)
        host = _place(conn, vm, config)
        vms_repo.insert(
            conn,
            vm_id=vm["id"],
            host_id=host["id"],
            image=vm["image"],
            mem=vm["mem"],
            vcpus=vm["vcpus"],
            state="stopped",
            created_by=actor,
            project_id=project["id"],
            disk=disk,
            task=kinds.VM_CREATE.task,
            boot=vm["boot"],
        )
        # addresses in the same transaction: unique under concurrent creations, released with
        # the row when anything below refuses
        nics = networks.allocate_nics(conn, vm["id"], domain_uuid, project, nic_requests)
        # User data stays in the VM's row, out of the operation's input, which every operator
        # reads (it may hold passwords); public keys are public, and a retry needs them.
        boot = vm.pop("boot")
        input_data = {
            **vm,
            "hostname": boot["hostname"],
            "ssh_keys": boot["ssh_keys"],
            "user_data": len(boot["user_data"].encode()),
            "host": host["id"],
            "host_name": host["name"],
            "uuid": domain_uuid,
            "project": project["name"],
            "project_id": project["id"],  # showback follows the project through renames
            "disk": disk,
        }
        if nics:
            input_data["networks"] = nics
        op_id = record(conn, kinds.VM_CREATE, vm, actor, input_data)
    return launch(op_id, wait)


# The buttons a VM offers and the states each shows in: the services' own rule (the kinds'
# from_states), read by the templates and, through data-show-when, by the live updates.
ACTIONS = {
    "start": kinds.VM_START.from_states,
    "stop": kinds.VM_STOP.from_states,
    "force_off": kinds.VM_STOP.from_states,
    "remove": kinds.VM_REMOVE.from_states,
}
MIGRATE_STATES = kinds.VM_MIGRATE.from_states


def act(kind, vm_id, actor, wait, force=False):
    """Start, stop or remove a VM (its kind's claim: task free, state allowed); returns the
    operation id."""
    return request(kind, get(vm_id), actor, {"force": True} if force else {}, wait)


def start(vm_id, actor, wait):
    """Start a stopped VM."""
    return act(kinds.VM_START, vm_id, actor, wait)


def stop(vm_id, actor, wait, force=False):
    """Stop a running VM: gracefully, or forced off at once."""
    return act(kinds.VM_STOP, vm_id, actor, wait, force=bool(force))


def remove(vm_id, actor, wait, volumes=False):
    """Remove a VM: forced off if running, undefined, its disk, seed and boot log deleted;
    its volumes detached and kept, or removed with it (volumes=True)."""
    if not isinstance(volumes, bool):
        raise InvalidInput(f"volumes must be true or false, not {volumes!r:.40}")
    return request(kinds.VM_REMOVE, get(vm_id), actor, {"volumes": volumes}, wait)


def said_to_viewer(error):
    """An error's message as this viewer may read it (no host address for a member)."""
    return redaction.for_viewer().text(str(error))


def guest(vm_id):
    """What a running VM's guest agent reports ({os, kernel, hostname, addresses}, and
    missing_addresses: those Nube gave its NICs that the guest does not report), or None
    when the VM is not running or has no agent answering."""
    row = get(vm_id)
    if row["state"] != "running":
        return None
    host = hosts_repo.get(db(), row["host"])
    info = adapters().hypervisor.guest_info(dict(host), row["id"])
    if info is None:
        return None
    guest = asdict(info)
    # Nube's addresses the guest does not report: a guest that changed its own configuration,
    # or one whose network-config did not apply
    reported = {address["address"] for address in guest["addresses"]}
    expected = [nic["ip"] for nic in networks_repo.nics_of(db(), row["id"])]
    guest["missing_addresses"] = [ip for ip in expected if ip not in reported]
    return guest


def migrate(vm_id, host, actor, wait):
    """Move a VM to another host, live when it runs: to the host asked for (an id or a name),
    or where placement puts it, never its own; returns the operation id."""
    row = get(vm_id)  # another project's VM is not found, before the role is refused
    access.require("vms.place")
    conn = db()
    claims.check(kinds.VM_MIGRATE, row)  # busy or not movable: said before placement
    requested = None if host in (None, "") else str(host).strip()
    if requested in (str(row["host"]), row["host_name"]):
        raise Conflict(f"VM {row['id']} is already on host {row['host_name']}")
    config = current_app.config
    with transaction(conn):  # placement and the claim under one write lock
        others = [dict(h) for h in hosts_repo.search(conn) if h["id"] != row["host"]]
        if not others:
            raise InvalidInput(f"there is no other host to move VM {row['id']} to")
        target = choose_host(
            others,
            row["mem"],
            vcpus=row["vcpus"],
            policy=config["PLACEMENT"],
            overcommit=config["MEM_OVERCOMMIT"],
            cpu_overcommit=config["CPU_OVERCOMMIT"],
            requested=requested,
        )
        moves = {
            "from": row["host"],
            "from_name": row["host_name"],
            "to": target["id"],
            "to_name": target["name"],
        }
        op_id = record(conn, kinds.VM_MIGRATE, row, actor, moves)
    return launch(op_id, wait)
