"""What a VM migration does once a worker runs it: the domain moves, the disk stays (the
repository is shared), and the VM's host changes only once the move happened."""

from concurrent.futures import ThreadPoolExecutor

from ..db import connect, transaction
from ..errors import InvalidInput, NotFound, NubeError
from ..ops.claims import Target, take_each
from ..placement import choose_host
from ..repositories import hosts as hosts_repo
from ..repositories import vms as vms_repo
from ..states import vm_state
from . import definition, network_sync
from .vm_work import vm_and_host


def _destination(ctx):
    """The destination host row, as a dict."""
    row = hosts_repo.get(ctx.conn, ctx.input["to"])
    if row is None:
        raise NotFound(f"host {ctx.input.get('to_name')} no longer exists")
    return dict(row)


def migrate_vm(ctx):
    """Move the operation's VM to the host it names."""
    vm, src = vm_and_host(ctx)
    move_vm(ctx, vm, src, _destination(ctx))


def move_vm(ctx, vm, src, dst):
    """Move a running VM live (its guest keeps running), or a stopped VM's definition, and
    record it on dst."""
    state = ctx.hypervisor.domain_state(src, vm["id"])
    if state is None:
        raise NotFound(f"domain {vm['id']} is not defined on {src['name']}: nothing to move")
    if ctx.hypervisor.domain_state(dst, vm["id"]) is not None:
        raise InvalidInput(f"host {dst['name']} already has a domain named {vm['id']}")
    running = vm_state(state) == "running"  # paused too: its guest moves live, paused
    xml = definition.for_move(ctx, vm, src, dst, running=running)
    # the VM's networks, and its ports, exist on dst before its NICs arrive there: the row
    # names dst, so a sync of dst by any other operation meanwhile keeps them
    with transaction(ctx.conn):
        vms_repo.set_moving_to(ctx.conn, vm["id"], dst["id"])
    network_sync.sync_host(ctx, dst, force=network_sync.on_bridge_network(ctx.conn, vm["id"]))
    if running:
        # a bind-mounted repository is not a file system libvirt knows to be shared
        unsafe = "bind" in (src["share"], dst["share"])
        ctx.log(
            f"migrating {vm['id']} live from {src['name']} to {dst['name']}"
            f"{' (bind-mounted repository: VIR_MIGRATE_UNSAFE)' if unsafe else ''}"
        )
        ctx.adapters.migrator.live(
            src,
            dst,
            vm["id"],
            xml,
            unsafe=unsafe,
            report=lambda progress: ctx.log(progress.describe()),
            should_stop=ctx.should_stop,
            timeout=max(1.0, ctx.deadline_left()),
            bandwidth=ctx.config["MIGRATION_BANDWIDTH"],
        )
        definition.check_arrival(ctx, vm, dst, xml)
    else:
        ctx.log(f"moving the definition of stopped {vm['id']} from {src['name']} to {dst['name']}")
        ctx.adapters.migrator.offline(src, dst, vm["id"], xml)
    _record_move(ctx, vm, dst)
    network_sync.sync_quietly(ctx, src)  # what only this VM used there goes


def _record_move(ctx, vm, dst):
    """Point the VM at its new host, with the state that host reports."""
    state = ctx.hypervisor.domain_state(dst, vm["id"])
    with transaction(ctx.conn):
        vms_repo.set_host(ctx.conn, vm["id"], dst["id"])
        vms_repo.set_state(ctx.conn, vm["id"], vm_state(state))
    ctx.log(f"{vm['id']} is on {dst['name']} now ({state})")


def find_after_failed_migration(ctx, status):
    """After a failed or canceled migration, record where the VM really is: a move that
    finished after all counts; otherwise it stays on its source, in the state seen there."""
    try:
        vm, src = vm_and_host(ctx)
        dst = _destination(ctx)
    except NotFound:
        with transaction(ctx.conn):  # its VM, or its destination, is gone
            vms_repo.set_moving_to(ctx.conn, ctx.target_id, None)
        return
    locate(ctx, vm, src, dst)


