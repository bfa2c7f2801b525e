"""SQL for the vms table."""

import json

from ..db import now, nulls_order
from ..filter_language import Column, compile_filter
from .tasks import TaskColumns

# a VM's address: its first NIC's (the one its network-config makes the default route's)
PRIMARY_IP = "(SELECT c.ip FROM vm_nics c WHERE c.vm_id = v.id ORDER BY c.idx LIMIT 1)"

_SELECT = f"""
SELECT v.id, v.host_id AS host, h.name AS host_name, v.image, v.mem, v.vcpus, v.state, v.task,
       v.task_op, v.last_seen, v.created_by, v.created_at, v.hostname, v.project_id,
       p.name AS project, v.disk, {PRIMARY_IP} AS ip
FROM vms v JOIN hosts h ON h.id = v.host_id LEFT JOIN projects p ON p.id = v.project_id
"""

FILTER_COLUMNS = {
    "id": Column("v.id"),
    "host": Column("v.host_id", "int", by_name="h.name"),
    "host_name": Column("h.name"),
    "image": Column("v.image"),
    "mem": Column("v.mem", "int"),
    "vcpus": Column("v.vcpus", "int"),
    "state": Column("v.state"),
    "task": Column("v.task"),
    "last_seen": Column("v.last_seen"),
    "hostname": Column("v.hostname"),
    "project": Column("p.name"),
    "disk": Column("v.disk", "int"),
    "ip": Column(PRIMARY_IP),
}
# where a bare word in the filter looks (a search box's words: names, states)
SEARCH_COLUMNS = ("id", "host_name", "image", "state")

SORT_COLUMNS = {
    "id": "v.id",
    "host_name": "h.name",
    "image": "v.image",
    "mem": "v.mem",
    "vcpus": "v.vcpus",
    "state": "v.state",
    "last_seen": "v.last_seen",
}
NULLABLE = {"v.last_seen"}  # never read by the monitor yet


def in_projects(column, project_ids):
    """SQL keeping only rows of these projects (None: no restriction; empty: no row), and its
    parameters: a viewer's restriction, ANDed outside any filter so no filter can widen it."""
    if project_ids is None:
        return "", []
    if not project_ids:
        return "1 = 0", []
    return f"{column} IN ({', '.join('?' for _ in project_ids)})", list(project_ids)


def filtered_where(query, columns, search_columns, project_column, project_ids=None):
    """A WHERE clause and its parameters from a filter expression over columns, within the
    projects (the scope outside the filter's parentheses, so no filter can widen it)."""
    sql, params = compile_filter(query, columns, search_columns)
    scope, scope_params = in_projects(project_column, project_ids)
    parts = [part for part in (scope, f"({sql})" if sql else "") if part]
    return (f" WHERE {' AND '.join(parts)}" if parts else ""), [*scope_params, *params]


def _where(query, project_ids=None):
    """A WHERE clause and its parameters from a filter expression, within the projects."""
    return filtered_where(query, FILTER_COLUMNS, SEARCH_COLUMNS, "v.project_id", project_ids)


def search(conn, query="", sort="id", descending=False, limit=None, offset=0, project_ids=None):
    """VMs matching a filter expression (within project_ids, when given), in order; all of
    them when limit is None."""
    where, params = _where(query, project_ids)
    column = SORT_COLUMNS.get(sort, "v.id")
    order = nulls_order(descending, column in NULLABLE)
    sql = f"{_SELECT}{where} ORDER BY {column} {order}, v.id"
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params = [*params, limit, offset]
    return conn.execute(sql, params).fetchall()


def count(conn, query="", project_ids=None):
    """How many VMs match a filter expression (within project_ids, when given)."""
    if not query.strip() and project_ids is None:
        return conn.execute("SELECT COUNT(*) FROM vms").fetchone()[0]
    where, params = _where(query, project_ids)
    sql = (
        "SELECT COUNT(*) FROM vms v JOIN hosts h ON h.id = v.host_id"
        f" LEFT JOIN projects p ON p.id = v.project_id{where}"
    )
    return conn.execute(sql, params).fetchone()[0]


def get(conn, vm_id):
    """The VM with this id, or None."""
    return conn.execute(f"{_SELECT} WHERE v.id = ?", (vm_id,)).fetchone()


def on_host(conn, host_id):
    """Every VM placed on a host."""
    return conn.execute(f"{_SELECT} WHERE v.host_id = ? ORDER BY v.id", (host_id,)).fetchall()


def using_image(conn, image):
    """Ids of the VMs whose disk is based on an image."""
    return [r[0] for r in conn.execute("SELECT id FROM vms WHERE image = ? ORDER BY id", (image,))]


def image_usage(conn, project_ids=None):
    """{image: number of VMs using it} (VMs of these projects, when given)."""
    scope, params = in_projects("project_id", project_ids)
    where = f" WHERE {scope}" if scope else ""
    sql = f"SELECT image, COUNT(*) FROM vms{where} GROUP BY image"
    return dict(conn.execute(sql, params).fetchall())


