"""What volume operations do once a worker runs them: make a volume's file, attach it to a VM
(hot-plugged into a running one), detach it (a running guest must let go), grow it, remove it.

A volume's row says which VM it is attached to and at which target; the VM's definition is
always Nube's rendering of its rows (app/services/definition.py), so attaching and detaching
change the row, then redefine the domain, and a running domain gets the same <disk> element
hot-plugged or unplugged. The undo puts the row and the definition back as they were."""

import functools

from ..db import transaction
from ..domain_xml import VOLUME_TARGETS, render_volume_disk
from ..errors import Conflict, NotFound, OperationFailed
from ..numbers import GIB, disk_gib
from ..repositories import hosts as hosts_repo
from ..repositories import vms as vms_repo
from ..repositories import volumes as volumes_repo
from ..states import AVAILABLE, ERROR, MISSING, RUNNING, vm_state
from .definition import checked_renderer, volume_disk
from .vm_work import heavy_call, wait_until


def _volume(ctx):
    """The operation's volume row, as a dict."""
    row = volumes_repo.get(ctx.conn, ctx.target_id)
    if row is None:
        raise NotFound(f"volume {ctx.target_id} no longer exists")
    return dict(row)


def _vm_and_host(ctx, vm_id):
    """A VM's row and its host's, as dicts."""
    vm = vms_repo.get(ctx.conn, vm_id)
    if vm is None:
        raise NotFound(f"VM {vm_id} no longer exists")
    return dict(vm), dict(hosts_repo.get(ctx.conn, vm["host"]))


def _running(ctx, vm, host):
    """Whether the VM's domain runs now (as its host says)."""
    return vm_state(ctx.hypervisor.domain_state(host, vm["id"])) == RUNNING


def _define(ctx, host, vm_id, render, target, attached):
    """Redefine a VM's domain on its host with Nube's rendering (a slow host's answer is read
    back: whether the definition has the target as it should)."""
    xml = render()
    heavy_call(
        ctx,
        lambda: ctx.hypervisor.define(host, xml),
        lambda: (target in ctx.hypervisor.disk_targets(host, vm_id)) == attached,
        f"{vm_id} is redefined",
    )


# --- create -----------------------------------------------------------------------------


def create_volume(ctx):
    """Make the volume's file in volumes/: empty, or from an image."""
    volume = _volume(ctx)
    source = "empty"
    if volume["image"]:
        source = f"from image {volume['image']} ({ctx.config['DISK_MODE']})"
    ctx.log(f"creating volumes/{volume['name']}.qcow2: {volume['size']} GiB, {source}")
    ctx.storage.create_volume(volume["name"], volume["size"], volume["image"], log=ctx.log)
    ctx.remember("made_file")
    virtual, used = ctx.storage.volume_size(volume["name"])
    ctx.log(f"volume {volume['name']} ready: {virtual / GIB:g} GiB, {used / 2**20:.1f} MiB used")


def undo_create(ctx, status):
    """A volume that failed to be made leaves no file and no row (an interrupted run cannot
    say whether it made the file: the name its row reserved makes it ours)."""
    volume = _volume(ctx)
    if (ctx.recalled("made_file") or status == "interrupted") and ctx.storage.delete_volume(
        volume["name"]
    ):
        ctx.log(f"deleted volumes/{volume['name']}.qcow2")
    with transaction(ctx.conn):
        volumes_repo.delete(ctx.conn, volume["name"])


# --- attach -----------------------------------------------------------------------------


def _free_target(ctx, vm, checked=None):
    """The first target (vdb, vdc...) that neither a volume row nor (when checked) a disk of
    the VM's definition holds."""
    taken = {row["target"] for row in volumes_repo.attached_to(ctx.conn, vm["id"])}
    if checked is not None:
        taken.update(checked.targets)
    for target in VOLUME_TARGETS:
        if target not in taken:
            return target
    raise Conflict(f"VM {vm['id']} has no free disk target left ({len(VOLUME_TARGETS)} volumes)")


def _recheck_plugged(ctx, volume, vm, host):
    """Read the volume's header again once QEMU has it open (as a start does for a VM's
    disks): a host that rewrote it between the check and the open would have QEMU use the
    file it named. Found so, the VM is forced off at once and the attach fails."""
    try:
        ctx.storage.volume_backing(volume["name"], volume["image"])
    except (OperationFailed, NotFound) as error:
        ctx.error(f"{volume['name']}'s header changed while {vm['id']} opened it: forcing it off")
        ctx.hypervisor.force_off(host, vm["id"])
        raise OperationFailed(f"{volume['name']} was not attached: {error}") from None


