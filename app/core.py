"""Nube's Python API, with the original lab's names; synchronous, built on the same services.

Inside an app context the current app is used; outside one an app is built from the
environment (`NUBE_*`), so `python -c "from app import core; print(core.listVms())"` works.
Every call that touches a host runs its operation in this process and waits; a failure raises
`OperationFailed` carrying the operation's log.
"""

import contextlib
import functools
import json
import os
import threading

from flask import current_app, has_app_context

from .db import close_db, drop_database, ensure_schema
from .errors import (
    Busy,
    Conflict,
    HostUnreachable,
    InvalidInput,
    NotFound,
    NubeError,
    OperationFailed,
    QuotaExceeded,
)
from .numbers import is_digits
from .services import (
    access,
    boot_log,
    controller,
    hosts,
    image_import,
    image_save,
    images,
    networks,
    operations,
    projects,
    resize,
    snapshots,
    vms,
    volumes,
)

__all__ = [
    "Busy",
    "Conflict",
    "HostUnreachable",
    "InvalidInput",
    "NotFound",
    "NubeError",
    "OperationFailed",
    "QuotaExceeded",
    "init",
    "destroy",
    "addHost",
    "listHosts",
    "removeHost",
    "updateHost",
    "addVm",
    "startVm",
    "stopVm",
    "removeVm",
    "listVms",
    "buildImage",
    "importImage",
    "consoleLog",
    "migrateVm",
    "drainHost",
    "addProject",
    "listProjects",
    "updateProject",
    "removeProject",
    "addMember",
    "removeMember",
    "addVolume",
    "listVolumes",
    "attachVolume",
    "detachVolume",
    "growVolume",
    "addNetwork",
    "listNetworks",
    "updateNetwork",
    "removeNetwork",
    "removeVolume",
    "resizeVm",
    "saveImage",
    "acting_as",
    "snapshotVm",
    "listSnapshots",
    "revertSnapshot",
    "removeSnapshot",
]

ACTOR = os.environ.get("NUBE_ACTOR", "api")

_app = None
_app_lock = threading.Lock()


def _default_app():
    """The app built from the environment, once per process."""
    global _app
    with _app_lock:
        if _app is None:
            from . import create_app

            _app = create_app()
        return _app


def _in_app(function):
    """Run an API function inside an app context (the current one, or the default app's)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if has_app_context():
            return function(*args, **kwargs)
        with _default_app().app_context():
            return function(*args, **kwargs)

    return wrapper


def _actor():
    """Who the operations and the audit log name: the user acted as, else NUBE_ACTOR."""
    return access.current().name or ACTOR


@contextlib.contextmanager
def acting_as(username):
    """Make the calls inside act as a user, who sees only what that user may (a member: their
    projects'; another project's VM is not found) and is named on operations and in the audit
    log. Without it the API runs as the system, which sees everything."""
    with contextlib.ExitStack() as stack:
        if not has_app_context():
            stack.enter_context(_default_app().app_context())
        yield stack.enter_context(access.acting_as(username))


@_in_app
def init():
    """Initialise the controller: database, repository folders, iaas_init.yaml."""
    ensure_schema(current_app.config["DATABASE"])
    controller.init(_actor(), wait=True)


@_in_app
def destroy(purge=False):
    """Remove every VM and host, then run iaas_destroy.yaml; purge also drops images and the DB."""

    controller.destroy(_actor(), wait=True, purge=purge)
    if purge:
        close_db()
        drop_database(current_app.config["DATABASE"])


@_in_app
def addHost(host):
    """Register (and by default prepare) a host; returns it as listHosts shows it."""

    op_id = hosts.add(host, _actor(), wait=True)
    return _host_of_operation(op_id)


def _host_of_operation(op_id):
    """The host an operation targeted, in its public form."""

    return hosts.public(hosts.get(int(operations.get(op_id)["target_id"])))


@_in_app
def listHosts(query=""):
    """Hosts matching a filter expression (a safe subset of SQL WHERE), as dicts."""

    return [{key: host[key] for key in hosts.PUBLIC_KEYS} for host in hosts.search(query)]


@_in_app
def removeHost(hostId, drain=False):
    """Remove a host: its VMs forced off and removed (or, with drain=True, moved to other
    hosts first; a VM that cannot move stops the removal), host_remove.yaml, then the record."""

    hosts.remove(_host_ref(hostId), _actor(), wait=True, drain=drain)


@_in_app
def updateHost(hostId, data):
    """Change a host's fields; returns the host."""

    ref = _host_ref(hostId)
    hosts.update(ref, data, _actor(), wait=True)
    return hosts.public(hosts.get(ref))


