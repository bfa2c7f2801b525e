"""Render a libvirt domain definition for one VM on one host."""

import re
import uuid as uuidlib
import xml.etree.ElementTree as ET
from functools import lru_cache

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from app.adapters.storage import check_vm_id
from app.adapters.volume_files import check_volume_name
from app.errors import InvalidInput, OperationFailed
from app.limits import MEM, VCPUS

TEMPLATE = "vm.xml.j2"
VOLUME_TEMPLATE = "volume.xml.j2"
# The targets volumes take, in order (vda is the VM's own disk), and the PCI slot of each:
# fixed by Nube, high above the slots libvirt gives the other devices (2 to 7), so that a
# volume hot-plugged on one host sits where the definition a live migration sends to the next
# host puts it (QEMU refuses a move whose devices changed address).
VOLUME_SLOT_FIRST = 0x08
VOLUME_TARGETS = tuple(f"vd{letter}" for letter in "bcdefghijklmnopqrstuvwxy")  # slots 08-1f
MEM_MIN, MEM_MAX = MEM.minimum, MEM.maximum  # MiB
VCPUS_MIN, VCPUS_MAX = VCPUS.minimum, VCPUS.maximum
NETWORK_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
BRIDGE_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$"  # Linux interface names: at most 15 bytes
DISK_PATH_MAX = 4096
VIRT_TYPES = ("auto", "kvm", "qemu")
BACKING_FORMATS = ("qcow2", "raw")  # what a base image may be (storage.check_upload)

