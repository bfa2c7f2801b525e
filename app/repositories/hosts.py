"""SQL for the hosts table."""

from ..db import now, nulls_order
from ..filter_language import Column, compile_filter
from .tasks import TaskColumns

# What a host row looks like to callers: the table plus what its VMs take.
_SELECT = """
SELECT h.id, h.name, h.address, COALESCE(h.data_address, h.address) AS data_address, h."user", h.state, h.share, h.network, h.cpus, h.mem,
       h.free_mem, h.kvm, h.host_key, h.task, h.task_op, h.error, h.last_seen, h.created_at,
       h.prepared, h.misses, h.missing_since,
       (SELECT COALESCE(SUM(v.mem), 0) FROM vms v WHERE v.host_id = h.id) AS mem_allocated,
       (SELECT COALESCE(SUM(v.vcpus), 0) FROM vms v WHERE v.host_id = h.id) AS vcpus_allocated,
       (SELECT COUNT(*) FROM vms v WHERE v.host_id = h.id) AS vm_count
FROM hosts h
"""

FILTER_COLUMNS = {
    "id": Column("id", "int"),
    "name": Column("name"),
    "address": Column("address"),
    "data_address": Column("data_address"),
    "user": Column('"user"'),  # quoted: a bare user is PostgreSQL's current user
    "state": Column("state"),
    "share": Column("share"),
    "network": Column("network"),
    "cpus": Column("cpus", "int"),
    "mem": Column("mem", "int"),
    "mem_allocated": Column("mem_allocated", "int"),
    "kvm": Column("kvm", "bool"),
    "task": Column("task"),
    "last_seen": Column("last_seen"),
}
# where a bare word in the filter looks (a search box's words: names, states)
SEARCH_COLUMNS = ("name", "address", "state")

SORT_COLUMNS = ("id", "name", "address", "state", "cpus", "mem", "mem_allocated", "vm_count")
NULLABLE = {"cpus", "mem"}  # unknown until the host is first read

UPDATABLE = {
    "name",
    "address",
    "data_address",
    "user",
    "state",
    "share",
    "network",
    "cpus",
    "mem",
    "free_mem",
    "kvm",
    "prepared",
    "error",
    "last_seen",
    "misses",
    "missing_since",
}


def _where(query):
    """A WHERE clause and its parameters from a filter expression."""
    sql, params = compile_filter(query, FILTER_COLUMNS, SEARCH_COLUMNS)
    return (f" WHERE {sql}" if sql else ""), params


def _order(sort, descending):
    """A whitelisted ORDER BY clause."""
    column = sort if sort in SORT_COLUMNS else "name"
    return f" ORDER BY {column} {nulls_order(descending, column in NULLABLE)}, id"


def search(conn, query="", sort="name", descending=False, limit=None, offset=0):
    """Hosts matching a filter expression, in order; all of them when limit is None."""
    where, params = _where(query)
    sql = f"SELECT * FROM ({_SELECT}) AS h{where}{_order(sort, descending)}"
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params = [*params, limit, offset]
    return conn.execute(sql, params).fetchall()


def count(conn, query=""):
    """How many hosts match a filter expression."""
    if not query.strip():
        return conn.execute("SELECT COUNT(*) FROM hosts").fetchone()[0]
    where, params = _where(query)
    return conn.execute(f"SELECT COUNT(*) FROM ({_SELECT}) AS h{where}", params).fetchone()[0]


def get(conn, host_id):
    """The host with this id, or None."""
    return conn.execute(f"{_SELECT} WHERE h.id = ?", (host_id,)).fetchone()


def by_name(conn, name):
    """The host with this name, or None."""
    return conn.execute(f"{_SELECT} WHERE h.name = ?", (name,)).fetchone()


def by_address(conn, address):
    """The host with this address, or None."""
    return conn.execute(f"{_SELECT} WHERE h.address = ?", (address,)).fetchone()


