"""What VM operations do once a worker runs them."""

import contextlib
import ipaddress
import time

from .. import cloudinit
from ..adapters.hypervisor import HypervisorError
from ..adapters.qcow2_calls import snapshot_tag
from ..adapters.seed_iso import make_seed_iso
from ..adapters.vm_files import SEED_SUFFIX
from ..db import transaction
from ..domain_xml import domain_type
from ..errors import HostUnreachable, InvalidInput, NotFound, OperationFailed, SlowCall
from ..numbers import GIB
from ..repositories import hosts as hosts_repo
from ..repositories import networks as networks_repo
from ..repositories import snapshots as snapshots_repo
from ..repositories import vms as vms_repo
from ..repositories import volumes as volumes_repo
from ..states import AVAILABLE, vm_state
from . import network_sync
from .definition import check_headers, disk_chain, host_disk_path, pin_chain, render

POLL_SECONDS = 0.5


def vm_and_host(ctx):
    """The operation's VM row and its host row, as dicts."""
    vm = vms_repo.get(ctx.conn, ctx.target_id)
    if vm is None:
        raise NotFound(f"VM {ctx.target_id} no longer exists")
    host = hosts_repo.get(ctx.conn, vm["host"])
    return dict(vm), dict(host)


def _write_seed(ctx, vm, host):
    """Write the VM's cloud-init seed (when it has a first-boot configuration; VMs made before
    seeds existed have none); its path as the host sees it, or None."""
    boot = vms_repo.first_boot(ctx.conn, vm["id"])
    if not boot or boot["hostname"] is None:
        return None
    nics = seed_nics(ctx, vm["id"])
    if host["network"] != "none" and not nics:  # Nube's networks replace the host's NIC
        vm["mac"] = cloudinit.mac_address(vm["uuid"])  # network-config finds the NIC by it
    files = cloudinit.seed_files(
        vm["id"],
        f"nube-{vm['uuid']}",
        boot["hostname"],
        boot["ssh_keys"],
        boot["user_data"],
        vm.get("mac"),
        nics,
    )
    ctx.storage.write_seed(vm["id"], make_seed_iso(files))
    ctx.remember("made_seed")
    keys = len(boot["ssh_keys"])
    ctx.log(
        f"cloud-init seed ready: vms/{vm['id']}{SEED_SUFFIX} (hostname {boot['hostname']}, "
        f"{keys} SSH key{'s' if keys != 1 else ''}, {', '.join(sorted(files))})"
    )
    return host_disk_path(ctx, vm["id"], SEED_SUFFIX)


def seed_nics(ctx, vm_id):
    """The VM's NICs on Nube's networks as its network-config sets them up (static)."""
    return [
        {
            "mac": nic["mac"],
            "ip": nic["ip"],
            "prefix": ipaddress.ip_network(nic["cidr"]).prefixlen,
            "gateway": nic["gateway"],
            "dns": [server for server in (nic["dns"] or "").split(",") if server],
            "mtu": nic["mtu"],
        }
        for nic in networks_repo.nics_of(ctx.conn, vm_id)
    ]


