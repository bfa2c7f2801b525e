"""What the dashboard's live polling reads: a few columns of the rows a page shows.

Each answer is small on purpose: pages poll every few seconds, so these read only the columns
that change (state, task, capacity, freshness), by primary key, with `?` placeholders. A record
carries those fields under the /api/v1 objects' names and in their forms (a VM's, a host's, an
operation's, the last through operation_view.public), plus what only the page needs: `display`
(each formatted field as the page shows it) and `bars` (usage bars).
"""

from .. import formats, states
from ..adapters.storage import check_vm_id
from ..db import now
from ..errors import InvalidInput
from ..numbers import parse_id
from ..repositories import hosts as hosts_repo
from ..repositories import operations as ops_repo
from ..repositories import vms as vms_repo
from ..repositories import volumes as volumes_repo
from . import access, charts, operation_view, redaction
from . import overview as overview_service
from .common import db

MAX_IDS = 200  # ids one poll may ask about
ACTIVE_STATUSES = states.OPERATION_ACTIVE
OPERATION_KEYS = (
    "id",
    "kind",
    "status",
    "progress_done",
    "progress_total",
    "progress",
    "target_name",
    "target_type",
    "requested_by",
)
VM_KEYS = ("state", "task", "task_op", "last_seen")
VOLUME_KEYS = ("state", "task", "task_op", "size")
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
SINCE_LIMIT = 50  # operations started since the page loaded that one answer carries at most


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


# How each polled field reads on the page (the same functions as the template filters), and
# the usage bars a record carries: used field -> (total field, format). The page's script
# only copies this text and these numbers into place.
FIELD_FORMATS = {
    "mem": formats.mib,
    "free_mem": formats.mib,
    "mem_allocated": formats.mib,
    "last_seen": formats.when,
    "size": formats.gib,
}
BARS = {"mem_allocated": ("mem", formats.mib), "vcpus_allocated": ("cpus", formats.plain)}


def displayed(record):
    """A polled record with `display` (each formatted field as the page shows it; the others
    read as they are) and `bars` (each usage bar's percent, width, colour and the text of its
    used and total amounts)."""
    record["display"] = {
        key: fmt(record[key]) for key, fmt in FIELD_FORMATS.items() if key in record
    }
    record["bars"] = {}
    for used_key, (total_key, fmt) in BARS.items():
        if used_key in record and total_key in record:
            bar = charts.usage(record[used_key], record[total_key])
            bar.update(used_text=fmt(bar["used"]), total_text=fmt(bar["total"]))
            record["bars"][used_key] = bar
    return record


def vms(ids):
    """{id: {state, task, task_op, last_seen, display, bars}} for the VMs that exist among ids."""
    rows = vms_repo.live_states(db(), ids, access.visible_projects()) if ids else []
    return {row["id"]: displayed({key: row[key] for key in VM_KEYS}) for row in rows}


def volumes(names):
    """{name: {state, task, task_op, size, display, bars}} for the volumes that exist among
    names (a volume name is a VM id's shape, so parse_ids reads them)."""
    rows = volumes_repo.live_states(db(), names, access.visible_projects()) if names else []
    return {row["id"]: displayed({key: row[key] for key in VOLUME_KEYS}) for row in rows}


def hosts(ids):
    """{id: {state, task, cpus, mem, mem_allocated, vcpus_allocated, free_mem, vm_count,
    last_seen, display, bars}} for the hosts that exist among ids (keys are strings, as JSON has
    them)."""
    rows = hosts_repo.live_states(db(), ids) if ids and access.current().may("hosts") else []
    return {str(row["id"]): displayed({key: row[key] for key in HOST_KEYS}) for row in rows}


def _operation(row):
    """The few fields of an operation the overview follows, as the API shows them (its progress
    among them), with the text a new row of the overview's table reads as the server's rows do."""
    op = operation_view.public(row)
    record = {key: op[key] for key in OPERATION_KEYS}
    record["display"] = {
        "requested_by": op["requested_by"] or "-",
        "created_at": formats.when(op["created_at"]),
        "duration": formats.duration(op["started_at"], op["finished_at"]),
    }
    return record


def overview(recent=10, since=None):
    """Counts by state, cluster totals, and the recent plus in-progress operations, newest
    first; with since (the newest operation id a page saw when it loaded), every operation
    started after it too, ended or not (at most SINCE_LIMIT)."""
    summary = overview_service.summary(recent)
    operations = {op["id"]: _operation(op) for op in summary["recent_operations"]}
    status_filter = "status IN ({})".format(", ".join(f"'{s}'" for s in ACTIVE_STATUSES))
    visible, shown = access.visible_projects(), redaction.for_viewer()
    active, _total = ops_repo.page(db(), status_filter, ACTIVE_LIMIT, 0, visible)
    operations.update((row["id"], _operation(shown.operation(row))) for row in active)
    if since is not None:
        newer = ops_repo.after(db(), since, SINCE_LIMIT, visible)
        operations.update((row["id"], _operation(shown.operation(row))) for row in newer)
    totals = summary["totals"]
    return {
        "hosts_by_state": summary["hosts_by_state"],
        "vms_by_state": summary["vms_by_state"],
        "totals": displayed(
            {
                key: totals[key]
                for key in ("hosts", "vms", "cpus", "vcpus_allocated", "mem", "mem_allocated")
            }
        ),
        "operations": [operations[key] for key in sorted(operations, reverse=True)],
    }


def stamp():
    """The server's time for an answer."""
    return now()
