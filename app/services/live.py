"""What the dashboard's live polling reads: a few columns of the rows a page shows.

Each answer is small on purpose: pages poll every few seconds, so these read only the columns
that change (state, task, capacity, freshness), by primary key, with `?` placeholders.
"""

from ..adapters.storage import check_vm_id
from ..db import now
from ..errors import InvalidInput
from ..numbers import parse_id
from ..repositories import hosts as hosts_repo
from ..repositories import operations as ops_repo
from ..repositories import vms as vms_repo
from . import overview as overview_service
from .common import db

MAX_IDS = 200  # ids one poll may ask about
ACTIVE_STATUSES = ("pending", "running")
OPERATION_KEYS = ("id", "kind", "status", "progress_done", "progress_total", "target_name")
VM_KEYS = ("state", "task", "task_op", "last_seen")
HOST_KEYS = (
    "state",
    "task",
    "task_op",
    "cpus",
    "mem",
    "mem_allocated",
    "vcpus_allocated",
    "free_mem",
    "vm_count",
    "last_seen",
)
ACTIVE_LIMIT = 20  # in-progress operations the overview follows at most


def parse_ids(text, integers=False):
    """Ids from a comma-separated query argument, deduplicated, in order; InvalidInput when bad."""
    ids = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        if integers:
            if parse_id(part) is None:
                raise InvalidInput(f"not a host id: {part[:40]!r}")
            part = parse_id(part)
        else:
            check_vm_id(part)
        if part not in ids:
            ids.append(part)
        if len(ids) > MAX_IDS:
            raise InvalidInput(f"at most {MAX_IDS} ids per request")
    return ids


def vms(ids):
    """{id: {state, task, task_op, last_seen}} for the VMs that exist among ids."""
    rows = vms_repo.live_states(db(), ids) if ids else []
    return {row["id"]: {key: row[key] for key in VM_KEYS} for row in rows}


def hosts(ids):
    """{id: {state, task, cpus, mem, mem_allocated, vcpus_allocated, free_mem, vm_count,
    last_seen}} for the hosts that exist among ids (keys are strings, as JSON has them)."""
    rows = hosts_repo.live_states(db(), ids) if ids else []
    return {str(row["id"]): {key: row[key] for key in HOST_KEYS} for row in rows}


def _operation(row):
    """The few fields of an operation the overview follows."""
    return {key: row[key] for key in OPERATION_KEYS}


def overview(recent=10):
    """Counts by state, cluster totals, and the recent plus in-progress operations, newest first."""
    summary = overview_service.summary(recent)
    operations = {op["id"]: _operation(op) for op in summary["recent_operations"]}
    status_filter = "status IN ({})".format(", ".join(f"'{s}'" for s in ACTIVE_STATUSES))
    active, _total = ops_repo.page(db(), status_filter, ACTIVE_LIMIT, 0)
    operations.update((row["id"], _operation(row)) for row in active)
    totals = summary["totals"]
    return {
        "hosts_by_state": summary["hosts_by_state"],
        "vms_by_state": summary["vms_by_state"],
        "totals": {
            key: totals[key]
            for key in ("hosts", "vms", "cpus", "vcpus_allocated", "mem", "mem_allocated")
        },
        "operations": [operations[key] for key in sorted(operations, reverse=True)],
    }


def stamp():
    """The server's time for an answer."""
    return now()
