"""The domain definition of a VM, always rendered by Nube from the VM's row, its disk's
checked header and the host it is for; never a definition a host supplied. A host's own
definition is only compared with it, and a VM whose definition carries foreign devices is
refused a move (the device would follow the VM to its next host)."""

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

from .. import cloudinit
from ..adapters.vm_files import CONSOLE_LOG_SUFFIX, SEED_SUFFIX
from ..domain_devices import disk_targets, foreign_devices
from ..domain_xml import render_domain
from ..errors import NotFound, OperationFailed
from ..ipam import bridge_for, tap_name
from ..repositories import networks as networks_repo
from ..repositories import vms as vms_repo
from ..repositories import volumes as volumes_repo

_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")


def host_disk_path(ctx, vm_id, suffix=".qcow2"):
    """Where a VM's file (its disk by default) is seen from its host (the repository mounted
    at HOST_MOUNT)."""
    return f"{ctx.config['HOST_MOUNT'].rstrip('/')}/vms/{vm_id}{suffix}"


def disk_chain(ctx, vm):
    """The backing chain of the VM's disk as hosts see it ([(path, format)], top down), after
    checking that its header names exactly the VM's image (an overlay) or nothing (a copy)."""
    mount = ctx.config["HOST_MOUNT"].rstrip("/")
    return [
        (f"{mount}/{path}", fmt) for path, fmt in ctx.storage.disk_backing(vm["id"], vm["image"])
    ]


def check_headers(ctx, vm):
    """Read the headers of the VM's disk and of its attached volumes afresh and refuse any
    that names a file Nube did not give it (OperationFailed); its disk's chain."""
    chain = disk_chain(ctx, vm)
    for volume in volumes_repo.attached_to(ctx.conn, vm["id"]):
        ctx.storage.volume_backing(volume["name"], volume["image"])
    return chain


def volume_disk(ctx, volume, target=None, chain=True):
    """A volume as the domain names it: {path, backing, target, serial} as hosts see them,
    its header checked against the image its row records (target: the one it is taking;
    chain=False: no header read and no chain, enough to name the device to unplug)."""
    mount = ctx.config["HOST_MOUNT"].rstrip("/")
    chain = ctx.storage.volume_backing(volume["name"], volume["image"]) if chain else []
    return {
        "path": f"{mount}/volumes/{volume['name']}.qcow2",
        "backing": [(f"{mount}/{path}", fmt) for path, fmt in chain],
        "target": target or volume["target"],
        "serial": volume["name"],
    }


def attached_disks(ctx, vm_id):
    """The volumes a VM's rows say are attached, as its domain names them (headers checked)."""
    return [volume_disk(ctx, row) for row in volumes_repo.attached_to(ctx.conn, vm_id)]


def network_nics(ctx, vm_id):
    """A VM's NICs on Nube's networks as its domain names them: {mac, bridge, tap, mtu} (the
    tap `nt<row id>`, the same on every host, so that host rules can follow it)."""
    return [
        {
            "mac": nic["mac"],
            "bridge": bridge_for(nic["type"], nic["vni"], nic["bridge"]),
            "tap": tap_name(nic["id"]),
            "mtu": nic["mtu"],
        }
        for nic in networks_repo.nics_of(ctx.conn, vm_id)
    ]


def render(ctx, vm, host, chain, seed=None, console_log=True, volumes=None):
    """The domain XML of vm (with its uuid, and mac when it has one) on host, with its
    volumes (attached_disks' list; read from its rows when not given) and its NICs on Nube's
    networks (which replace the host network's NIC)."""
    log = host_disk_path(ctx, vm["id"], CONSOLE_LOG_SUFFIX) if console_log else None
    if volumes is None:
        volumes = attached_disks(ctx, vm["id"])
    return render_domain(
        {**vm, "nics": network_nics(ctx, vm["id"])},
        host,
        host_disk_path(ctx, vm["id"]),
        ctx.config["DOMAIN_TEMPLATES"],
        backing=chain,
        seed_path=seed,
        console_log=log,
        virt_type=ctx.config["VIRT_TYPE"],
        volumes=volumes,
    )


def _identity(vm, host_xml, nic_wanted, seeded):
    """The VM with the identity its guest has now: the UUID the host reports (a checked
    UUID, nothing else), and the MAC Nube gives it (from that UUID with a seed; else the
    guest's current one, when it is a MAC address)."""
    domain = ET.fromstring(host_xml)
    vm = {**vm, "uuid": domain.findtext("uuid")}
    if nic_wanted and seeded:
        vm["mac"] = cloudinit.mac_address(vm["uuid"])
    elif nic_wanted:
        mac = domain.find("devices/interface/mac")
        address = None if mac is None else (mac.get("address") or "").lower()
        vm["mac"] = address if address and _MAC.fullmatch(address) else None
    return vm


def for_move(ctx, vm, src, dst, running):
    """The XML Nube renders for a VM moving from src to dst, after checking its disk's header
    and that the source's definitions (the running one too) carry no foreign device."""
    return _checked(ctx, vm, src, dst, running, f"move it (it stays on {src['name']})")


