"""Compare a domain definition a host reports with the one Nube rendered, device by device.

A host can rewrite its domains (a `<disk type='block'>` on /dev/sda, a `<filesystem>` sharing
`/`). Nube never hands such a definition on, and refuses to move a VM whose definition carries
a device that grants access to something Nube did not render. libvirt adds devices of its own
(controllers, input devices, addresses, aliases, a MAC, runtime sources): those that grant no
access are ignored; the rest are compared by what they give the guest."""

import os
import re
import xml.etree.ElementTree as ET

# Device kinds libvirt adds to a definition or whose only settings are models: they reach no
# file, device, socket or network of the host.
_HARMLESS = {"controller", "video", "memballoon"}
# The emulator libvirt fills in: a system QEMU, never a file elsewhere (a host could point it
# at something it wrote into the repository, run as the guest's QEMU on the next host).
_EMULATOR = re.compile(r"/usr/(?:local/)?(?:bin|libexec)/(?:qemu-system-[a-z0-9_]+|qemu-kvm|kvm)")
_INPUT_TYPES = {"mouse", "keyboard", "tablet"}
# Where libvirt puts a guest agent channel's socket when the definition names none.
_CHANNEL_DIRS = ("/run/libvirt/qemu/channel/", "/var/lib/libvirt/qemu/channel/")
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_QEMU_NS = "{http://libvirt.org/schemas/domain/qemu/1.0}"
_OS_FILES = ("kernel", "initrd", "dtb", "loader", "nvram")


def _attrs(element, *names):
    """The named attributes of an element (None when it is absent), as a tuple."""
    if element is None:
        return (None,) * len(names)
    return tuple(element.get(name) for name in names)


def _path(value):
    """A path as QEMU opens it: '/mnt/iaas/vms/../images/a' and '/mnt/iaas/images/a' match."""
    return os.path.normpath(value) if value else value


def _chain(disk):
    """A disk's backing chain as the definition names it: [(type, format, path)], or None
    when the definition says nothing (libvirt then read it from the header, checked apart)."""
    layers, node = [], disk.find("backingStore")
    if node is None:
        return None
    while node is not None and node.get("type"):
        fmt = node.find("format")
        source = node.find("source")
        layers.append((node.get("type"), _attrs(fmt, "type")[0], _path(_source_text(source))))
        node = node.find("backingStore")
    return layers


def _source_text(source):
    """Everything a <source> names, as one comparable text."""
    if source is None:
        return None
    named = [source.get(key) for key in ("file", "dev", "dir", "name", "pool", "volume")]
    return "|".join(value or "" for value in named) if any(named) else None


def _disk(disk):
    """What a disk gives the guest: its kind, the file (or device) and its format; anything
    inside its source (a persistent reservation socket, a data store...) or a block job's
    mirror makes it differ."""
    source = disk.find("source")
    fmt = _attrs(disk.find("driver"), "type")[0]
    inside = () if source is None else tuple(sorted(child.tag for child in source))
    return (
        "disk",
        disk.get("type"),
        disk.get("device"),
        fmt,
        _path(_source_text(source)),
        disk.find("readonly") is not None,
        inside,
        disk.find("mirror") is not None,
    )


def _interface(nic):
    """What a NIC connects to: its type and network or bridge; extra parts (a script, a
    backend) make it differ."""
    kind = nic.get("type")
    source = nic.find("source")
    name = _attrs(source, {"network": "network", "bridge": "bridge"}.get(kind, "dev"))[0]
    extras = tuple(sorted(child.tag for child in nic if child.tag in ("script", "backend", "ip")))
    return ("interface", kind, name, extras)


def _libvirt_socket(tag, kind, mode, path):
    """Whether a channel is a socket libvirt places itself (the guest agent's)."""
    unnamed = path is None or path.startswith(_CHANNEL_DIRS)
    return tag == "channel" and kind == "unix" and mode in (None, "bind") and unnamed


def _char(device):
    """A serial port, console or channel: what its host side is. A pty's path is chosen when
    it starts, a guest agent socket's by libvirt: both count as unnamed."""
    kind, tag = device.get("type"), device.tag
    source = device.find("source")
    path = _attrs(source, "path")[0]
    if kind == "pty" or _libvirt_socket(tag, kind, _attrs(source, "mode")[0], _path(path)):
        path = None
    target, target_type = _attrs(device.find("target"), "name", "type")
    log = _path(_attrs(device.find("log"), "file")[0])
    if tag == "console" and target_type == "serial":
        log = None  # the first serial port itself: libvirt repeats that port's log here
    others = _attrs(source, "host", "service", "mode") if kind not in ("pty", "unix") else ()
    return (tag, kind, path, target, log, others)