def locate(ctx, vm, src, dst):
    """Record where a VM whose move from src to dst did not succeed really is."""
    try:
        on_src = ctx.hypervisor.domain_state(src, vm["id"])
        on_dst = ctx.hypervisor.domain_state(dst, vm["id"])
    except Exception as exc:  # a host did not answer: say so rather than guess
        ctx.error(f"could not find where {vm['id']} is: {exc}")
        vms_repo.set_state(ctx.conn, vm["id"], "unknown", seen=False)
        return
    if on_src is None and on_dst is not None:
        _record_move(ctx, vm, dst)
        network_sync.sync_quietly(ctx, src, cancellable=False)  # after a cancel, too
        return
    with transaction(ctx.conn):
        vms_repo.set_moving_to(ctx.conn, vm["id"], None)
        vms_repo.set_state(ctx.conn, vm["id"], vm_state(on_src))
    ctx.log(f"{vm['id']} stays on {src['name']} ({on_src or 'missing'})")
    network_sync.sync_quietly(ctx, dst, cancellable=False)  # its ports there go


def drain_host(ctx):
    """Move every VM off the host, each where placement puts it (running ones live): what
    fits nowhere, or fails to move, stays and is listed with the reason."""
    host = dict(hosts_repo.get(ctx.conn, int(ctx.target_id)))
    return drain(ctx, host)


def drain(ctx, host):
    """Empty a host, DRAIN_PARALLEL VMs at a time; {"moved": [ids], "stayed": [{"id",
    "reason"}]}. Each VM is taken as its move begins when the kind's claim says so (a drain's
    does; a removal holds them all already)."""
    claim = ctx.claim is not None and ctx.claim.each is not None
    vms = [dict(v) for v in vms_repo.on_host(ctx.conn, host["id"])]
    for vm in vms:  # each VM's history shows the drain, whether it moved or stayed
        ctx.touch("vm", vm["id"])
    ctx.log(f"draining {host['name']}: {len(vms)} VM(s) to move")
    plan, stayed = _plan(ctx, vms, host)
    moved = []
    workers = max(1, min(ctx.config["DRAIN_PARALLEL"], len(plan) or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        moves = pool.map(lambda item: (item[0], _move_one(ctx, host, *item, claim)), plan)
        for done, (vm, error) in enumerate(moves, start=1):
            if error:
                ctx.error(f"{vm['id']} stays on {host['name']}: {error}")
                stayed.append({"id": vm["id"], "reason": error})
            else:
                moved.append(vm["id"])
            ctx.progress(done, len(plan))
    ctx.check()  # canceled: the moves under way finished or were aborted; say so as such
    ctx.log(f"drained {host['name']}: {len(moved)} moved, {len(stayed)} stayed")
    return {"moved": moved, "stayed": stayed}


def _plan(ctx, vms, host):
    """Where each VM goes, decided one after another before any moves (so parallel moves
    never overbook a host): [(vm, destination)], and the VMs that fit nowhere."""
    others = [dict(h) for h in hosts_repo.search(ctx.conn) if h["id"] != host["id"]]
    plan, stayed = [], []
    for vm in vms:
        try:
            if not others:
                raise InvalidInput("there is no other host")
            dst = choose_host(
                others,
                vm["mem"],
                vcpus=vm["vcpus"],
                policy=ctx.config["PLACEMENT"],
                overcommit=ctx.config["MEM_OVERCOMMIT"],
                cpu_overcommit=ctx.config["CPU_OVERCOMMIT"],
            )
        except NubeError as exc:
            ctx.error(f"{vm['id']} stays on {host['name']}: {exc}")
            stayed.append({"id": vm["id"], "reason": str(exc)})
            continue
        dst["mem_allocated"] = (dst.get("mem_allocated") or 0) + vm["mem"]
        dst["vm_count"] = (dst.get("vm_count") or 0) + 1
        dst["vcpus_allocated"] = (dst.get("vcpus_allocated") or 0) + vm["vcpus"]
        plan.append((vm, dst))
    return plan, stayed


def _move_one(ctx, host, vm, dst, claim):
    """Move one VM in a pool thread (its own connection); the reason it stayed, or None."""
    conn = connect(ctx.config["DATABASE"])
    mine = ctx.with_connection(conn)
    try:
        mine.check()
        if claim:
            take_each(mine, conn, Target("vm", vm["id"], vm["id"]))  # Busy: it stays, saying why
        try:
            move_vm(mine, vm, host, dst)
            return None
        except NubeError as exc:
            locate(mine, vm, host, dst)  # a move may have happened after all
            return str(exc)
        finally:
            if claim:
                vms_repo.clear_task(conn, vm["id"], ctx.id)
    except NubeError as exc:  # canceled before this one began, or busy with another operation
        return str(exc)
    finally:
        conn.close()


def end_drain(ctx, status):
    """A drain that did not finish leaves its host in maintenance; its VMs are where they
    are recorded (each move recorded as it finished)."""
    ctx.log(f"drain {status}: the host stays in maintenance")