def check_arrival(ctx, vm, dst, xml):
    """After a live move, check that dst runs and keeps Nube's definition: the source's
    libvirt hands the destination XML on itself, so a patched one could send its own. A VM
    that arrived with anything else, or whose disk header changed during the move, is forced
    off there and keeps Nube's definition."""
    found = foreign_devices(ctx.hypervisor.definition(dst, vm["id"], live=True), xml)
    found += foreign_devices(ctx.hypervisor.definition(dst, vm["id"]), xml)
    try:
        check_headers(ctx, vm)  # again, now the destination's QEMU has the files open
    except (OperationFailed, NotFound) as error:
        found.append(str(error))
    if found:
        ctx.hypervisor.force_off(dst, vm["id"])
        ctx.hypervisor.define(dst, xml)
        raise OperationFailed(
            f"{vm['id']} arrived on {dst['name']} with what Nube never gave it:"
            f" {'; '.join(found)}; forced off there, its definition replaced with Nube's"
        )


def pin_chain(ctx, vm, host):
    """Before a stopped VM starts: redefine it with Nube's rendering when its definition names
    no backing chain (made before Nube wrote it) or other volumes than its rows say (an attach
    or detach that failed half-way); the same checks as a move first, which refuse a volume
    its rows do not give it (one another VM, or another project, may hold now)."""
    domain = ET.fromstring(ctx.hypervisor.definition(host, vm["id"]))
    disks = domain.findall("devices/disk[@device='disk']")
    volumes = f"{ctx.config['HOST_MOUNT'].rstrip('/')}/volumes/"
    named = {path for path in map(_source, disks) if path and path.startswith(volumes)}
    rows = {f"{volumes}{row['name']}.qcow2" for row in volumes_repo.attached_to(ctx.conn, vm["id"])}
    if disks and disks[0].find("backingStore") is not None and named == rows:
        return
    xml = _checked(ctx, vm, host, host, False, "start it")
    ctx.log(f"redefining {vm['id']} with its disks' whole backing chains named, as its rows say")
    ctx.hypervisor.define(host, xml)


def _source(disk):
    """The file a <disk> element names (None without one)."""
    source = disk.find("source")
    return None if source is None else source.get("file")


@dataclass(frozen=True)
class Checked:
    """A VM's host definitions, checked: what its persistent one names (disk targets), and
    render(add=disk, drop=serial, **changes): Nube's XML for it there with one volume disk
    more or less and other values (mem, vcpus); every header was read once, by the check."""

    render: Callable
    targets: tuple
    volumes: tuple  # the attached volumes' disks, as rendered (attached_disks)

    def volume(self, name):
        """The disk of an attached volume, as rendered; None when it is not attached."""
        return next((disk for disk in self.volumes if disk["serial"] == name), None)


def checked_renderer(ctx, vm, host, running, refused):
    """The host's definitions of vm, checked as a move's are (see _checked): a Checked."""
    return _checked(ctx, vm, host, host, running, refused, later=True)


def _checked(ctx, vm, src, dst, running, refused, later=False):
    """Nube's XML for vm on dst, once the disk's header and src's definitions are checked;
    refused: what is refused when they are not; later: a Checked to render it with instead."""
    chain = disk_chain(ctx, vm)
    files = set(ctx.storage.existing_vm_files(vm["id"]))
    boot = vms_repo.first_boot(ctx.conn, vm["id"])
    seeded = f"{vm['id']}{SEED_SUFFIX}" in files and bool(boot and boot["hostname"])
    seed = host_disk_path(ctx, vm["id"], SEED_SUFFIX) if seeded else None
    has_log = f"{vm['id']}{CONSOLE_LOG_SUFFIX}" in files
    host_xmls = [ctx.hypervisor.definition(src, vm["id"])]
    if running:
        host_xmls.append(ctx.hypervisor.definition(src, vm["id"], live=True))
    on_src = _identity(vm, host_xmls[-1], src["network"] != "none", seeded)
    volumes = attached_disks(ctx, vm["id"])
    expected = render(ctx, on_src, src, chain, seed, has_log, volumes)
    for host_xml in host_xmls:
        foreign = foreign_devices(host_xml, expected)
        if foreign:
            raise OperationFailed(
                f"the definition of {vm['id']} on {src['name']} has what Nube never gave it:"
                f" {'; '.join(foreign)}; refusing to {refused}"
            )
    on_dst = _identity(vm, host_xmls[-1], dst["network"] != "none", seeded)
    if not later:
        return render(ctx, on_dst, dst, chain, seed, has_log, volumes)

    def render_later(add=None, drop=None, **changes):
        kept = [disk for disk in volumes if disk["serial"] != drop]
        return render(
            ctx, {**on_dst, **changes}, dst, chain, seed, has_log, kept + ([add] if add else [])
        )

    return Checked(render_later, tuple(disk_targets(host_xmls[0])), tuple(volumes))
