"""The overview page's figures: hosts and VMs by state, cluster totals, recent and failed work."""

from .. import states
from ..ops import kinds
from ..repositories import hosts as hosts_repo
from ..repositories import operations as ops_repo
from ..repositories import vms as vms_repo
from . import access, redaction
from .common import db

# Every state, in the order the page lists them (a state with no rows shows 0).
HOST_STATES = states.HOST.values
VM_STATES = states.VM.values
# Controller work whose failure the operator must see: the repository or export may be broken.
CONTROLLER_KINDS = (kinds.CONTROLLER_INIT.name, kinds.CONTROLLER_DESTROY.name)
WARN_STATUSES = states.OPERATION_WARNING
TROUBLED_HOST_STATES = states.HOST_TROUBLED


def _by_state(counts, states):
    """{state: count} with every known state first, then any unexpected one."""
    ordered = {state: counts.get(state, 0) for state in states}
    ordered.update({state: n for state, n in counts.items() if state not in ordered})
    return ordered


def _latest_failed(conn, kind):
    """The newest operation of a kind when it did not succeed (and nothing newer did), else None."""
    rows, _total = ops_repo.page(conn, f"kind = '{kind}'", 1, 0)
    if rows and rows[0]["status"] in WARN_STATUSES:
        return dict(rows[0])
    return None


def _totals(hosts, vm_counts):
    """The cluster's totals over the hosts the viewer sees, and the VMs they count."""
    mem = sum(h["mem"] or 0 for h in hosts)
    mem_allocated = sum(h["mem_allocated"] or 0 for h in hosts)
    return {
        "hosts": len(hosts),
        "vms": sum(vm_counts.values()),
        "cpus": sum(h["cpus"] or 0 for h in hosts),
        "vcpus_allocated": sum(h["vcpus_allocated"] or 0 for h in hosts),
        "mem": mem,
        "mem_allocated": mem_allocated,
        "mem_percent": round(100 * mem_allocated / mem) if mem else 0,
    }


def summary(recent=10):
    """Everything the overview page shows, read from the database only."""
    conn = db()
    viewer = access.current()
    shown = redaction.for_viewer()
    cluster = viewer.may("hosts")  # a member sees their projects' VMs, nothing of the hosts
    hosts = hosts_repo.search(conn) if cluster else []
    host_counts = hosts_repo.state_counts(conn) if cluster else {}
    vm_counts = vms_repo.state_counts(conn, viewer.project_ids)
    warnings = [op for kind in CONTROLLER_KINDS if cluster and (op := _latest_failed(conn, kind))]
    troubled = [
        {"id": h["id"], "name": h["name"], "state": h["state"], "error": h["error"]}
        for h in hosts
        if h["state"] in TROUBLED_HOST_STATES
    ]
    return {
        "hosts_by_state": _by_state(host_counts, HOST_STATES),
        "vms_by_state": _by_state(vm_counts, VM_STATES),
        "totals": _totals(hosts, vm_counts),
        "recent_operations": [
            shown.operation(r) for r in ops_repo.recent(conn, recent, viewer.project_ids)
        ],
        "failed_controller_operations": warnings,
        "troubled_hosts": troubled,
    }