def attach_volume(ctx):
    """Attach the volume to the VM: hot-plugged into a running one (live and persistent in
    one libvirt call: the element is Nube's, and nothing moves between hosts), or into a
    stopped one's definition, rendered again by Nube."""
    volume = _volume(ctx)
    vm, host = _vm_and_host(ctx, ctx.input["vm"])
    running = _running(ctx, vm, host)
    checked = None
    if not running:
        checked = checked_renderer(ctx, vm, host, False, f"attach {volume['name']} to it")
    target = _free_target(ctx, vm, checked)
    disk = volume_disk(ctx, volume, target)  # the volume's header checked here
    with transaction(ctx.conn):
        volumes_repo.attach(ctx.conn, volume["name"], vm["id"], target)
    ctx.remember("recorded")
    ctx.log(f"attaching {volume['name']} to {vm['id']} as {target} on {host['name']}")
    if running:
        ctx.log(f"{vm['id']} is running: hot-plugging {target}")
        disk_xml = render_volume_disk(disk, ctx.config["DOMAIN_TEMPLATES"])
        heavy_call(
            ctx,
            lambda: ctx.hypervisor.hot_plug(host, vm["id"], disk_xml),
            lambda: target in ctx.hypervisor.disk_targets(host, vm["id"], live=True),
            f"{target} is plugged",
        )
        ctx.remember("plugged")
        _recheck_plugged(ctx, volume, vm, host)
    else:
        _define(ctx, host, vm["id"], lambda: checked.render(add=disk), target, True)
    ctx.log(
        f"{volume['name']} attached to {vm['id']} as {target}: the guest finds it at "
        f"/dev/disk/by-id/virtio-{volume['name']}"
    )


def undo_attach(ctx, status):
    """Put back what an attach changed: unplug what it plugged (the guest must let go), the
    definition without the volume, then the row unattached. When that cannot be made sure
    of, the volume stays attached, in error: never free for another VM while this one's
    domain may still hold it (a detach, once the VM is stopped if need be, frees it)."""
    volume = _volume(ctx)
    if not (ctx.recalled("recorded") or status == "interrupted") or volume["vm"] is None:
        return
    vm, host = _vm_and_host(ctx, volume["vm"])
    target = volume["target"]
    try:
        running = _running(ctx, vm, host)
        if running and target in ctx.hypervisor.disk_targets(host, vm["id"], live=True):
            disk = volume_disk(ctx, volume, target, chain=False)  # names the device only
            ctx.hypervisor.detach_live(
                host, vm["id"], render_volume_disk(disk, ctx.config["DOMAIN_TEMPLATES"])
            )
            ctx.log(f"asked {vm['id']} to release {target} again")
            if not wait_until(
                ctx,
                lambda: target not in ctx.hypervisor.disk_targets(host, vm["id"], live=True),
                ctx.config["DETACH_TIMEOUT"],
            ):
                raise OperationFailed(f"the guest did not release {target}")
        checked = checked_renderer(ctx, vm, host, running, "put its definition back")
        _define(ctx, host, vm["id"], functools.partial(checked.render, drop=volume["name"]),
                target, False)  # fmt: skip
    except Exception as exc:  # noqa: BLE001  whatever it was, the volume is not free
        ctx.error(
            f"could not take {volume['name']} out of {vm['id']} on {host['name']} ({exc}):"
            f" it stays attached, in error; detach it (stop {vm['id']} first if need be)"
        )
        with transaction(ctx.conn):
            volumes_repo.set_state(ctx.conn, volume["name"], ERROR)
        return
    with transaction(ctx.conn):
        volumes_repo.detach(ctx.conn, volume["name"], AVAILABLE)
    ctx.log(f"{volume['name']} is not attached to {vm['id']}: available again")


# --- detach -----------------------------------------------------------------------------


def detach_volume(ctx):
    """Detach the volume from its VM: a running guest is asked to release it first (and must,
    within the DETACH_TIMEOUT setting); then the definition goes without it."""
    volume = _volume(ctx)
    vm, host = _vm_and_host(ctx, volume["vm"])
    running = _running(ctx, vm, host)
    checked = checked_renderer(ctx, vm, host, running, f"detach {volume['name']} from it")
    target = volume["target"]
    if running and target in ctx.hypervisor.disk_targets(host, vm["id"], live=True):
        ctx.log(f"asking {vm['id']} to release {target} ({volume['name']})")
        disk_xml = render_volume_disk(
            checked.volume(volume["name"]), ctx.config["DOMAIN_TEMPLATES"]
        )
        heavy_call(
            ctx,
            lambda: ctx.hypervisor.detach_live(host, vm["id"], disk_xml),
            lambda: True,  # whether the guest let go is read below
            f"{target}'s release is asked for",
        )
        timeout = ctx.config["DETACH_TIMEOUT"]
        released = wait_until(
            ctx,
            lambda: target not in ctx.hypervisor.disk_targets(host, vm["id"], live=True),
            timeout,
        )
        if not released:
            raise OperationFailed(
                f"the guest of {vm['id']} did not release {target} within {timeout:g}s"
                f" (is it mounted and busy?): {volume['name']} stays attached; unmount it in"
                " the guest and detach again, or stop the VM and detach"
            )
        ctx.log(f"{vm['id']} released {target}")
    with transaction(ctx.conn):
        volumes_repo.detach(ctx.conn, volume["name"], AVAILABLE)
    ctx.remember("unrecorded")
    _define(ctx, host, vm["id"], lambda: checked.render(drop=volume["name"]), target, False)
    ctx.log(f"{volume['name']} detached from {vm['id']}")


