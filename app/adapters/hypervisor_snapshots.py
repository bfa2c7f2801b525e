"""The hypervisor adapter's snapshot calls on a running domain: take an internal snapshot of
some of its disks at one instant (the guest's file systems frozen by its agent meanwhile, when
it has one) and delete one. A mixin of Hypervisor: each call goes through its _run.

libvirt 9.0 takes an internal snapshot of a running domain only with its memory (QEMU's
savevm: the whole guest RAM written into the first disk, the guest paused meanwhile), and
reverts or deletes one only through its own snapshot metadata, which stays on the host that
took it and keeps the domain from migrating at all ("cannot migrate domain with 1 snapshots").
QEMU itself takes a disk-only internal
snapshot of several disks atomically (a `transaction` of blockdev-snapshot-internal-sync) and
deletes one live (blockdev-snapshot-delete-internal-sync); libvirt passes those to QEMU's
monitor unchanged. They change no block node, so libvirt's view of the domain stays true."""

import json
import xml.etree.ElementTree as ET

import libvirt_qemu

from app.adapters import guest_agent
from app.errors import OperationFailed


def _format_nodes(dom, targets) -> dict:
    """{target: the QEMU block node of its top image} for the running domain's disks among
    targets (libvirt names them libvirt-<source index>-format)."""
    nodes = {}
    for disk in ET.fromstring(dom.XMLDesc(0)).findall("devices/disk"):
        target, source = disk.find("target"), disk.find("source")
        if target is None or source is None or target.get("dev") not in targets:
            continue
        index = source.get("index")
        if index and index.isdigit():
            nodes[target.get("dev")] = f"libvirt-{index}-format"
    missing = [target for target in targets if target not in nodes]
    if missing:
        raise OperationFailed(f"the running domain has no disk {', '.join(missing)}")
    return nodes


def _monitor(dom, command, arguments):
    """Send one QMP command to the domain's QEMU; its answer, or OperationFailed with QEMU's
    own words."""
    sent = json.dumps({"execute": command, "arguments": arguments})
    answer = json.loads(libvirt_qemu.qemuMonitorCommand(dom, sent, 0))
    if "error" in answer:
        raise OperationFailed(f"QEMU refused {command}: {answer['error'].get('desc', answer)}")
    return answer.get("return")


def _snapshot(dom, tag, targets, freeze) -> tuple[bool, str]:
    """Take the internal snapshot tag of targets at one instant: (whether the guest's file
    systems were frozen for it, why not)."""
    nodes = _format_nodes(dom, targets)
    actions = [
        {"type": "blockdev-snapshot-internal-sync", "data": {"device": nodes[t], "name": tag}}
        for t in targets
    ]
    frozen, why = guest_agent.freeze(dom) if freeze else (False, "not asked")
    try:
        _monitor(dom, "transaction", {"actions": actions})
    finally:
        if frozen:
            guest_agent.thaw(dom)
        elif freeze:  # a late answer may have frozen it after all: never leave it so
            guest_agent.thaw_quietly(dom)
    return frozen, why


class SnapshotCalls:
    """Snapshot calls that need Hypervisor._run."""

    def snapshot_live(self, host, name, tag, targets, freeze=True) -> tuple[bool, str]:
        """Take the internal snapshot tag of a running domain's disks (targets) together:
        (whether its guest agent froze the file systems for it, why not)."""
        return self._run(
            host,
            lambda c: _snapshot(c.lookupByName(name), tag, targets, freeze),
            name,
            heavy="snapshot",
        )

    def delete_snapshot_live(self, host, name, tag, targets) -> list[str]:
        """Delete the internal snapshot tag from a running domain's disks (targets); the
        targets that had none."""

        def delete(conn):
            dom = conn.lookupByName(name)
            nodes, absent = _format_nodes(dom, targets), []
            for target in targets:
                try:
                    _monitor(
                        dom,
                        "blockdev-snapshot-delete-internal-sync",
                        {"device": nodes[target], "name": tag},
                    )
                except OperationFailed as exc:
                    if "does not exist" not in str(exc):
                        raise
                    absent.append(target)
            return absent

        return self._run(host, delete, name, heavy="snapshot delete")