_NETWORK = re.compile(NETWORK_RE)
_BRIDGE = re.compile(BRIDGE_RE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_TAP = re.compile(r"nt\d{1,13}")  # Nube's tap names: nt and the NIC's row id


@lru_cache(maxsize=8)
def _environment(template_dir: str) -> Environment:
    """The Jinja environment; autoescape so no value can ever inject XML."""
    return Environment(
        loader=FileSystemLoader(template_dir),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _int(value, what, lo, hi) -> int:
    # bool is an int subclass: True must not pass as 1 vCPU
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidInput(f"{what} must be an integer from {lo} to {hi}, not {value!r:.40}")
    return value


def _uuid(value) -> str | None:
    if value is None:
        return None
    try:
        return str(uuidlib.UUID(str(value)))
    except ValueError:
        raise InvalidInput(f"invalid VM uuid {value!r:.60}") from None


def _kvm(value) -> bool:
    # SQLite hands booleans back as 0/1
    if value not in (True, False) or not isinstance(value, int):
        raise InvalidInput(f"host kvm flag must be a boolean, not {value!r:.40}")
    return bool(value)


def _nic(network) -> tuple[str | None, str | None]:
    """('network'|'bridge'|None, source name) from 'none', a network name or 'bridge:NAME'."""
    if not isinstance(network, str):
        raise InvalidInput(f"host network must be a string, not {network!r:.40}")
    if network == "none":
        return None, None
    if network.startswith("bridge:"):
        bridge = network.removeprefix("bridge:")
        if not _BRIDGE.fullmatch(bridge):
            raise InvalidInput(f"invalid bridge name {bridge!r:.60}")
        return "bridge", bridge
    if not _NETWORK.fullmatch(network):
        raise InvalidInput(
            f"invalid network {network!r:.60}: use 'none', a libvirt network name or 'bridge:NAME'"
        )
    return "network", network


def _disk_path(path) -> str:
    if not isinstance(path, str) or not path.startswith("/") or len(path) > DISK_PATH_MAX:
        raise InvalidInput(f"disk path must be an absolute path, not {path!r:.80}")
    # control characters cannot appear in XML at all, even escaped
    if _CONTROL.search(path) or ".." in path.split("/"):
        raise InvalidInput(f"invalid disk path {path!r:.80}")
    return path


def _optional_path(path):
    return None if path is None else _disk_path(path)


def _backing(chain) -> list[dict]:
    """The disk's backing chain, top down: [{"path", "format"}] (empty: no backing file)."""
    layers = []
    for layer in chain or ():
        path, fmt = layer
        if fmt not in BACKING_FORMATS:
            raise InvalidInput(f"backing format must be one of {BACKING_FORMATS}, not {fmt!r:.40}")
        layers.append({"path": _disk_path(path), "format": fmt})
    return layers


def _volume(volume) -> dict:
    """A volume's template variables: {path, backing, target, serial}, each checked."""
    try:
        path, chain, target, serial = (
            volume["path"],
            volume.get("backing"),
            volume["target"],
            volume["serial"],
        )
    except (KeyError, TypeError, AttributeError) as e:
        raise InvalidInput(f"missing volume field: {e}") from None
    if target not in VOLUME_TARGETS:
        raise InvalidInput(f"invalid volume target {target!r:.20}")
    return {
        "path": _disk_path(path),
        "backing": _backing(chain),
        "target": target,
        "serial": check_volume_name(serial),
        "slot": VOLUME_SLOT_FIRST + VOLUME_TARGETS.index(target),
    }


def domain_type(host_kvm, virt_type="auto") -> str:
    """libvirt's domain type: KVM where the host has it (auto), or as VIRT_TYPE forces."""
    if virt_type not in VIRT_TYPES:
        raise InvalidInput(f"VIRT_TYPE must be one of {', '.join(VIRT_TYPES)}, not {virt_type!r}")
    if virt_type == "auto":
        return "kvm" if _kvm(host_kvm) else "qemu"
    return virt_type


def _context(vm: dict, host: dict, disk_path, files: dict) -> dict:
    """Validated template variables; InvalidInput names the first bad value."""
    try:
        vm_id, mem, vcpus = vm["id"], vm["mem"], vm["vcpus"]
        kvm, network = host["kvm"], host["network"]
    except (KeyError, TypeError) as e:
        raise InvalidInput(f"missing VM or host field: {e}") from None
    nic_type, nic_source = _nic(network)
    mac = vm.get("mac")
    if mac is not None and not _MAC.fullmatch(str(mac)):
        raise InvalidInput(f"invalid MAC address {mac!r:.40}")
    return {
        "name": check_vm_id(vm_id),
        "uuid": _uuid(vm.get("uuid")),
        "mem": _int(mem, "memory (MiB)", MEM_MIN, MEM_MAX),
        "vcpus": _int(vcpus, "vcpus", VCPUS_MIN, VCPUS_MAX),
        "domain_type": domain_type(kvm, files.get("virt_type", "auto")),
        "nic_type": nic_type,
        "nic_source": nic_source,
        "mac": mac,
        "disk_path": _disk_path(disk_path),
        "backing": _backing(files.get("backing")),
        "seed_path": _optional_path(files.get("seed_path")),
        "console_log": _optional_path(files.get("console_log")),
        "volumes": [_volume(volume) for volume in files.get("volumes") or ()],
        "nics": [_network_nic(nic) for nic in vm.get("nics") or ()],
    }


def _network_nic(nic):
    """One NIC on a Nube network ({mac, bridge, tap, mtu}), each value checked."""
    try:
        mac, bridge, tap, mtu = nic["mac"], nic["bridge"], nic["tap"], nic.get("mtu")
    except (KeyError, TypeError) as e:
        raise InvalidInput(f"missing NIC field: {e}") from None
    if not _MAC.fullmatch(str(mac)):
        raise InvalidInput(f"invalid MAC address {mac!r:.40}")
    if not isinstance(bridge, str) or not _BRIDGE.fullmatch(bridge):
        raise InvalidInput(f"invalid bridge name {bridge!r:.40}")
    if not isinstance(tap, str) or not _TAP.fullmatch(tap):
        raise InvalidInput(f"invalid tap name {tap!r:.40}")
    return {
        "mac": mac,
        "bridge": bridge,
        "tap": tap,
        "mtu": None if mtu is None else _int(mtu, "MTU", 576, 9000),
    }


def render_domain(vm: dict, host: dict, disk_path: str, template_dir: str, **files) -> str:
    """Domain XML for vm on host, its disk at disk_path (a path as the host sees it); files may
    name its backing chain ([(path, format)], top down), seed_path and console_log (all as the
    host sees them), its attached volumes ([{path, backing, target, serial}]) and the
    virt_type."""
    context = _context(vm, host, disk_path, files)
    return _parsed(_environment(str(template_dir)).get_template(TEMPLATE).render(**context))


def render_volume_disk(volume: dict, template_dir: str) -> str:
    """The <disk> element of one attached volume ({path, backing, target, serial}), as the
    domain's definition has it: what attach and detach hand libvirt."""
    context = _volume(volume)
    return _parsed(_environment(str(template_dir)).get_template(VOLUME_TEMPLATE).render(**context))


def _parsed(xml: str) -> str:
    """The rendered XML, once it parses."""
    try:
        ET.fromstring(xml)  # defence in depth: never hand libvirt something malformed
    except ET.ParseError as e:
        raise OperationFailed(f"rendered domain XML does not parse: {e}") from e
    return xml
