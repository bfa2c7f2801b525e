"""What a VM's QEMU guest agent tells libvirt, read off a domain (these run in the
hypervisor adapter's call threads, on a live connection)."""

import ipaddress
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import libvirt

from ..serial_text import printable

AGENT_CHANNEL = "org.qemu.guest_agent.0"
# libvirt's answers when no agent runs in the guest (or it does not answer)
_NO_AGENT = {
    libvirt.VIR_ERR_AGENT_UNRESPONSIVE,
    libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED,
    libvirt.VIR_ERR_OPERATION_UNSUPPORTED,
    libvirt.VIR_ERR_OPERATION_INVALID,
}
_INFO_TYPES = (
    libvirt.VIR_DOMAIN_GUEST_INFO_OS
    | libvirt.VIR_DOMAIN_GUEST_INFO_HOSTNAME
    | libvirt.VIR_DOMAIN_GUEST_INFO_FILESYSTEM
)
ADDRESSES_MAX = 32
FILESYSTEMS_MAX = 32
DISKS_MAX = 8  # of one file system
AGENT_TIMEOUT = 5  # seconds; below HOST_TIMEOUT, so a silent agent is not a silent host
TEXT_MAX = 255
FREEZE_ATTEMPTS = 5
FREEZE_RETRY_SECONDS = 1.0


@dataclass
class GuestInfo:
    """The guest's own view of itself: its OS, hostname and addresses."""

    os: str
    kernel: str
    hostname: str
    addresses: list[dict] = field(default_factory=list)  # {interface, address, prefix}
    # {mountpoint, type, total, used (bytes, None when not told), disks: [serial]}
    filesystems: list[dict] = field(default_factory=list)


def agent_connected(dom) -> bool:
    """Whether the guest agent's channel is open in the guest (a running agent), from the live
    XML: no call into the guest."""
    return bool(dom.isActive()) and _channel_state(dom) == "connected"


def no_agent(exc: libvirt.libvirtError) -> bool:
    """Whether a libvirt error means the guest has no (answering) agent."""
    return exc.get_error_code() in _NO_AGENT


def _text(value) -> str:
    """A guest's word, printable only and cut short: the guest is not trusted."""
    return printable(str(value or ""))[:TEXT_MAX]


def _addresses(dom) -> list[dict]:
    """The guest's IP addresses by interface, loopback left out; only well-formed ones."""
    found = []
    source = libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT
    for name, iface in (dom.interfaceAddresses(source) or {}).items():
        for entry in iface.get("addrs") or []:
            try:
                address = ipaddress.ip_address(entry.get("addr"))
                prefix = int(entry.get("prefix"))
            except (TypeError, ValueError):
                continue
            if address.is_loopback or getattr(address, "scope_id", None):
                continue  # a scope id is free text from the guest
            found.append({"interface": _text(name), "address": str(address), "prefix": prefix})
            if len(found) >= ADDRESSES_MAX:
                return found
    return found


def _count(value):
    """A byte count the guest gave, or None when it is not one."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def _filesystems(info) -> list[dict]:
    """The guest's mounted file systems from guestInfo's fs.* keys, each with the serials of
    the disks it is on (a volume's serial is its name); guest text made printable."""
    found = []
    for n in range(min(_count(info.get("fs.count")) or 0, FILESYSTEMS_MAX)):
        disks = min(_count(info.get(f"fs.{n}.disk.count")) or 0, DISKS_MAX)
        found.append(
            {
                "mountpoint": _text(info.get(f"fs.{n}.mountpoint")),
                "type": _text(info.get(f"fs.{n}.fstype")),
                "total": _count(info.get(f"fs.{n}.total-bytes")),
                "used": _count(info.get(f"fs.{n}.used-bytes")),
                "disks": [_text(info.get(f"fs.{n}.disk.{d}.serial")) for d in range(disks)],
            }
        )
    return found


def _bound_agent_wait(dom):
    """Make libvirt give up on this guest's agent after AGENT_TIMEOUT: by default it waits
    for ever, and a guest whose agent never answers would hold the host's connection."""
    dom.agentSetResponseTimeout(AGENT_TIMEOUT, 0)


def read_guest_info(dom) -> GuestInfo | None:
    """What the agent says, or None when it does not run or answer."""
    if not agent_connected(dom):
        return None
    try:
        _bound_agent_wait(dom)
        info = dom.guestInfo(_INFO_TYPES, 0)
        addresses = _addresses(dom)
    except libvirt.libvirtError as exc:
        if no_agent(exc):
            return None
        raise
    return GuestInfo(
        os=_text(info.get("os.pretty-name") or info.get("os.name")),
        kernel=_text(info.get("os.kernel-release")),
        hostname=_text(info.get("hostname")),
        addresses=addresses,
        filesystems=_filesystems(info),
    )


def agent_shutdown(dom) -> bool:
    """Ask the guest agent to power the guest off; False when there is no agent to ask."""
    if not agent_connected(dom):
        return False
    try:
        _bound_agent_wait(dom)
        dom.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_GUEST_AGENT)
    except libvirt.libvirtError as exc:
        if no_agent(exc):
            return False
        raise
    return True


def freeze(dom) -> tuple[bool, str]:
    """Ask the guest agent to freeze the guest's file systems (writes flushed, new ones held):
    (True, "") once they are, (False, why not) when no agent answers. Asked even when the
    channel does not say it is connected, and again for a few seconds unless it says it is
    not: a domain that arrived by live migration does not say so at once. An attempt libvirt
    gave up on may still have frozen the guest (the agent answered late), so each is followed
    by a thaw before the next one; the caller thaws after the snapshot whatever this returned
    (qemu-ga's fsfreeze has no timeout of its own)."""
    for attempt in range(FREEZE_ATTEMPTS):
        try:
            _bound_agent_wait(dom)
            dom.fsFreeze(None, 0)
            return True, ""
        except libvirt.libvirtError as exc:
            if not no_agent(exc):
                thaw_quietly(dom)
                raise
            why = exc.get_error_message() or str(exc)
        thaw_quietly(dom)
        if attempt + 1 == FREEZE_ATTEMPTS or _channel_state(dom) == "disconnected":
            return False, why
        time.sleep(FREEZE_RETRY_SECONDS)
    return False, "no answer"


def _channel_state(dom):
    """The agent channel's state in the live XML (connected, disconnected or None)."""
    channel = ET.fromstring(dom.XMLDesc(0)).find(
        f"./devices/channel/target[@name='{AGENT_CHANNEL}']"
    )
    return None if channel is None else channel.get("state")


def thaw(dom) -> None:
    """Ask the guest agent to thaw the file systems freeze() froze."""
    dom.fsThaw(None, 0)


def thaw_quietly(dom) -> bool:
    """Thaw the guest's file systems in case a freeze libvirt gave up on took hold (a guest
    that is not frozen, or has no agent, is left as it is); whether the agent answered."""
    try:
        _bound_agent_wait(dom)
        dom.fsThaw(None, 0)
    except libvirt.libvirtError:
        return False
    return True