def secret(conn, host_id):
    """The encrypted password of a host (never part of an ordinary row), or None when there is
    none or it was given for another address than the host's current one."""
    row = conn.execute(
        "SELECT password_enc FROM hosts WHERE id = ? AND password_address = address", (host_id,)
    ).fetchone()
    return row[0] if row else None


def set_secret(conn, host_id, password_enc, for_address):
    """Store a host's encrypted password, bound to the address it was given for."""
    conn.execute(
        "UPDATE hosts SET password_enc = ?, password_address = ? WHERE id = ?",
        (password_enc, for_address, host_id),
    )


def insert(conn, *, name, address, user, password_enc, state, share, network, **more):
    """Add a host row (more: data_address, task, task_op); returns its id."""
    cur = conn.execute(
        'INSERT INTO hosts (name, address, data_address, "user", password_enc, password_address,'
        " state, share, network, task, task_op, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            name,
            address,
            more.get("data_address"),
            user,
            password_enc,
            address,
            state,
            share,
            network,
            more.get("task"),
            more.get("task_op"),
            now(),
        ),
    )
    return cur.fetchone()[0]


def update(conn, host_id, **fields):
    """Change some columns of a host."""
    unknown = set(fields) - UPDATABLE
    if unknown:
        raise KeyError(f"not updatable: {sorted(unknown)}")
    if not fields:
        return
    assignments = ", ".join(f'"{column}" = ?' for column in fields)  # "user" is a keyword
    conn.execute(f"UPDATE hosts SET {assignments} WHERE id = ?", [*fields.values(), host_id])


_tasks = TaskColumns("hosts")
claim_task = _tasks.claim
set_task_op = _tasks.set_operation
clear_task = _tasks.clear
release_tasks = _tasks.release


def delete(conn, host_id):
    """Remove a host row (a VM recorded as moving to it is not, any more)."""
    conn.execute("UPDATE vms SET moving_to = NULL WHERE moving_to = ?", (host_id,))
    conn.execute("DELETE FROM hosts WHERE id = ?", (host_id,))


def has_secrets(conn):
    """Whether any host has a stored (encrypted) password."""
    row = conn.execute("SELECT 1 FROM hosts WHERE password_enc IS NOT NULL LIMIT 1").fetchone()
    return row is not None


def set_host_key(conn, host_id, key, mac):
    """Record a host's SSH keys with the controller's MAC over them."""
    conn.execute(
        "UPDATE hosts SET host_key = ?, host_key_mac = ? WHERE id = ?", (key, mac, host_id)
    )


def recorded_keys(conn):
    """(id, address, recorded host keys or None, their MAC or None) of every host."""
    rows = conn.execute("SELECT id, address, host_key, host_key_mac FROM hosts ORDER BY id")
    return [tuple(row) for row in rows]


def addresses(conn, share):
    """The addresses of the hosts that mount the repository this way (for the NFS export)."""
    rows = conn.execute("SELECT address FROM hosts WHERE share = ? ORDER BY address", (share,))
    return [row[0] for row in rows]


def state_counts(conn):
    """{state: count} over all hosts."""
    return dict(conn.execute("SELECT state, COUNT(*) FROM hosts GROUP BY state").fetchall())


def live_states(conn, ids):
    """The columns live pages follow (capacity and allocation included), for the hosts among ids."""
    marks = ", ".join("?" for _ in ids)
    return conn.execute(
        "SELECT h.id, h.state, h.task, h.task_op, h.cpus, h.mem,"
        " COALESCE(SUM(v.mem), 0) AS mem_allocated, COALESCE(SUM(v.vcpus), 0) AS vcpus_allocated,"
        " h.free_mem, COUNT(v.id) AS vm_count, h.last_seen"
        f" FROM hosts h LEFT JOIN vms v ON v.host_id = h.id WHERE h.id IN ({marks})"
        " GROUP BY h.id",
        list(ids),
    ).fetchall()