def insert(
    conn,
    *,
    vm_id,
    host_id,
    image,
    mem,
    vcpus,
    state,
    created_by,
    project_id,
    disk=None,
    task=None,
    boot=None,
):
    """Add a VM row in a project; disk: its virtual size in GiB; boot: its first-boot
    configuration (hostname, ssh_keys, user_data)."""
    boot = boot or {}
    conn.execute(
        "INSERT INTO vms (id, host_id, image, mem, vcpus, state, task, created_by, created_at,"
        " hostname, ssh_keys, user_data, project_id, disk)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            vm_id,
            host_id,
            image,
            mem,
            vcpus,
            state,
            task,
            created_by,
            now(),
            boot.get("hostname"),
            json.dumps(boot.get("ssh_keys") or []),
            boot.get("user_data") or "",
            project_id,
            disk,
        ),
    )


def first_boot(conn, vm_id):
    """A VM's first-boot configuration: {hostname, ssh_keys (a list), user_data}, or None."""
    row = conn.execute(
        "SELECT hostname, ssh_keys, user_data FROM vms WHERE id = ?", (vm_id,)
    ).fetchone()
    if row is None:
        return None
    return {
        "hostname": row["hostname"],
        "ssh_keys": json.loads(row["ssh_keys"] or "[]"),
        "user_data": row["user_data"] or "",
    }


_tasks = TaskColumns("vms")
claim_task = _tasks.claim
set_task_op = _tasks.set_operation
clear_task = _tasks.clear
release_tasks = _tasks.release


def claim_on_host(conn, host_id, task, operation_id):
    """Give every free VM on a host this task for one operation; the first VM another
    operation holds (id, task, task_op), or None when the operation holds them all."""
    conn.execute(
        "UPDATE vms SET task = ?, task_op = ? WHERE host_id = ? AND task IS NULL",
        (task, operation_id, host_id),
    )
    return conn.execute(
        "SELECT id, task, task_op FROM vms WHERE host_id = ?"
        " AND (task_op IS NULL OR task_op <> ?) ORDER BY id LIMIT 1",
        (host_id, operation_id),
    ).fetchone()


def set_state(conn, vm_id, state, seen=True):
    """Record a VM's power state (and when it was seen, when it came from the hypervisor)."""
    if seen:
        conn.execute("UPDATE vms SET state = ?, last_seen = ? WHERE id = ?", (state, now(), vm_id))
    else:
        conn.execute("UPDATE vms SET state = ? WHERE id = ?", (state, vm_id))


def set_host(conn, vm_id, host_id):
    """Record that a VM's domain now lives on another host (its move, if any, is over)."""
    conn.execute("UPDATE vms SET host_id = ?, moving_to = NULL WHERE id = ?", (host_id, vm_id))


def set_moving_to(conn, vm_id, host_id):
    """Record the host a VM is being moved to (None: no move under way)."""
    conn.execute("UPDATE vms SET moving_to = ? WHERE id = ?", (host_id, vm_id))


def busy_ids(conn):
    """Ids of the VMs an operation owns right now."""
    return {r[0] for r in conn.execute("SELECT id FROM vms WHERE task IS NOT NULL")}


def delete(conn, vm_id):
    """Remove a VM row."""
    conn.execute("DELETE FROM vms WHERE id = ?", (vm_id,))


def state_counts(conn, project_ids=None):
    """{state: count} over all VMs (of these projects, when given)."""
    scope, params = in_projects("project_id", project_ids)
    where = f" WHERE {scope}" if scope else ""
    sql = f"SELECT state, COUNT(*) FROM vms{where} GROUP BY state"
    return dict(conn.execute(sql, params).fetchall())


def live_states(conn, ids, project_ids=None):
    """The columns live pages follow, for the VMs among ids (of these projects, when given)."""
    marks = ", ".join("?" for _ in ids)
    scope, params = in_projects("project_id", project_ids)
    also = f" AND {scope}" if scope else ""
    return conn.execute(
        f"SELECT id, state, task, task_op, last_seen FROM vms WHERE id IN ({marks}){also}",
        [*ids, *params],
    ).fetchall()


def without_disk_size(conn):
    """(id, image) of the VMs whose disk size was never recorded (rows older than projects)."""
    return conn.execute("SELECT id, image FROM vms WHERE disk IS NULL ORDER BY id").fetchall()


def set_disk_size(conn, vm_id, disk):
    """Record a VM disk's virtual size in GiB."""
    conn.execute("UPDATE vms SET disk = ? WHERE id = ?", (disk, vm_id))


def project_of(conn, vm_id):
    """The id of a VM's project, or None for no such VM."""
    row = conn.execute("SELECT project_id FROM vms WHERE id = ?", (vm_id,)).fetchone()
    return None if row is None else row[0]


def set_resources(conn, vm_id, mem, vcpus):
    """Record a VM's memory (MiB) and vCPUs."""
    conn.execute("UPDATE vms SET mem = ?, vcpus = ? WHERE id = ?", (mem, vcpus, vm_id))
