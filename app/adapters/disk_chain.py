"""What a VM disk's or a volume's qcow2 header must say about its backing chain.

Hosts write VM disks (QEMU must), so they can rewrite a header (`qemu-img rebase -u -b
/any/file`). Nube names the chain in the domain XML, and refuses a disk whose header names
anything but the base image the VM's row records (an overlay) or nothing (a full copy)."""

from app.errors import OperationFailed


def backing_of(info: dict, disk: str, image: str, base_format) -> list[tuple[str, str]]:
    """The chain a disk's header (qemu-img info of the disk alone) names, relative to the
    repository: [("images/<image>", format)] for an overlay on the image its row records, []
    for a full copy; OperationFailed for anything else. disk: the file as the repository
    names it (vms/<id>.qcow2, volumes/<name>.qcow2: both beside images/); base_format: the
    image's own format (called only when the header names a backing file)."""
    if info.get("format") != "qcow2":
        raise OperationFailed(f"disk {disk} is not a qcow2 image: refusing to use it")
    if ((info.get("format-specific") or {}).get("data") or {}).get("data-file"):
        raise OperationFailed(
            f"disk {disk} names an external data file: its header was altered, refusing to use it"
        )
    backing = info.get("backing-filename")
    if backing is None:
        return []
    expected = f"../images/{image}"
    if image is None or backing != expected:
        raise OperationFailed(
            f"disk {disk} names backing file {backing!r:.200} instead of {expected}: its header"
            " was altered (qemu-img rebase?), refusing to use it"
        )
    fmt = base_format()
    found = info.get("backing-filename-format")
    if found != fmt:
        raise OperationFailed(
            f"disk {disk} names backing format {found!r:.40} instead of {fmt} for {expected}:"
            " its header was altered, refusing to use it"
        )
    return [(f"images/{image}", fmt)]
