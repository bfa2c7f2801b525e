"""Runs one operation: claim it, do the work, map the outcome to a terminal status."""

import logging
import os
import socket
import threading
import traceback

from flask import current_app

from ..db import ERRORS as db_errors
from ..db import connect, transaction
from ..errors import NubeError, OperationCanceled
from ..repositories import hosts as hosts_repo
from ..repositories import operations as ops_repo
from ..repositories import vms as vms_repo
from ..repositories import volumes as volumes_repo
from ..services import access, shared_keys
from . import kinds
from .context import LogHandler, OperationContext

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0


def machine_id():
    """This machine, as workers name it: systemd's machine id (two controllers cloned from one
    image may share a host name), else the host name."""
    try:
        found = open("/etc/machine-id").read().strip()  # noqa: SIM115
    except OSError:
        found = ""
    return f"{socket.gethostname()}-{found[:12]}" if found else socket.gethostname()


def worker_name():
    """This process as a worker: machine and pid."""
    return f"{machine_id()}:{os.getpid()}"


class _Heartbeat(threading.Thread):
    """Refreshes a running operation's heartbeat on its own connection."""

    def __init__(self, database, op_id):
        super().__init__(daemon=True, name=f"heartbeat-{op_id}")
        self.database = database
        self.op_id = op_id
        self.stopped = threading.Event()
        self.lost = threading.Event()  # the row left `running` under us: stop working on it

    def run(self):
        """Beat until stopped."""
        conn = connect(self.database)
        try:
            while not self.stopped.wait(HEARTBEAT_SECONDS):
                try:
                    if not ops_repo.beat(conn, self.op_id):
                        self.lost.set()
                except db_errors:  # a busy database must not silence the beat for good
                    log.warning("heartbeat of operation %s failed; retrying", self.op_id)
        finally:
            conn.close()


def clear_target_task(conn, row):
    """Release every task this operation still holds: its target's, and any it took on the way
    (a host removal's VMs, a destroy's hosts and VMs)."""
    vms_repo.release_tasks(conn, row["id"])
    hosts_repo.release_tasks(conn, row["id"])
    volumes_repo.release_tasks(conn, row["id"])


def execute(op_id, app=None):
    """Run a pending operation in this thread; returns its final row (or None if not claimed)."""
    app = app or current_app._get_current_object()
    conn = connect(app.config["DATABASE"])
    try:
        if not ops_repo.claim(conn, op_id, worker_name()):
            return ops_repo.get(conn, op_id)  # already taken, finished or canceled: run once
        # the work runs as the system: the requester's rights were checked when it was asked for
        with app.app_context(), access.as_system():
            shared_keys.sync_known_hosts(app, conn)  # host keys another controller recorded
            return _run_claimed(app, conn, ops_repo.get(conn, op_id))
    finally:
        conn.close()


def _run_claimed(app, conn, row):
    """Do the work of a claimed operation and record how it ended."""
    kind = kinds.get(row["kind"])
    ctx = OperationContext(app, conn, row, kind.time_limit, kind)
    heartbeat = _Heartbeat(app.config["DATABASE"], row["id"])
    ctx.fenced = heartbeat.lost
    heartbeat.start()
    handler = LogHandler(ctx)
    logging.getLogger("app").addHandler(handler)
    status, error, result = "succeeded", None, None
    try:
        ctx.log(f"{kind.label} started by {row['requested_by'] or 'system'}")
        ctx.check()  # canceled while still pending
        result = kind.work(ctx)
    except OperationCanceled as exc:
        status, error = "canceled", str(exc)
    except NubeError as exc:
        status, error = "failed", str(exc)
    except Exception as exc:  # a bug must end the row, not leave it running
        status, error = "failed", f"internal error: {exc.__class__.__name__}: {exc}"
        ctx.error(traceback.format_exc())
    finally:
        logging.getLogger("app").removeHandler(handler)
        heartbeat.stopped.set()
    if ctx.fenced.is_set():
        # the recovering controller owns the row now: it ran the undo and released the tasks
        ctx.error(f"stopped: {error or 'interrupted by another controller'}; its undo ran there")
        return ops_repo.get(conn, row["id"])
    if status != "succeeded":
        ctx.error(f"{status}: {error}")
        _clean_up(ctx, kind, status)
    else:
        ctx.log("succeeded")
    with transaction(conn):
        clear_target_task(conn, row)
        ops_repo.finish(
            conn, row["id"], status, error, result if isinstance(result, dict) else None
        )
    return ops_repo.get(conn, row["id"])


def abandon(op_id, status, error, app=None):
    """End an operation that never started (canceled while pending, or never queued): undo
    what its request reserved and release its tasks. False when a worker got it first."""
    app = app or current_app._get_current_object()
    conn = connect(app.config["DATABASE"])
    try:
        if not ops_repo.finish_pending(conn, op_id, status, error):
            return False
        row = ops_repo.get(conn, op_id)
        kind = kinds.get(row["kind"])
        with app.app_context():
            ctx = OperationContext(app, conn, row, kind.time_limit, kind)
            ctx.error(f"{status} before it started: {error}")
            _clean_up(ctx, kind, status)
        with transaction(conn):
            clear_target_task(conn, row)
        return True
    finally:
        conn.close()


def _clean_up(ctx, kind, status):
    """Undo what a failed or canceled operation left half done."""
    if kind.undo is None:
        return
    try:
        kind.undo(ctx, status)
    except Exception as exc:  # clean-up trouble is logged; the original error stays the cause
        ctx.error(f"clean-up after {status} also failed: {exc}")
