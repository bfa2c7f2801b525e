"""What re-check operations do: ask the hypervisor and record the answer."""

from .. import states
from ..db import now
from ..errors import NubeError
from ..repositories import hosts as hosts_repo
from ..repositories import vms as vms_repo
from ..states import vm_state


def recheck_vm(ctx):
    """Set the VM's state from its domain: running, stopped, or error when the domain is gone."""
    vm = dict(vms_repo.get(ctx.conn, ctx.target_id))
    host = dict(hosts_repo.get(ctx.conn, vm["host"]))
    state = ctx.hypervisor.domain_state(host, vm["id"])
    if state is None:
        ctx.error(f"domain {vm['id']} does not exist on {host['name']}: state error")
        vms_repo.set_state(ctx.conn, vm["id"], "error")
        return
    ctx.log(f"{vm['id']} is {state} on {host['name']} (was recorded {vm['state']})")
    vms_repo.set_state(ctx.conn, vm["id"], vm_state(state))


def recheck_host(ctx):
    """Ask the host's libvirt; a host that answers is ready again, one that does not unreachable."""
    host = dict(hosts_repo.get(ctx.conn, int(ctx.target_id)))
    try:
        info = ctx.hypervisor.host_info(host)
    except NubeError as exc:
        hosts_repo.update(ctx.conn, host["id"], state="unreachable", error=str(exc))
        raise
    ctx.log(f"{host['name']} answers: {info.cpus} CPUs, {info.mem} MiB ({info.free_mem} free)")
    changes = {"cpus": info.cpus, "mem": info.mem, "free_mem": info.free_mem, "last_seen": now()}
    if host["state"] in states.HOST_TROUBLED:
        changes.update(state="ready", error=None)
    hosts_repo.update(ctx.conn, host["id"], **changes)