def create_vm(ctx):
    """Make the VM's disk, render its domain XML and define it on its host (and start it,
    when asked: one operation from request to running)."""
    vm, host = vm_and_host(ctx)
    vm["uuid"] = ctx.input["uuid"]
    steps = 4 if ctx.input.get("start") else 3
    ctx.progress(0, steps)
    ctx.log(f"placing {vm['id']} on host {host['name']} ({host['address']})")
    if ctx.hypervisor.domain_state(host, vm["id"]) is not None:
        raise InvalidInput(f"host {host['name']} already has a domain named {vm['id']}")
    path = ctx.storage.create_disk(vm["id"], vm["image"], log=ctx.log)
    ctx.remember("made_disk")
    _grow_new_disk(ctx, vm["id"], path)
    ctx.log(f"disk ready: {path} ({ctx.config['DISK_MODE']} of {vm['image']})")
    ctx.progress(1, steps)
    ctx.check()
    seed = _write_seed(ctx, vm, host)
    ctx.storage.create_console_log(vm["id"])
    virt_type = domain_type(host["kvm"], ctx.config["VIRT_TYPE"])
    xml = render(ctx, vm, host, disk_chain(ctx, vm), seed)
    ctx.progress(2, steps)
    network_sync.sync_host(ctx, host)  # its networks' bridges exist before it plugs in
    ctx.log(f"defining domain {vm['id']} on {host['name']} (type {virt_type})")
    heavy_call(
        ctx,
        lambda: ctx.hypervisor.define(host, xml),
        lambda: ctx.hypervisor.domain_uuid(host, vm["id"]) == vm["uuid"],
        f"{vm['id']} is defined",
    )
    vms_repo.set_state(ctx.conn, vm["id"], "stopped")
    ctx.progress(3, steps)
    if ctx.input.get("start"):
        ctx.check()
        _start(ctx, vm, host)
        ctx.progress(4, steps)


def _grow_new_disk(ctx, vm_id, path):
    """Grow a new disk to the size asked for when it is larger than its image (the request
    refused a smaller one; an older request names none)."""
    asked = ctx.input.get("disk")
    if asked and ctx.storage.disk_size(vm_id) < asked * GIB:
        ctx.log(f"growing the disk of {vm_id} to {asked} GiB")
        ctx.storage.grow_file(path, asked, log=ctx.log)


def undo_create(ctx, status):
    """A VM that failed to be created leaves no domain, no disk and no row, and touches
    nothing it did not make: a domain only if it has this operation's UUID, the disk only if
    this run made it (an interrupted run cannot say; the VM's reserved id makes it ours)."""
    vm, host = vm_and_host(ctx)
    try:
        if ctx.hypervisor.domain_uuid(host, vm["id"]) == ctx.input.get("uuid"):
            # started (and maybe paused), then failed
            if vm_state(ctx.hypervisor.domain_state(host, vm["id"])) == "running":
                _force_off(ctx, host, vm["id"])
            ctx.hypervisor.undefine(host, vm["id"])
            ctx.log(f"undefined the half-made domain {vm['id']}")
    except NotFound:
        pass
    except Exception as exc:  # the host may be gone; the disk and row still go
        ctx.error(f"could not undefine {vm['id']} on {host['name']}: {exc}")
    ours = ctx.recalled("made_disk") or ctx.recalled("made_seed")
    if ours or status == "interrupted":
        for name in ctx.storage.delete_vm_files(vm["id"]):
            ctx.log(f"deleted vms/{name}")
    with transaction(ctx.conn):
        vms_repo.delete(ctx.conn, vm["id"])


def start_vm(ctx):
    """Start the VM's domain."""
    vm, host = vm_and_host(ctx)
    _start(ctx, vm, host)


def _start(ctx, vm, host):
    """Boot the VM's domain and record it running, once its disk's header is checked."""
    check_headers(ctx, vm)  # another host may have rebased an overlay
    if vm_state(ctx.hypervisor.domain_state(host, vm["id"])) != "running":
        pin_chain(ctx, vm, host)  # a defined, inactive domain only (a paused one is active)
    network_sync.sync_host(ctx, host, force=network_sync.on_bridge_network(ctx.conn, vm["id"]))
    ctx.log(f"starting {vm['id']} on {host['name']}")
    try:
        _boot(ctx, vm, host)
    except HypervisorError as error:
        if not network_sync.vm_network_ids(ctx.conn, vm["id"]):
            raise
        # a host that restarted has lost its bridges though Nube applied them: again, once
        ctx.log(f"start failed ({error}): setting up the networks of {host['name']} again")
        network_sync.sync_host(ctx, host, force=True)
        _boot(ctx, vm, host)
    _recheck_header(ctx, vm, host)
    vms_repo.set_state(ctx.conn, vm["id"], "running")


