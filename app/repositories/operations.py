"""SQL for the operations table and their logs."""

import json

from .. import states
from ..db import now
from ..filter_language import Column, compile_filter

COLUMNS = (
    "id, kind, target_type, target_id, target_name, status, requested_by, input, result, error,"
    " worker, heartbeat, cancel_requested, progress_done, progress_total, created_at,"
    " started_at, finished_at"
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


def insert(conn, *, kind, target_type, target_id, target_name, requested_by, input_data):
    """Write a pending operation row; returns its id."""
    cur = conn.execute(
        "INSERT INTO operations (kind, target_type, target_id, target_name, status,"
        " requested_by, input, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            kind,
            target_type,
            target_id,
            target_name,
            states.PENDING,
            requested_by,
            json.dumps(input_data or {}, sort_keys=True),
            now(),
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


def page(conn, query="", limit=50, offset=0):
    """(rows, total) of operations matching a filter, newest first."""
    sql, params = compile_filter(query, FILTER_COLUMNS, SEARCH_COLUMNS)
    where = f" WHERE {sql}" if sql else ""
    total = conn.execute(f"SELECT COUNT(*) FROM operations{where}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM operations{where} ORDER BY id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    return rows, total


def recent(conn, limit=10):
    """The newest operations."""
    return conn.execute(
        f"SELECT {COLUMNS} FROM operations ORDER BY id DESC LIMIT ?", (limit,)
    ).fetchall()


def after(conn, op_id, limit):
    """The newest operations with an id above op_id (those created since), at most limit."""
    return conn.execute(
        f"SELECT {COLUMNS} FROM operations WHERE id > ? ORDER BY id DESC LIMIT ?",
        (op_id, limit),
    ).fetchall()


def for_target(conn, target_type, target_id, limit=20):
    """The newest operations on one target: its own and those that touched it."""
    return conn.execute(
        f"SELECT {COLUMNS} FROM operations WHERE (target_type = ? AND target_id = ?)"
        " OR id IN (SELECT operation_id FROM operation_targets"
        " WHERE target_type = ? AND target_id = ?) ORDER BY id DESC LIMIT ?",
        (target_type, str(target_id), target_type, str(target_id), limit),
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
