"""Start-up recovery: operations whose worker died become `interrupted`, targets re-checked."""

import os
from datetime import UTC, datetime, timedelta

from ..db import connect, stamp, transaction
from ..repositories import operations as ops_repo
from . import kinds
from .context import OperationContext
from .runner import HEARTBEAT_SECONDS, clear_target_task, machine_id

# A worker that has not beaten for this long is presumed dead, wherever it ran.
STALE_AFTER = timedelta(seconds=HEARTBEAT_SECONDS * 6)


def alive_here(worker):
    """False only for a worker (host:pid) of this machine whose process is gone."""
    host, _, pid = (worker or "").rpartition(":")
    if host != machine_id() or not pid.isdigit():
        return True  # another machine's worker: judged by its heartbeat alone
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(app):
    """Interrupt operations whose worker is gone; returns how many."""
    stale_before = stamp(datetime.now(UTC) - STALE_AFTER)
    conn = connect(app.config["DATABASE"])
    try:
        rows = ops_repo.running_stale(conn, alive_here, stale_before)
        with app.app_context():
            return sum(1 for row in rows if _interrupt(app, conn, row))
    finally:
        conn.close()


def _interrupt(app, conn, row):
    """Mark one operation interrupted, then undo or re-check its target and release its tasks.

    The status changes first, and only if the row is as we read it (same heartbeat): a worker
    that was merely slow and beats again keeps its operation, and nothing is undone under it.
    """
    # One transaction: whoever reads the interrupted status also reads why.
    with transaction(conn):
        if not ops_repo.interrupt(
            conn, row["id"], row["heartbeat"], "the worker running it stopped"
        ):
            return False
        ops_repo.append_log(
            conn, row["id"], f"worker {row['worker']} is gone: interrupted", "error"
        )
    kind = kinds.KINDS.get(row["kind"])
    if kind and kind.undo:
        ctx = OperationContext(app, conn, row, kind.time_limit, kind)
        try:
            kind.undo(ctx, "interrupted")
        except Exception as exc:  # the target stays for the operator to recover by hand
            ctx.error(f"re-checking the target failed: {exc}")
    with transaction(conn):
        clear_target_task(conn, row)
    return True
