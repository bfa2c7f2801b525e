"""Claiming a host together with its VMs (a removal), and giving them back: all or nothing."""

from ..errors import Busy
from ..repositories import hosts as hosts_repo
from ..repositories import vms as vms_repo
from .common import busy_message


def claim_host(conn, host, task, op_id):
    """Take a host's task for one operation (compare-and-swap); Busy names who holds it."""
    if not hosts_repo.claim_task(conn, host["id"], task, op_id):
        current = hosts_repo.get(conn, host["id"])
        raise Busy(
            busy_message("host", host["name"], current["task"], current["task_op"]),
            current["task_op"],
        )


def claim_vm(conn, vm_id, task, op_id):
    """Take a VM's task for one operation (compare-and-swap); Busy names who holds it."""
    if not vms_repo.claim_task(conn, vm_id, task, op_id):
        current = vms_repo.get(conn, vm_id)
        raise Busy(
            busy_message("VM", vm_id, current["task"], current["task_op"]), current["task_op"]
        )


def claim_host_and_vms(conn, host, op_id, task="removing"):
    """Take the tasks of a host and every VM on it for one operation, inside the caller's
    transaction (so a Busy rolls every claim back); the host's state becomes the task."""
    claim_host(conn, host, task, op_id)
    for vm in vms_repo.on_host(conn, host["id"]):
        if not vms_repo.claim_task(conn, vm["id"], task, op_id):
            raise Busy(busy_message("VM", vm["id"], vm["task"], vm["task_op"]), vm["task_op"])
    hosts_repo.update(conn, host["id"], state=task)


def release_host_and_vms(conn, host_id, op_id, error):
    """Give back a host (in error, with the reason) and its VMs after a failed removal."""
    for vm in vms_repo.on_host(conn, host_id):
        vms_repo.clear_task(conn, vm["id"], op_id)
    hosts_repo.clear_task(conn, host_id, op_id)
    hosts_repo.update(conn, host_id, state="error", error=error)
