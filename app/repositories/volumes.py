"""SQL for the volumes table (a volume's id is its name)."""

from ..db import now
from ..filter_language import Column
from ..states import AVAILABLE, IN_USE, sql_in
from .tasks import TaskColumns
from .vms import filtered_where, in_projects

_SELECT = """
SELECT o.id, o.id AS name, o.size, o.format, o.image, o.vm_id AS vm, o.target, o.state,
       o.task, o.task_op, o.project_id, p.name AS project, o.created_by, o.created_at
FROM volumes o LEFT JOIN projects p ON p.id = o.project_id
"""

FILTER_COLUMNS = {
    "name": Column("o.id"),
    "size": Column("o.size", "int"),
    "format": Column("o.format"),
    "image": Column("o.image"),
    "vm": Column("o.vm_id"),
    "target": Column("o.target"),
    "state": Column("o.state"),
    "task": Column("o.task"),
    "project": Column("p.name"),
}
SEARCH_COLUMNS = ("name", "vm", "image", "state")
SORT_COLUMNS = {"name": "o.id", "size": "o.size", "vm": "o.vm_id", "state": "o.state"}

_tasks = TaskColumns("volumes")
claim_task = _tasks.claim
set_task_op = _tasks.set_operation
clear_task = _tasks.clear
release_tasks = _tasks.release


def _where(query, project_ids=None):
    """A WHERE clause and its parameters from a filter expression, within the projects."""
    return filtered_where(query, FILTER_COLUMNS, SEARCH_COLUMNS, "o.project_id", project_ids)


def search(conn, query="", sort="name", descending=False, limit=None, offset=0, project_ids=None):
    """Volumes matching a filter expression (within project_ids, when given), in order."""
    where, params = _where(query, project_ids)
    column = SORT_COLUMNS.get(sort, "o.id")
    order = "DESC" if descending else "ASC"
    sql = f"{_SELECT}{where} ORDER BY {column} {order}, o.id"
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params = [*params, limit, offset]
    return conn.execute(sql, params).fetchall()


def count(conn, query="", project_ids=None):
    """How many volumes match a filter expression (within project_ids, when given)."""
    where, params = _where(query, project_ids)
    sql = f"SELECT COUNT(*) FROM volumes o LEFT JOIN projects p ON p.id = o.project_id{where}"
    return conn.execute(sql, params).fetchone()[0]


def get(conn, name):
    """The volume with this name, or None."""
    return conn.execute(f"{_SELECT} WHERE o.id = ?", (name,)).fetchone()


def live_states(conn, names, project_ids=None):
    """The columns live pages follow, for the volumes among names (of these projects, when
    given)."""
    marks = ", ".join("?" for _ in names)
    scope, params = in_projects("project_id", project_ids)
    also = f" AND {scope}" if scope else ""
    return conn.execute(
        f"SELECT id, state, task, task_op, size FROM volumes WHERE id IN ({marks}){also}",
        [*names, *params],
    ).fetchall()


def attached_to(conn, vm_id):
    """The volumes attached to a VM, by target (vdb, vdc...)."""
    return conn.execute(
        f"{_SELECT} WHERE o.vm_id = ? ORDER BY length(o.target), o.target", (vm_id,)
    ).fetchall()


def in_project(conn, project_id, states=None):
    """A project's volumes (in some states only, when given), by name."""
    sql, params = f"{_SELECT} WHERE o.project_id = ?", [project_id]
    if states:
        words, values = sql_in(states)
        sql += f" AND o.state IN {words}"
        params.extend(values)
    return conn.execute(f"{sql} ORDER BY o.id", params).fetchall()


def using_image(conn, image):
    """Names of the volumes made from an image."""
    rows = conn.execute("SELECT id FROM volumes WHERE image = ? ORDER BY id", (image,))
    return [r[0] for r in rows]


def insert(conn, *, name, size, image, task, created_by, project_id):
    """Add a volume row (size in GiB), available and unattached, with its creation's task."""
    conn.execute(
        "INSERT INTO volumes (id, size, image, state, task, project_id, created_by, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (name, size, image, AVAILABLE, task, project_id, created_by, now()),
    )


def attach(conn, name, vm_id, target):
    """Record a volume attached to a VM at a target."""
    conn.execute(
        "UPDATE volumes SET vm_id = ?, target = ?, state = ? WHERE id = ?",
        (vm_id, target, IN_USE, name),
    )


def detach(conn, name, state):
    """Record a volume attached to no VM, in state (available, or missing)."""
    conn.execute(
        "UPDATE volumes SET vm_id = NULL, target = NULL, state = ? WHERE id = ?", (state, name)
    )


def set_state(conn, name, state):
    """Record a volume's state."""
    conn.execute("UPDATE volumes SET state = ? WHERE id = ?", (state, name))


def set_size(conn, name, size):
    """Record a volume's size in GiB."""
    conn.execute("UPDATE volumes SET size = ? WHERE id = ?", (size, name))


def delete(conn, name):
    """Forget a volume."""
    conn.execute("DELETE FROM volumes WHERE id = ?", (name,))


def project_of(conn, name):
    """The id of a volume's project, or None for no such volume."""
    row = conn.execute("SELECT project_id FROM volumes WHERE id = ?", (name,)).fetchone()
    return None if row is None else row[0]


def idle(conn):
    """The volumes no operation holds (name as id, state, vm_id): the monitor's to check."""
    return conn.execute(
        "SELECT id, state, vm_id FROM volumes WHERE task IS NULL ORDER BY id"
    ).fetchall()


def set_state_if(conn, name, was, state):
    """Record a volume's state if it is still was and no operation took it meanwhile."""
    conn.execute(
        "UPDATE volumes SET state = ? WHERE id = ? AND state = ? AND task IS NULL",
        (state, name, was),
    )
