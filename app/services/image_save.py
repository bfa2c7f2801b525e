"""Saving a stopped VM as an image, as callers see it: the name checked as an upload's is, the
VM stopped and its disk one Nube can vouch for, then one image.save operation on the VM
(app/services/image_save_work.py does the work)."""

import os

from ..db import transaction
from ..errors import Conflict, OperationFailed
from ..extensions import adapters
from ..ops import claims, kinds
from ..ops.claims import Target
from ..ops.launch import launch
from ..ops.request import record
from ..repositories import operations as ops_repo
from ..states import RUNNING
from . import access, vms
from .common import db
from .saved_image import check_disk, check_name, check_room, check_snapshot


def request_save(vm_id, name, snapshot, actor):
    """Check a save and write its pending operation (on the image's name, one at a time, and
    the VM's claim: stopped, no task); returns the operation id. Refusals change nothing."""
    row = vms.get(vm_id)  # another project's VM is not found, before the role is refused
    access.require("images.manage")
    name = check_name(name)
    snapshot = check_snapshot(snapshot)
    if row["state"] == RUNNING:
        raise Conflict(
            f"VM {row['id']} is running: stop it first (a running guest writes the disk"
            " while it would be copied)"
        )
    kind = kinds.IMAGE_SAVE
    refused = claims.refusal(kind.claim.each, kind.name, row["id"], row)
    if refused is not None:  # a fast, clear answer; the compare-and-swap below decides
        raise refused
    storage = adapters().storage
    storage.image_path(name)  # inside images/
    if os.path.lexists(storage.images_dir / name):
        raise Conflict(f"image {name} already exists")
    try:
        check_disk(db(), storage, dict(row), snapshot)
    except OperationFailed as exc:
        raise Conflict(f"cannot save VM {row['id']}: {exc}") from None
    check_room(storage, row)
    conn = db()
    with transaction(conn):  # the image's name and the VM: both taken, or nothing written
        data = {"vm": row["id"], "name": name, "snapshot": snapshot}
        op_id = record(conn, kind, name, actor, data)
        claims.take(conn, kind.claim.each, Target("vm", row["id"], row["id"]), op_id, kind.name)
        ops_repo.touch(conn, op_id, "vm", row["id"])  # the VM's page lists it
        return op_id


def save(vm_id, name, snapshot, actor, wait):
    """Save a stopped VM's disk (or one of its snapshots) as images/NAME, flattened,
    compressed and without the guest's identity (operation image.save); returns its id."""
    return launch(request_save(vm_id, name, snapshot, actor), wait)