def _boot(ctx, vm, host):
    """Start the domain, waiting for it to run."""
    heavy_call(
        ctx,
        lambda: ctx.hypervisor.start(host, vm["id"]),
        lambda: vm_state(ctx.hypervisor.domain_state(host, vm["id"])) == "running",
        f"{vm['id']} is running",
    )


def _recheck_header(ctx, vm, host):
    """Read the disk's header again once QEMU has it open: libvirt 9 cannot pin an external
    data file, so a host that rewrote the header between the check and the start would have
    QEMU open the file it named. Found so, the VM is forced off at once and the start fails."""
    try:
        check_headers(ctx, vm)
    except (OperationFailed, NotFound) as error:
        ctx.error(f"{vm['id']}'s disk header changed while it started: forcing it off")
        _force_off(ctx, host, vm["id"])
        vms_repo.set_state(ctx.conn, vm["id"], "stopped")
        raise OperationFailed(f"{vm['id']} did not start: {error}") from None


def stop_vm(ctx):
    """Ask the guest to shut down, then force it off after STOP_TIMEOUT (or at once)."""
    vm, host = vm_and_host(ctx)
    if not ctx.input.get("force"):
        timeout = ctx.config["STOP_TIMEOUT"]
        how = _ask_to_shut_down(ctx, host, vm["id"])
        ctx.log(f"asked {vm['id']} to shut down ({how}), waiting up to {timeout:g}s")
        if wait_until(
            ctx, lambda: vm_state(ctx.hypervisor.domain_state(host, vm["id"])) != "running", timeout
        ):
            ctx.log(f"{vm['id']} shut down")
            vms_repo.set_state(ctx.conn, vm["id"], "stopped")
            return
        ctx.log(f"{vm['id']} still running after {timeout:g}s: forcing it off")
    else:
        ctx.log(f"forcing {vm['id']} off")
    _force_off(ctx, host, vm["id"])
    vms_repo.set_state(ctx.conn, vm["id"], "stopped")


def _ask_to_shut_down(ctx, host, name):
    """Ask the guest's agent to shut it down, or else send ACPI power-button; which it was."""
    try:
        if ctx.hypervisor.agent_shutdown(host, name):
            return "through the guest agent"
        ctx.log(f"{name} has no guest agent answering: using ACPI")
    except (HypervisorError, HostUnreachable) as exc:
        ctx.log(f"the guest agent did not take the shutdown ({exc}): using ACPI")
    try:
        ctx.hypervisor.shutdown(host, name)
    except SlowCall as exc:  # the wait that follows reads what really happens
        ctx.log(f"{exc}: waiting for the guest anyway")
    return "ACPI power button"


def _force_off(ctx, host, name):
    """Power a domain off at once (a slow host's answer is checked, not guessed)."""
    heavy_call(
        ctx,
        lambda: ctx.hypervisor.force_off(host, name),
        lambda: vm_state(ctx.hypervisor.domain_state(host, name)) != "running",
        f"{name} is off",
    )


def heavy_call(ctx, call, done, what):
    """Make a heavy libvirt call; when it outlives its limit on a busy host, read the real
    state (for up to CALL_TIMEOUT more) before deciding: what did happen is a success that
    took long, not a failure."""
    try:
        call()
    except SlowCall as exc:
        ctx.log(f"{exc}: reading the real state before deciding")
        if not wait_until(ctx, done, ctx.config["CALL_TIMEOUT"]):
            raise
        ctx.log(f"{what}: the host was slow, the call took long but it happened")