def undo_detach(ctx, status):
    """A detach that failed after its row said unattached: the definition still names the
    volume, so the row says attached again (never two VMs' definitions holding one volume)."""
    if not (ctx.recalled("unrecorded") or status == "interrupted"):
        return
    vm_id, target = ctx.input.get("vm"), ctx.input.get("target")
    volume = _volume(ctx)
    if volume["vm"] is None and vm_id and vms_repo.get(ctx.conn, vm_id) is not None:
        with transaction(ctx.conn):
            volumes_repo.attach(ctx.conn, volume["name"], vm_id, target)
        ctx.log(f"{volume['name']} stays attached to {vm_id} as {target}")


# --- grow -------------------------------------------------------------------------------


def check_free_space(storage, grow_gib, what):
    """Refuse to grow past what the repository's filesystem has free."""
    free = storage.free_bytes()
    if grow_gib * GIB > free:
        raise Conflict(
            f"{what} cannot grow by {grow_gib} GiB: the repository has {free / GIB:.1f} GiB free"
        )


def grow_disk(ctx, path, size_gib, vm=None, host=None, target=None):
    """Grow a qcow2 file to size_gib: through the running domain that has it open (QEMU
    resizes it and the guest sees it at once), else with qemu-img."""
    if vm is not None and _running(ctx, vm, host):
        ctx.log(f"{vm['id']} is running: growing {target} live to {size_gib} GiB")
        ctx.hypervisor.block_resize(host, vm["id"], target, size_gib * GIB)
    else:
        ctx.storage.grow_file(path, size_gib, log=ctx.log)


def grow_volume(ctx):
    """Grow the volume to its new size (the request recorded it, and refused a shrink)."""
    volume = _volume(ctx)
    size, before = ctx.input["size"], ctx.input["from"]
    check_free_space(ctx.storage, size - before, f"volume {volume['name']}")
    vm = host = None
    if volume["vm"] is not None:
        vm, host = _vm_and_host(ctx, volume["vm"])
    ctx.storage.volume_backing(volume["name"], volume["image"])  # a clear refusal, if altered
    ctx.log(f"growing {volume['name']} from {before} to {size} GiB")
    grow_disk(ctx, ctx.storage.volume_path(volume["name"]), size, vm, host, volume["target"])
    ctx.log(f"{volume['name']} is {size} GiB")


def after_failed_grow(ctx, status):
    """A grow that failed records the size the volume's file really has (it may have grown),
    never less than before: the header is a host's to write, the quota's count is not."""
    volume = _volume(ctx)
    try:
        virtual, _ = ctx.storage.volume_size(volume["name"])
    except (NotFound, OperationFailed) as exc:
        ctx.error(str(exc))
        return
    size = max(ctx.input["from"], disk_gib(virtual))
    with transaction(ctx.conn):
        volumes_repo.set_size(ctx.conn, volume["name"], size)
    ctx.log(f"{volume['name']} stays {size} GiB")


# --- remove -----------------------------------------------------------------------------


def remove_volume(ctx):
    """Delete the volume's file, then forget it (it is attached to no VM: the claim said so)."""
    volume = _volume(ctx)
    if ctx.storage.delete_volume(volume["name"]):
        ctx.log(f"deleted volumes/{volume['name']}.qcow2")
    else:
        ctx.log(f"volumes/{volume['name']}.qcow2 was already gone")
    with transaction(ctx.conn):
        volumes_repo.delete(ctx.conn, volume["name"])


def after_failed_remove(ctx, status):
    """A removal that failed leaves the volume missing when its file is gone, else in error."""
    try:
        volume = _volume(ctx)
    except NotFound:
        return
    state = ERROR if ctx.storage.volume_exists(volume["name"]) else MISSING
    with transaction(ctx.conn):
        volumes_repo.set_state(ctx.conn, volume["name"], state)