def _graphics(graphics):
    """A display server: its type and whether it listens beyond the host's loopback."""
    listens = {graphics.get("listen")} | {
        listen.get("address") or listen.get("type") for listen in graphics.findall("listen")
    }
    listens.discard(None)
    return ("graphics", graphics.get("type"), bool(listens - _LOOPBACK))


_COMPARED = {
    "disk": _disk,
    "interface": _interface,
    "serial": _char,
    "console": _char,
    "channel": _char,
}


def _describe(element):
    """A short text naming a device, for the refusal."""
    text = ET.tostring(element, encoding="unicode").strip()
    first = text.split(">", 1)[0] + ">"
    if len(element) == 0 and (element.text or "").strip():  # <emulator>PATH</emulator>
        first = text
    source = element.find("source")
    if source is not None:
        first += " " + ET.tostring(source, encoding="unicode").strip()
    return " ".join(first.split())[:200]


def _key(device):
    """A device's comparable key; None for one that reaches nothing (ignored)."""
    tag = device.tag
    if any(rom.get("file") for rom in device.iter("rom")):  # QEMU loads it into the guest
        return (tag, ET.tostring(device, encoding="unicode"))
    if tag == "emulator":
        return (
            None if _EMULATOR.fullmatch((device.text or "").strip()) else ("emulator", device.text)
        )
    if tag in _HARMLESS:
        return None
    if tag == "input" and device.get("type") in _INPUT_TYPES and device.find("source") is None:
        return None
    if tag == "audio" and device.get("type") == "none":
        return None
    if tag == "graphics":
        return _graphics(device)
    if tag in _COMPARED:
        return _COMPARED[tag](device)
    return (tag, ET.tostring(device, encoding="unicode"))  # any other kind: never Nube's


def _outside_devices(domain):
    """Parts outside <devices> that name host files, pass QEMU options or change whom QEMU
    runs as: described."""
    found = [f"<os><{tag}>" for tag in _OS_FILES if domain.find(f"os/{tag}") is not None]
    # ACPI tables and fw_cfg entries are files QEMU reads and hands to the guest
    found += ["<os><acpi><table>" for _table in domain.iterfind("os/acpi/table")]
    found += [
        f"<sysinfo><entry file='{entry.get('file')}'>"
        for entry in domain.iterfind("sysinfo/entry")
        if entry.get("file")
    ]
    found += [
        f"<qemu:{child.tag.removeprefix(_QEMU_NS)}>"
        for child in domain
        if child.tag.startswith(_QEMU_NS)
    ]
    found += [
        f"<seclabel type='{label.get('type')}'>"
        for label in domain.findall("seclabel")
        if label.get("type") != "dynamic"
    ]
    return found


def _devices(domain):
    """The children of a domain's <devices>."""
    devices = domain.find("devices")
    return [] if devices is None else list(devices)


def foreign_devices(actual_xml: str, expected_xml: str) -> list[str]:
    """The devices (and other parts) of a host's definition that Nube's rendering does not
    have, or has differently, each described; [] when every one is Nube's."""
    actual, expected = ET.fromstring(actual_xml), ET.fromstring(expected_xml)
    found = _outside_devices(actual)
    wanted, chains = {}, {}
    for device in _devices(expected):
        key = _key(device)
        if key is not None:
            wanted[key] = wanted.get(key, 0) + 1
        if device.tag == "disk":
            chains[key] = _chain(device) or []
    for device in _devices(actual):
        key = _key(device)
        if key is None:
            continue
        if not wanted.get(key):
            found.append(_describe(device))
            continue
        wanted[key] -= 1
        chain = _chain(device) if device.tag == "disk" else None
        # a chain libvirt read from the header (old definitions name none) must be Nube's too
        if chain and chain != chains[key]:
            layers = ", ".join(path or "?" for _type, _fmt, path in chain)
            found.append(f"{_describe(device)} backed by {layers}")
    return found


def disk_targets(xml: str) -> list[str]:
    """The targets (vda, vdb...) of the disks a domain definition names."""
    domain = ET.fromstring(xml)
    return [target.get("dev") for target in domain.findall("devices/disk[@device='disk']/target")]