def wait_until(ctx, done, timeout):
    """Poll done() (a cheap call; a silent answer counts as not yet) until it is true or the
    timeout passes; whether it became true."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(HostUnreachable):
            if done():
                return True
        if time.monotonic() >= deadline:
            return False
        ctx.check()
        time.sleep(POLL_SECONDS)


def force_remove_vm(ctx, vm, host, remove_volumes=False, sync_networks=True):
    """Force a VM off, undefine it, delete its disk and its row (used by remove and host
    removal); its volumes are detached and kept, or removed too when asked; the networks
    only it used on its host go (unless the caller removes them all)."""
    ctx.touch("vm", vm["id"])  # a host removal's work on it shows in the VM's history
    state = ctx.hypervisor.domain_state(host, vm["id"])
    if state is None:
        ctx.log(f"domain {vm['id']} is not defined on {host['name']}: nothing to undefine")
    else:
        if vm_state(state) == "running":  # paused too: undefined, it would live on, transient
            ctx.log(f"forcing {vm['id']} off")
            _force_off(ctx, host, vm["id"])
        ctx.log(f"undefining {vm['id']} on {host['name']}")
        with contextlib.suppress(NotFound):
            ctx.hypervisor.undefine(host, vm["id"])
    for name in ctx.storage.delete_vm_files(vm["id"]):
        ctx.log(f"deleted vms/{name}")
    _forget_snapshots(ctx, vm["id"], remove_volumes)
    _release_volumes(ctx, vm["id"], remove_volumes)
    with transaction(ctx.conn):
        vms_repo.delete(ctx.conn, vm["id"])  # its NICs' addresses go with the row
    if sync_networks:
        network_sync.sync_quietly(ctx, host)  # a network its last VM there left goes too


def _forget_snapshots(ctx, vm_id, volumes_removed):
    """Forget a removed VM's snapshots; the volumes it keeps lose theirs too (deleted from
    their files: the domain is gone, so qemu-img does it)."""
    for row in snapshots_repo.of_vm(ctx.conn, vm_id):
        for held in snapshots_repo.volumes_of(ctx.conn, row["id"]):
            path = ctx.storage.volume_path(held["volume"])
            if volumes_removed or not path.is_file():
                continue
            try:
                if snapshot_tag(row["name"]) in ctx.storage.file_snapshots(path):
                    ctx.storage.delete_snapshot(path, row["name"], ctx.log)
                    ctx.log(f"deleted snapshot {row['name']} from kept volume {held['volume']}")
            except (OperationFailed, OSError) as exc:  # a stale tag: the next snapshot drops it
                ctx.error(f"kept volume {held['volume']} still holds snapshot {row['name']}: {exc}")
    with transaction(ctx.conn):
        snapshots_repo.delete_of_vm(ctx.conn, vm_id)


def _release_volumes(ctx, vm_id, remove):
    """The volumes of a VM whose domain is gone: detached and kept, or deleted."""
    for volume in volumes_repo.attached_to(ctx.conn, vm_id):
        name = volume["name"]
        if remove:
            ctx.storage.delete_volume(name)
            with transaction(ctx.conn):
                volumes_repo.delete(ctx.conn, name)
            ctx.log(f"removed volume {name} (volumes/{name}.qcow2) with {vm_id}")
        else:
            with transaction(ctx.conn):
                volumes_repo.detach(ctx.conn, name, AVAILABLE)
            ctx.log(f"detached volume {name} from {vm_id}: it is kept")


def remove_vm(ctx):
    """Force the VM off if needed, undefine it, delete its disk, then forget it."""
    vm, host = vm_and_host(ctx)
    force_remove_vm(ctx, vm, host, remove_volumes=bool(ctx.input.get("volumes")))


def recheck_state(ctx, status):
    """After a failed power action, record the state the hypervisor reports (or unknown)."""
    try:
        vm, host = vm_and_host(ctx)
    except NotFound:
        return
    try:
        state = ctx.hypervisor.domain_state(host, vm["id"])
    except Exception as exc:  # the host did not answer: say so rather than guess
        ctx.error(f"could not read the state of {vm['id']}: {exc}")
        vms_repo.set_state(ctx.conn, vm["id"], "unknown", seen=False)
        return
    if state is None:
        ctx.error(f"domain {vm['id']} is missing on {host['name']}")
        vms_repo.set_state(ctx.conn, vm["id"], "error")
        return
    vms_repo.set_state(ctx.conn, vm["id"], vm_state(state))
