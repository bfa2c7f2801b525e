"""Hand an operation row to its runner: queued for the web, in-process for the core API."""

from flask import current_app

from ..db import connect
from ..errors import OperationFailed
from ..repositories import operations as ops_repo
from .queue import queue_of
from .runner import abandon, execute


def launch(op_id, wait):
    """Run now and raise on failure (wait=True), or enqueue and return the id at once."""
    app = current_app._get_current_object()
    if not wait:
        try:
            queue_of(app).enqueue(op_id)
        except Exception as exc:  # the queue is down: the row must not wait forever
            abandon(op_id, "failed", f"could not be queued: {exc}", app)
            raise OperationFailed(f"operation {op_id} could not be queued: {exc}") from exc
        return op_id
    row = execute(op_id, app)
    if row["status"] != "succeeded":
        raise OperationFailed(
            f"operation {op_id} ({row['kind']}) {row['status']}: {row['error']}",
            operation=dict(row),
            log=log_text(app, op_id),
        )
    return op_id


def log_text(app, op_id):
    """An operation's whole log as text."""
    conn = connect(app.config["DATABASE"])
    try:
        return "\n".join(
            f"{line['ts']} {line['level']:5} {line['message']}"
            for line in ops_repo.log_lines(conn, op_id)
        )
    finally:
        conn.close()
