"""What the image.save operation does once a worker runs it: the stopped VM's disk (or one of
its internal snapshots) flattened into a compressed qcow2 in the controller's staging folder,
the guest's identity removed there (app/adapters/image_saver.py says how and why), then
published into images/ as a build's image is. A save that does not succeed leaves nothing in
images/ or staging."""

import contextlib
import os
import shutil

from ..adapters.qcow2_calls import snapshot_tag
from ..adapters.qemu_img import check_upload
from ..adapters.storage import check_image_name, file_sha256
from ..errors import Conflict, NotFound
from ..numbers import GIB
from ..repositories import hosts as hosts_repo
from ..repositories import images as images_repo
from ..repositories import vms as vms_repo
from ..states import STOPPED, vm_state
from .saved_image import (
    check_disk,
    check_name,
    check_room,
    check_snapshot,
    record_saved_image,
)

STEPS = 3
RESULT = ("format", "virtual_size", "actual_size")  # of the image, as image.build's


def save_folder(ctx):
    """This save's own folder in the staging folder (named by the operation, so an undo
    after a dead worker finds it too)."""
    return ctx.storage.staging_dir() / f"image-save-{ctx.id}"


def save_image(ctx):
    """Flatten the VM's disk, remove the guest's identity, publish the image."""
    # checked again at use: a database writer could have put anything in the stored input
    name, snapshot = check_name(ctx.target_id), check_snapshot(ctx.input.get("snapshot"))
    vm = vms_repo.get(ctx.conn, str(ctx.input.get("vm")))
    if vm is None:
        raise NotFound(f"VM {ctx.input.get('vm')} no longer exists")
    vm, host = dict(vm), dict(hosts_repo.get(ctx.conn, vm["host"]))
    state = vm_state(ctx.hypervisor.domain_state(host, vm["id"]))
    if state != STOPPED:
        raise Conflict(f"VM {vm['id']} is {state} on its host: stop it to save it as an image")
    saver = ctx.adapters.image_saver
    saver.check_ready()
    backing = check_disk(ctx.conn, ctx.storage, vm, snapshot)
    check_room(ctx.storage, vm)
    source = f"snapshot {snapshot} of VM {vm['id']}" if snapshot else f"the disk of VM {vm['id']}"
    folder = save_folder(ctx)
    folder.mkdir(mode=0o700)
    out = folder / "image.qcow2"
    ctx.progress(0, STEPS)
    ctx.log(f"saving {source} as image {name}: flattening its backing chain (compressed)")
    ctx.storage.disk_path(vm["id"])  # inside vms/; opened by its own name, never resolved
    disk = ctx.storage.vms_dir / f"{vm['id']}.qcow2"
    tag = snapshot_tag(snapshot) if snapshot else None  # as the files hold it
    max_size = (vm["disk"] or 0) * GIB  # its row's size: what Nube made and grew it to
    saver.flatten(disk, backing, out, tag, log=ctx.log, check=ctx.check, max_size=max_size)
    ctx.progress(1, STEPS)
    ctx.log("removing the guest's identity (SSH host keys, machine-id, cloud-init's state, logs)")
    saver.reset_identity(out, log=ctx.log, check=ctx.check)
    ctx.progress(2, STEPS)
    ctx.check()  # canceled during the last step: nothing may appear in images/
    check_upload(ctx.storage.qemu_img.info(out, "qcow2"))  # the gate an uploaded image passes
    checksum = file_sha256(out)
    ctx.storage.publish_image(out, name)
    ctx.remember("published")
    _remove(ctx, folder)
    record_saved_image(ctx.conn, name, vm, ctx.actor, checksum)
    ctx.progress(3, STEPS)
    info = ctx.storage.image_info(name)
    ctx.log(
        f"image {name} saved: {info.actual_size >> 20} MiB of a {info.virtual_size >> 20} MiB disk"
    )
    return {"image": name} | {key: getattr(info, key) for key in RESULT}


def _remove(ctx, folder):
    """Delete the save's staging folder, saying so in the log."""
    if folder.exists():
        shutil.rmtree(folder)
        ctx.log(f"removed the staging folder {folder}")


def undo_save(ctx, status):
    """A save that did not succeed leaves no staging folder and no image: the folder always
    goes; an image only if this run published it (after a dead worker nobody can say, and a
    published image is whole, so it stays)."""
    try:
        _remove(ctx, save_folder(ctx))
    except OSError as exc:
        ctx.error(f"could not remove the staging folder: {exc}")
    name = ctx.target_id
    if ctx.recalled("published"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(ctx.storage.images_dir / check_image_name(name))  # a link, not its target
        images_repo.delete(ctx.conn, name)
        ctx.log(f"removed image {name}: the operation did not succeed")
