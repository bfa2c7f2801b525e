"""SQL for the operations table and their logs."""

import json

from .. import states
from ..db import now
from ..filter_language import Column, compile_filter
from .vms import in_projects

COLUMNS = (
    "id, kind, target_type, target_id, target_name, status, requested_by, input, result, error,"
    " worker, heartbeat, cancel_requested, progress_done, progress_total, created_at,"
    " started_at, finished_at, project_id"
)

FILTER_COLUMNS = {
    "id": Column("id", "int"),
    "kind": Column("kind"),
    "target_type": Column("target_type"),
    "target_id": Column("target_id"),
    "target_name": Column("target_name"),
    "status": Column("status"),
    "requested_by": Column("requested_by"),
    "created_at": Column("created_at"),
}
# where a bare word in the filter looks (a search box's words: names, states)
SEARCH_COLUMNS = ("kind", "target_name", "status", "requested_by")

ACTIVE = states.OPERATION_ACTIVE
_ACTIVE_IN, _ACTIVE_PARAMS = states.sql_in(ACTIVE)


def insert(
    conn, *, kind, target_type, target_id, target_name, requested_by, input_data, project_id=None
):
    """Write a pending operation row (about a project's resource, when project_id is given);
    returns its id."""
    cur = conn.execute(
        "INSERT INTO operations (kind, target_type, target_id, target_name, status,"
        " requested_by, input, created_at, project_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            kind,
            target_type,
            target_id,
            target_name,
            states.PENDING,
            requested_by,
            json.dumps(input_data or {}, sort_keys=True),
            now(),
            project_id,
        ),
    )
    return cur.fetchone()[0]


def get(conn, op_id):
    """The operation with this id, or None."""
    return conn.execute(f"SELECT {COLUMNS} FROM operations WHERE id = ?", (op_id,)).fetchone()


def claim(conn, op_id, worker):
    """Compare-and-swap pending → running; True when this worker got it."""
    stamp = now()
    cur = conn.execute(
        "UPDATE operations SET status = ?, worker = ?, started_at = ?, heartbeat = ?"
        " WHERE id = ? AND status = ?",
        (states.RUNNING, worker, stamp, stamp, op_id, states.PENDING),
    )
    return cur.rowcount == 1


def beat(conn, op_id):
    """Refresh a running operation's heartbeat; False once it is no longer running (another
    controller's recovery judged it stale and interrupted it)."""
    cur = conn.execute(
        "UPDATE operations SET heartbeat = ? WHERE id = ? AND status = ?",
        (now(), op_id, states.RUNNING),
    )
    return cur.rowcount == 1


def finish_pending(conn, op_id, status, error):
    """Compare-and-swap pending → a terminal status, for an operation that never started."""
    cur = conn.execute(
        "UPDATE operations SET status = ?, error = ?, finished_at = ? WHERE id = ? AND status = ?",
        (status, error, now(), op_id, states.PENDING),
    )
    return cur.rowcount == 1


def finish(conn, op_id, status, error=None, result=None):
    """Move an operation to a terminal status (only from pending or running)."""
    cur = conn.execute(
        "UPDATE operations SET status = ?, error = ?, result = ?, finished_at = ?"
        f" WHERE id = ? AND status IN {_ACTIVE_IN}",
        (status, error, None if result is None else json.dumps(result), now(), op_id)
        + _ACTIVE_PARAMS,
    )
    return cur.rowcount == 1


def interrupt(conn, op_id, heartbeat_seen, error):
    """Compare-and-swap running → interrupted, only if the heartbeat is still the one seen."""
    cur = conn.execute(
        "UPDATE operations SET status = ?, error = ?, finished_at = ?"
        " WHERE id = ? AND status = ? AND heartbeat IS NOT DISTINCT FROM ?",
        (states.INTERRUPTED, error, now(), op_id, states.RUNNING, heartbeat_seen),
    )
    return cur.rowcount == 1


def set_progress(conn, op_id, done, total):
    """Record how many steps of an operation are done."""
    conn.execute(
        "UPDATE operations SET progress_done = ?, progress_total = ? WHERE id = ?",
        (done, total, op_id),
    )


def request_cancel(conn, op_id):
    """Flag an active operation for cancellation; True when it was active."""
    cur = conn.execute(
        f"UPDATE operations SET cancel_requested = 1 WHERE id = ? AND status IN {_ACTIVE_IN}",
        (op_id, *_ACTIVE_PARAMS),
    )
    return cur.rowcount == 1


def cancel_requested(conn, op_id):
    """Whether somebody asked to cancel this operation."""
    row = conn.execute("SELECT cancel_requested FROM operations WHERE id = ?", (op_id,)).fetchone()
    return bool(row and row[0])


