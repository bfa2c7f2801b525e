"""The hypervisor adapter's calls on a running domain's disks: hot-plug and unplug a volume,
grow a disk QEMU has open, and the disk targets a definition names. A mixin of Hypervisor:
each call goes through its _run (timeouts, one retry, mapped errors). A stopped domain's
definition is never edited here: Nube redefines the whole domain from its own rendering."""

import libvirt

from app.domain_devices import disk_targets


class DiskCalls:
    """Disk calls that need Hypervisor._run."""

    def hot_plug(self, host, name, disk_xml: str) -> None:
        """Hot-plug a disk into a running domain, and add the same element to its persistent
        definition (one libvirt call: both or neither)."""
        flags = libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG
        self._run(
            host,
            lambda c: c.lookupByName(name).attachDeviceFlags(disk_xml, flags),
            name,
            heavy="attach",
        )

    def detach_live(self, host, name, disk_xml: str) -> None:
        """Ask a running domain's guest to release a disk (libvirt returns once QEMU sent the
        request; the device is gone only when the guest lets go: see disk_targets)."""
        self._run(
            host,
            lambda c: c.lookupByName(name).detachDeviceFlags(
                disk_xml, libvirt.VIR_DOMAIN_AFFECT_LIVE
            ),
            name,
            heavy="detach",
        )

    def disk_targets(self, host, name, live=False) -> list[str]:
        """The targets (vda, vdb...) of the disks a domain's definition names, or with live
        its running one."""
        flags = 0 if live else libvirt.VIR_DOMAIN_XML_INACTIVE
        return self._run(host, lambda c: disk_targets(c.lookupByName(name).XMLDesc(flags)), name)

    def block_resize(self, host, name, target, size_bytes: int) -> None:
        """Grow a disk a running domain has open (QEMU resizes the file; the guest sees it)."""
        self._run(
            host,
            lambda c: c.lookupByName(name).blockResize(
                target, size_bytes, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES
            ),
            name,
            heavy="resize",
        )
