"""A saved image's checks, on request and again at use (its name, the snapshot, the VM's
disk), and its record: what the image.save request and its work share (no operation imports
here, so the work's module can use them)."""

import os

from ..adapters.qcow2_calls import snapshot_tag
from ..adapters.qemu_img import UPLOAD_EXTENSIONS, check_upload_name
from ..adapters.storage import check_image_name
from ..errors import Conflict, InvalidInput, NotFound, OperationFailed
from ..limits import SNAPSHOT_NAME_MESSAGE, SNAPSHOT_NAME_RE
from ..repositories import images as images_repo
from ..repositories import snapshots as snapshots_repo

# as images.RESERVED_NAMES: /api/v1/images/build is the build action, not an image
RESERVED_NAMES = ("build",)
GIB = 1 << 30


def check_name(name):
    """A saved image's file name: an upload's rules, and an extension a qcow2 may have."""
    check_image_name(name)
    if name in RESERVED_NAMES:
        raise InvalidInput(f"{name} is reserved (the API's images/{name} builds an image)")
    check_upload_name(name)
    extension = "." + name.rsplit(".", 1)[-1].lower()
    if "qcow2" not in UPLOAD_EXTENSIONS[extension]:
        raise InvalidInput(f"a saved image is a qcow2 file: name it .qcow2 or .img, not {name}")
    return name


def check_snapshot(snapshot):
    """A snapshot's name (app/services/snapshots.py's rule), or None for the disk as it is
    now."""
    if snapshot is None or snapshot == "":
        return None
    if not isinstance(snapshot, str) or not SNAPSHOT_NAME_RE.fullmatch(snapshot):
        raise InvalidInput(f"{SNAPSHOT_NAME_MESSAGE}, not {snapshot!r:.50}")
    return snapshot


def check_disk(conn, storage, vm, snapshot):
    """The VM's disk chain ([(path, format)] in the repository) after checking its header
    names only its image (OperationFailed otherwise) and, when asked, that the VM has that
    snapshot ready (NotFound, Conflict) and its disk still holds it (OperationFailed)."""
    backing = storage.disk_backing(vm["id"], vm["image"])
    if snapshot is not None:
        row = snapshots_repo.get(conn, vm["id"], snapshot)
        if row is None:
            raise NotFound(f"VM {vm['id']} has no snapshot {snapshot}")
        if row["state"] != "ready":
            raise Conflict(f"snapshot {snapshot} of VM {vm['id']} is {row['state']}")
        if snapshot_tag(snapshot) not in storage.file_snapshots(storage.disk_path(vm["id"])):
            raise OperationFailed(f"vms/{vm['id']}.qcow2 no longer holds snapshot {snapshot}")
    return [(storage.root / path, fmt) for path, fmt in backing]


def check_room(storage, vm):
    """Refuse a save the repository has no room for: a copy of the VM's disk (made out of the
    hosts' reach first) and the image, which holds at most what the disk and its base image
    hold now (compression only makes it smaller)."""
    disk = os.stat(storage.disk_path(vm["id"])).st_blocks * 512
    need = 2 * disk + os.stat(storage.image_path(vm["image"])).st_blocks * 512
    free = storage.free_bytes()
    if need > free:
        raise Conflict(
            f"no room to save VM {vm['id']}: a copy of its disk and the image need"
            f" {need / GIB:.1f} GiB, the repository has {free / GIB:.1f} GiB free"
        )


def record_saved_image(conn, name, vm, actor, checksum):
    """Record a saved image: who saved it, the image the VM was made from and its OS (when
    its record knows it), and the file's SHA-256."""
    made_from = images_repo.all_records(conn).get(vm["image"])
    images_repo.record(
        conn,
        name,
        uploaded_by=actor,
        source="vm",
        # no VM id: members of every project read image descriptions
        description=f"saved from a VM made from {vm['image']}",
        os=made_from["os"] if made_from else None,
        checksum=checksum,
    )
