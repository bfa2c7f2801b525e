"""One way to ask for an operation: request() writes its row and takes its kind's claim (one
compare-and-swap that checks the task is free and the state allowed) in one transaction, then
launches it. A refused claim rolls the transaction back: no row, no audit record, no task."""

from ..db import get_db, transaction
from ..errors import NotFound
from ..repositories import networks as networks_repo
from ..repositories import operations as ops_repo
from ..repositories import snapshots as snapshots_repo
from ..repositories import vms as vms_repo
from ..repositories import volumes as volumes_repo
from ..services import access
from ..services.common import audit
from . import claims, kinds
from .claims import Target
from .launch import launch

# the targets that belong to a project: how to read it
PROJECT_OF = {
    "vm": vms_repo.project_of,
    "volume": volumes_repo.project_of,
    "snapshot": snapshots_repo.project_of,
    "network": networks_repo.project_of,
}
LABELS = {"vm": "VM", "volume": "volume", "snapshot": "snapshot", "network": "network"}


def target_of(kind, target):
    """The Target a request names: a VM, volume or host row (or dict), a Target, or the name
    of an image or of the controller."""
    if isinstance(target, Target):
        return target
    if isinstance(target, str):
        return Target(kind.target_type, target, target)
    name = target["name"] if kind.target_type == "host" else target["id"]
    return Target(kind.target_type, target["id"], name)


def record(conn, kind, target, actor, input_data=None):
    """Write a kind's pending operation row (and its audit record) and take its claim, inside
    the caller's transaction; returns the operation id. Raises NotFound, Busy or Conflict
    when the claim is refused: the caller's transaction then keeps nothing."""
    kind = kinds.get(kind) if isinstance(kind, str) else kind
    target = target_of(kind, target)
    project_of = PROJECT_OF.get(target.type)
    project_id = project_of(conn, target.id) if project_of else None
    if project_id is not None and not access.current().sees(project_id):
        # the row the caller saw was replaced, under its name, by another project's meanwhile
        raise NotFound(f"{LABELS[target.type]} {target.name} not found")
    op_id = ops_repo.insert(
        conn,
        kind=kind.name,
        target_type=target.type,
        target_id=None if target.id is None else str(target.id),
        target_name=target.name,
        requested_by=actor,
        input_data=input_data,
        project_id=project_id,
    )
    audit(conn, actor, kind.name, f"{target.type}:{target.name}", f"operation {op_id}")
    claims.take(conn, kind.claim, target, op_id, kind.name)
    return op_id


def request(kind, target, actor, input_data=None, wait=False):
    """Ask for an operation of a kind (or its name) on a target: row and claim in one
    transaction, then run it here (wait) or queue it; returns the operation id."""
    conn = get_db()
    with transaction(conn):
        op_id = record(conn, kind, target, actor, input_data)
    return launch(op_id, wait)
