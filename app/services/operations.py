"""Operation use cases for pages: list, show with log, cancel."""

from .. import states
from ..errors import Conflict, InvalidInput, NotFound
from ..ops.runner import abandon
from ..repositories import operations as ops_repo
from . import access, redaction
from .common import audit, db

TERMINAL = states.OPERATION_TERMINAL


def get(op_id):
    """One operation row; NotFound otherwise."""
    try:
        op_id = int(op_id)
    except (TypeError, ValueError):
        raise InvalidInput(f"operation id must be a number, not {op_id!r}") from None
    row = ops_repo.get(db(), op_id)
    if row is None or not access.current().sees(row["project_id"]):
        raise NotFound(f"operation {op_id} not found")
    return redaction.for_viewer().operation(row)


def page(query="", limit=50, offset=0):
    """(operations the viewer may see, total) matching a filter, newest first."""
    rows, total = ops_repo.page(db(), query or "", limit, offset, access.visible_projects())
    shown = redaction.for_viewer()
    return [shown.operation(r) for r in rows], total


def recent(limit=10):
    """The newest operations the viewer may see."""
    shown = redaction.for_viewer()
    return [shown.operation(r) for r in ops_repo.recent(db(), limit, access.visible_projects())]


def for_target(target_type, target_id, limit=20):
    """The newest operations on one host or VM that the viewer may see."""
    rows = ops_repo.for_target(db(), target_type, target_id, limit, access.visible_projects())
    shown = redaction.for_viewer()
    return [shown.operation(r) for r in rows]


def log(op_id, after=0, limit=None):
    """An operation's log lines after a line id (of one the viewer may see)."""
    lines = ops_repo.log_lines(db(), get(op_id)["id"], after, limit)
    shown = redaction.for_viewer()
    return [shown.log_line(dict(line)) for line in lines]


def cancel(op_id, actor):
    """Ask a pending or running operation to stop (a member: one they asked for; an
    operator's migration of their VM is not theirs to stop)."""
    row = get(op_id)
    viewer = access.current()
    if row["requested_by"] != viewer.name:
        access.require("operations.cancel_any", viewer)
    conn = db()
    if not ops_repo.request_cancel(conn, row["id"]):
        raise Conflict(f"operation {row['id']} is {row['status']}: nothing to cancel")
    ops_repo.append_log(conn, row["id"], f"cancel requested by {actor}", "info")
    audit(conn, actor, "operation.cancel", f"operation:{row['id']}")
    # not started yet: end it here (a worker that claims it first sees the flag and stops)
    abandon(row["id"], "canceled", f"canceled by {actor}")