def _host_ref(host_id):
    """Accept the integer id or a string of digits, as the contract says."""
    if isinstance(host_id, bool) or not isinstance(host_id, int | str):
        raise InvalidInput(f"hostId must be an integer id, not {host_id!r}")
    if isinstance(host_id, str) and not is_digits(host_id.strip()):
        raise InvalidInput(f"hostId must be an integer id, not {host_id!r}")
    return int(host_id)


@_in_app
def addVm(vm):
    """Create a VM (disk, cloud-init seed, domain) on a host Nube picks or the one asked for;
    vm may carry hostname, ssh_keys and user_data for its first boot, project (default: the
    project default), whose quotas it must fit, disk (GiB, at least the image's virtual
    size; default: that size) and networks (one NIC each, in order: a network name, or
    {"network", "ip"} for a fixed address). Returns it, with `ip` (its first NIC's address)
    and `networks` ([{network, ip, mac}])."""

    vms.add(vm, _actor(), wait=True)
    return vms.public(vms.get(vm["id"]))


@_in_app
def startVm(vmId):
    """Start a VM."""

    vms.start(vmId, _actor(), wait=True)


@_in_app
def stopVm(vmId, force=False):
    """Stop a VM: shut down through its guest agent (or ACPI without one), forced off after
    STOP_TIMEOUT (or at once with force=True)."""

    vms.stop(vmId, _actor(), wait=True, force=force)


@_in_app
def removeVm(vmId, volumes=False):
    """Remove a VM: forced off if running, undefined, its disk, seed and boot log deleted; its
    volumes are detached and kept, or removed with it when volumes=True."""

    vms.remove(vmId, _actor(), wait=True, volumes=volumes)


@_in_app
def listVms(query=""):
    """VMs matching a filter expression (a safe subset of SQL WHERE), as dicts."""

    return [vms.public(vm) for vm in vms.search(query)]


@_in_app
def buildImage(data):
    """Build a Debian guest image into images/<name>.qcow2 (keys name, release="bookworm",
    size="4G"); returns the image: name, format, virtual_size, actual_size."""

    op_id = images.build(data, _actor(), wait=True)
    return images.info(operations.get(op_id)["target_id"])


@_in_app
def importImage(data):
    """Import an image from an http(s) URL into images/<name> (keys name, url, and sha256 or
    checksums_url, os; optional): fetched, verified, checked as uploads are, stored as qcow2;
    returns the image: name, format, virtual_size, actual_size."""

    op_id = image_import.start(data, _actor(), wait=True)
    return images.info(operations.get(op_id)["target_id"])


@_in_app
def consoleLog(vmId, lines=200):
    """The last lines of a VM's boot log (its serial console), as text."""

    return boot_log.tail(vmId, lines)


@_in_app
def migrateVm(vmId, hostId=None):
    """Move a VM to another host (live when it runs; its disk stays in the shared repository):
    to hostId, or where placement puts it. Returns the VM on its new host."""

    vms.migrate(vmId, hostId, _actor(), wait=True)
    return vms.public(vms.get(vmId))


@_in_app
def drainHost(hostId):
    """Put a host in maintenance and move its VMs to other hosts (running ones live).
    Returns {"moved": [ids], "stayed": [{"id", "reason"}]}."""

    op_id = hosts.drain(_host_ref(hostId), _actor(), wait=True)
    return json.loads(operations.get(op_id)["result"] or "{}")


@_in_app
def addProject(project):
    """Create a project: {"name", "description"?, "quota"?: {"vms", "vcpus", "mem" (MiB),
    "disk" (GiB)}} (a missing or None limit: none). Returns the project."""

    return projects.get(projects.add(project, _actor()))


@_in_app
def listProjects():
    """Every project with its quotas, usage (counted from its rows) and members."""

    return projects.all_projects()


@_in_app
def updateProject(name, changes):
    """Rename a project, or change its description or quotas (only the keys given; a quota
    below usage refuses growth and removes nothing). Returns the project."""

    return projects.get(projects.update(name, changes, _actor()))


@_in_app
def removeProject(name):
    """Remove a project that has no resources left."""

    projects.remove(name, _actor())


@_in_app
def addMember(project, user):
    """Make a user a member of a project."""

    projects.add_member(project, user, _actor())


@_in_app
def removeMember(project, user):
    """End a user's membership of a project."""

    projects.remove_member(project, user, _actor())


