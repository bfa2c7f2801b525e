"""Saving a stopped VM as an image, as callers see it: the name checked as an upload's is, the
VM stopped and its disk one Nube can vouch for, then one image.save operation on the VM
(app/services/image_save_work.py does the work)."""

import os

from ..db import transaction
from ..errors import Conflict, OperationFailed
from ..extensions import adapters
from ..ops import claims, kinds
from ..ops.launch import launch
from ..ops.request import record
from ..states import RUNNING
from . import access, vms
from .common import db
from .saved_image import check_disk, check_name, check_snapshot


def request_save(vm_id, name, snapshot, actor):
    """Check a save and write its pending operation (the VM's claim: stopped, no task);
    returns the operation id. Refusals change nothing."""
    row = vms.get(vm_id)  # another project's VM is not found, before the role is refused
    access.require("images.manage")
    name = check_name(name)
    snapshot = check_snapshot(snapshot)
    if row["state"] == RUNNING:
        raise Conflict(
            f"VM {row['id']} is running: stop it first (a running guest writes the disk"
            " while it would be copied)"
        )
    claims.check(kinds.IMAGE_SAVE, row)
    storage = adapters().storage
    storage.image_path(name)  # inside images/
    if os.path.lexists(storage.images_dir / name):
        raise Conflict(f"image {name} already exists")
    try:
        check_disk(storage, dict(row), snapshot)
    except OperationFailed as exc:
        raise Conflict(f"cannot save VM {row['id']}: {exc}") from None
    conn = db()
    with transaction(conn):
        return record(conn, kinds.IMAGE_SAVE, row, actor, {"name": name, "snapshot": snapshot})


def save(vm_id, name, snapshot, actor, wait):
    """Save a stopped VM's disk (or one of its snapshots) as images/NAME, flattened,
    compressed and without the guest's identity (operation image.save); returns its id."""
    return launch(request_save(vm_id, name, snapshot, actor), wait)