def running_stale(conn, workers_alive, stale_before):
    """Running rows whose worker is not alive here, or whose heartbeat is older than a time."""
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM operations WHERE status = ?", (states.RUNNING,)
    ).fetchall()
    return [
        r for r in rows if not workers_alive(r["worker"]) or (r["heartbeat"] or "") < stale_before
    ]


def active_for(conn, target_type, target_id):
    """The active operations on a target, oldest first."""
    return conn.execute(
        f"SELECT {COLUMNS} FROM operations WHERE target_type = ? AND target_id = ?"
        f" AND status IN {_ACTIVE_IN} ORDER BY id",
        (target_type, str(target_id), *_ACTIVE_PARAMS),
    ).fetchall()


def _where(conditions):
    """A WHERE clause from (sql, params) pairs, empty ones left out; and its parameters."""
    parts = [(sql, params) for sql, params in conditions if sql]
    where = " AND ".join(f"({sql})" for sql, _ in parts)
    return (f" WHERE {where}" if where else ""), [p for _, params in parts for p in params]


def page(conn, query="", limit=50, offset=0, project_ids=None):
    """(rows, total) of operations matching a filter (within project_ids, when given), newest
    first."""
    where, params = _where(
        [
            in_projects("project_id", project_ids),
            compile_filter(query, FILTER_COLUMNS, SEARCH_COLUMNS),
        ]
    )
    total = conn.execute(f"SELECT COUNT(*) FROM operations{where}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM operations{where} ORDER BY id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    return rows, total


def recent(conn, limit=10, project_ids=None):
    """The newest operations (within project_ids, when given)."""
    where, params = _where([in_projects("project_id", project_ids)])
    return conn.execute(
        f"SELECT {COLUMNS} FROM operations{where} ORDER BY id DESC LIMIT ?", [*params, limit]
    ).fetchall()


def after(conn, op_id, limit, project_ids=None):
    """The newest operations with an id above op_id (those created since), at most limit
    (within project_ids, when given)."""
    where, params = _where([("id > ?", [op_id]), in_projects("project_id", project_ids)])
    return conn.execute(
        f"SELECT {COLUMNS} FROM operations{where} ORDER BY id DESC LIMIT ?", [*params, limit]
    ).fetchall()


def for_target(conn, target_type, target_id, limit=20, project_ids=None):
    """The newest operations on one target: its own and those that touched it (within
    project_ids, when given: a member sees no drain or host removal that moved their VM)."""
    target = (
        "target_type = ? AND target_id = ? OR id IN (SELECT operation_id FROM operation_targets"
        " WHERE target_type = ? AND target_id = ?)",
        [target_type, str(target_id), target_type, str(target_id)],
    )
    where, params = _where([target, in_projects("project_id", project_ids)])
    return conn.execute(
        f"SELECT {COLUMNS} FROM operations{where} ORDER BY id DESC LIMIT ?", [*params, limit]
    ).fetchall()


def touch(conn, op_id, target_type, target_id):
    """Record that an operation works on a target besides its own (once)."""
    conn.execute(
        "INSERT INTO operation_targets (operation_id, target_type, target_id) VALUES (?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (op_id, target_type, str(target_id)),
    )


def append_log(conn, op_id, message, level="info"):
    """Add a line to an operation's log; returns its id."""
    cur = conn.execute(
        "INSERT INTO operation_log (operation_id, ts, level, message) VALUES (?, ?, ?, ?)"
        " RETURNING id",
        (op_id, now(), level, message),
    )
    return cur.fetchone()[0]


def log_lines(conn, op_id, after=0, limit=None):
    """An operation's log lines after a line id, oldest first."""
    sql = "SELECT id, ts, level, message FROM operation_log WHERE operation_id = ? AND id > ? ORDER BY id"
    params = [op_id, after]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return conn.execute(sql, params).fetchall()


METERED_KINDS = ("vm.create", "vm.start", "vm.stop", "vm.remove")


def vm_power_records(conn, until):
    """The succeeded VM creations, starts, stops and removals that finished before until,
    oldest first: (kind, target_id, input, finished_at) — what metering replays."""
    marks = ", ".join("?" for _ in METERED_KINDS)
    return conn.execute(
        "SELECT kind, target_id, input, finished_at FROM operations"
        f" WHERE kind IN ({marks}) AND status = ? AND finished_at IS NOT NULL"
        " AND finished_at < ? ORDER BY finished_at, id",
        (*METERED_KINDS, states.SUCCEEDED, until),
    ).fetchall()