@_in_app
def addVolume(volume):
    """Make a volume in the repository (volumes/<name>.qcow2): {"name", "size" (GiB),
    "image"? (made from it), "project"?}. Returns it as listVolumes shows it."""

    volumes.add(volume, _actor(), wait=True)
    return volumes.public(volumes.get(volume["name"]))


@_in_app
def listVolumes(query=""):
    """Volumes matching a filter expression (name, size, state, vm, image, project...)."""

    return [volumes.public(volume) for volume in volumes.search(query)]


@_in_app
def attachVolume(volume, vmId):
    """Attach an available volume to a VM of its project (hot-plugged when the VM runs);
    returns the volume."""

    volumes.attach(volume, vmId, _actor(), wait=True)
    return volumes.public(volumes.get(volume))


@_in_app
def detachVolume(volume):
    """Detach a volume from its VM (a running guest must release it); returns the volume."""

    volumes.detach(volume, _actor(), wait=True)
    return volumes.public(volumes.get(volume))


@_in_app
def growVolume(volume, size):
    """Grow a volume to size GiB (live when its VM runs; never shrink); returns the volume."""

    volumes.grow(volume, size, _actor(), wait=True)
    return volumes.public(volumes.get(volume))


@_in_app
def removeVolume(volume):
    """Remove a volume attached to no VM: its file and its record."""

    volumes.remove(volume, _actor(), wait=True)


@_in_app
def resizeVm(vmId, changes):
    """Change a stopped VM's memory ("mem", MiB) and vCPUs ("vcpus"), and grow its disk
    ("disk", GiB; running or stopped). Returns the VM."""

    resize.resize(vmId, changes, _actor(), wait=True)
    return vms.public(vms.get(vmId))


@_in_app
def snapshotVm(vmId, name):
    """Snapshot a VM's disk and attached volumes together (a running guest's file systems
    frozen by its agent meanwhile); returns the snapshot."""

    snapshots.take(vmId, name, _actor(), wait=True)
    return snapshots.get(vmId, name)


@_in_app
def listSnapshots(vmId):
    """A VM's snapshots, oldest first: name, state, frozen (None: taken stopped), size
    (bytes its files held), volumes, created_by, created_at."""

    return snapshots.listing(vmId)


@_in_app
def revertSnapshot(vmId, name):
    """Bring a stopped VM back to a snapshot (what was written since is lost); returns the
    snapshot."""

    snapshots.revert(vmId, name, _actor(), wait=True)
    return snapshots.get(vmId, name)


@_in_app
def removeSnapshot(vmId, name):
    """Delete a VM's snapshot (running or stopped); the VM keeps its data."""

    snapshots.remove(vmId, name, _actor(), wait=True)


@_in_app
def saveImage(vmId, name, snapshot=None):
    """Save a stopped VM's disk (or its internal snapshot `snapshot`) as images/<name>: one
    compressed qcow2, its backing chain flattened, the guest's identity removed (SSH host
    keys, machine-id, cloud-init's state). Returns the image: name, format, virtual_size,
    actual_size."""

    image_save.save(vmId, name, snapshot, _actor(), wait=True)
    return images.info(name)


@_in_app
def addNetwork(network):
    """Define a virtual network: {"name", "type": "vxlan" (default; an overlay across the
    hosts, its VNI allocated) | "bridge" (the hosts' existing bridge, "bridge": its name),
    "cidr" (IPv4, /16 to /29), "gateway"?, "dns"? (a list), "range"? ("FIRST-LAST", the
    addresses Nube hands out), "mtu"?, "project"?, "rules"? (its security group: a list of
    {"protocol", "ports"?, "source"?} or lines like "tcp/22 from any"; default: from its own
    range and SSH from anywhere)}. Returns it as listNetworks shows it."""

    return networks.add(network, _actor())


@_in_app
def listNetworks(query=""):
    """Networks matching a filter expression (name, type, vni, cidr, project...), each with
    its addresses in use (`used`) and free (`free`)."""

    return networks.search(query)


@_in_app
def updateNetwork(network, data):
    """Replace a network's rules, {"rules": [...]} as addNetwork takes them ([]: replies
    only), and bring them to its hosts; returns the network as listNetworks shows it."""

    networks.update(network, data, _actor(), wait=True)
    return networks.get(network)


@_in_app
def removeNetwork(network):
    """Remove a network no VM uses (a name or an id); refused, naming them, while VMs do."""

    networks.remove(network, _actor())
