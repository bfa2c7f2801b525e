"""What a VM resize does once a worker runs it: grow its disk (live when it runs), and give a
stopped VM its new memory and vCPUs (its definition rendered again). The request already
recorded the new sizes in the VM's row (the quota counts them); a failure records what is
true again."""

import xml.etree.ElementTree as ET

from ..db import transaction
from ..errors import Conflict, NotFound, OperationFailed
from ..numbers import disk_gib
from ..repositories import vms as vms_repo
from ..states import RUNNING, vm_state
from .definition import checked_renderer, disk_chain
from .vm_work import heavy_call, vm_and_host
from .volume_work import check_free_space, grow_disk


def resize_vm(ctx):
    """Grow the VM's disk, then redefine it with its new memory and vCPUs, as asked."""
    vm, host = vm_and_host(ctx)
    changes, before = ctx.input["changes"], ctx.input["before"]
    running = vm_state(ctx.hypervisor.domain_state(host, vm["id"])) == RUNNING
    if running and ({"mem", "vcpus"} & set(changes)):
        raise Conflict(f"VM {vm['id']} is running: stop it to change its memory or vCPUs")
    if "disk" in changes:
        size = changes["disk"]
        check_free_space(ctx.storage, size - (before["disk"] or 0), f"the disk of {vm['id']}")
        disk_chain(ctx, vm)  # a clear refusal, if a host altered its header
        ctx.log(f"growing the disk of {vm['id']} from {before['disk']} to {size} GiB")
        grow_disk(ctx, ctx.storage.disk_path(vm["id"]), size, vm, host, "vda")
    if {"mem", "vcpus"} & set(changes):
        mem, vcpus = vm["mem"], vm["vcpus"]  # the row has the new ones
        ctx.log(f"{vm['id']}: {before['mem']} → {mem} MiB, {before['vcpus']} → {vcpus} vCPUs")
        xml = checked_renderer(ctx, vm, host, False, "resize it").render()
        heavy_call(
            ctx,
            lambda: ctx.hypervisor.define(host, xml),
            lambda: _defined_with(ctx.hypervisor.definition(host, vm["id"]), mem, vcpus),
            f"{vm['id']} is redefined",
        )
    ctx.log(f"{vm['id']} resized")


def _defined_with(xml, mem, vcpus):
    """Whether a domain definition has this memory (MiB) and these vCPUs."""
    domain = ET.fromstring(xml)
    memory = domain.find("memory")
    kib = int(memory.text) * (1024 if memory.get("unit") in ("MiB", "M") else 1)
    return kib == mem * 1024 and int(domain.findtext("vcpu")) == vcpus


def undo_resize(ctx, status):
    """Record what is true after a failed resize: the memory and vCPUs the definition has
    (the old ones unless the redefinition happened), and the disk's real size (never less than
    before: a host writes the header, the quota's count is Nube's)."""
    try:
        vm, host = vm_and_host(ctx)
    except NotFound:
        return
    before = ctx.input["before"]
    mem, vcpus = before["mem"], before["vcpus"]
    try:
        if _defined_with(ctx.hypervisor.definition(host, vm["id"]), vm["mem"], vm["vcpus"]):
            mem, vcpus = vm["mem"], vm["vcpus"]
    except Exception as exc:  # the host did not answer: the old sizes are what Nube gave it
        ctx.error(f"could not read the definition of {vm['id']}: {exc}")
    disk = before["disk"]
    try:
        disk = max(before["disk"] or 0, disk_gib(ctx.storage.disk_size(vm["id"])))
    except (NotFound, OperationFailed) as exc:
        ctx.error(str(exc))
    with transaction(ctx.conn):
        vms_repo.set_resources(ctx.conn, vm["id"], mem, vcpus)
        vms_repo.set_disk_size(ctx.conn, vm["id"], disk)
    ctx.log(f"{vm['id']} has {mem} MiB, {vcpus} vCPUs and a {disk} GiB disk")
