"""SQL for projects, their members, and their usage counted from the rows themselves."""

from ..db import now
from ..numbers import disk_gib

COLUMNS = "id, name, description, quota_vms, quota_vcpus, quota_mem, quota_disk, created_at"
QUOTA_COLUMNS = {
    "vms": "quota_vms",
    "vcpus": "quota_vcpus",
    "mem": "quota_mem",
    "disk": "quota_disk",
}


def get(conn, project_id):
    """The project with this id, or None."""
    return conn.execute(f"SELECT {COLUMNS} FROM projects WHERE id = ?", (project_id,)).fetchone()


def by_name(conn, name):
    """The project with this name, or None."""
    return conn.execute(f"SELECT {COLUMNS} FROM projects WHERE name = ?", (name,)).fetchone()


def all_projects(conn, ids=None):
    """Every project by name, or only those whose ids are given (an empty list: none)."""
    if ids is None:
        return conn.execute(f"SELECT {COLUMNS} FROM projects ORDER BY name").fetchall()
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    return conn.execute(
        f"SELECT {COLUMNS} FROM projects WHERE id IN ({marks}) ORDER BY name", list(ids)
    ).fetchall()


def insert(conn, name, description, quota):
    """Add a project; quota maps vms/vcpus/mem/disk to a limit or None. Returns its id."""
    cur = conn.execute(
        "INSERT INTO projects (name, description, quota_vms, quota_vcpus, quota_mem, quota_disk,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (name, description, *(quota.get(key) for key in QUOTA_COLUMNS), now()),
    )
    return cur.fetchone()[0]


def update(conn, project_id, *, name, description, quota):
    """Replace a project's name, description and quotas."""
    conn.execute(
        "UPDATE projects SET name = ?, description = ?, quota_vms = ?, quota_vcpus = ?,"
        " quota_mem = ?, quota_disk = ? WHERE id = ?",
        (name, description, *(quota.get(key) for key in QUOTA_COLUMNS), project_id),
    )


def delete(conn, project_id):
    """Remove a project (its memberships go with it)."""
    conn.execute("DELETE FROM projects WHERE id = ?", (project_id,))


def usage(conn, project_id):
    """What a project uses now, counted from its rows: {vms, vcpus, mem, disk}; disk is its
    VMs' disks, its volumes and the bytes its VMs' snapshots hold, in GiB (rounded up)."""
    row = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(vcpus), 0), COALESCE(SUM(mem), 0),"
        " COALESCE(SUM(disk), 0) FROM vms WHERE project_id = ?",
        (project_id,),
    ).fetchone()
    volumes = conn.execute(
        "SELECT COALESCE(SUM(size), 0) FROM volumes WHERE project_id = ?", (project_id,)
    ).fetchone()[0]
    snapshots = conn.execute(
        "SELECT COALESCE(SUM(s.size), 0) FROM snapshots s JOIN vms v ON v.id = s.vm_id"
        " WHERE v.project_id = ?",
        (project_id,),
    ).fetchone()[0]
    disk = row[3] + volumes + disk_gib(snapshots)
    return {"vms": row[0], "vcpus": row[1], "mem": row[2], "disk": disk}


def resource_count(conn, project_id):
    """How many resources (VMs, volumes, networks) belong to a project (what keeps it from
    being removed)."""
    return sum(
        conn.execute(
            f"SELECT COUNT(*) FROM {table} WHERE project_id = ?", (project_id,)
        ).fetchone()[0]
        for table in ("vms", "volumes", "networks")  # fixed names, never input
    )


def members(conn, project_id):
    """The users of a project, by name: (id, username, role)."""
    return conn.execute(
        "SELECT u.id, u.username, u.role FROM project_members m JOIN users u ON u.id = m.user_id"
        " WHERE m.project_id = ? ORDER BY lower(u.username), u.username",
        (project_id,),
    ).fetchall()


def project_ids_of(conn, user_id):
    """The ids of the projects a user is a member of."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT project_id FROM project_members WHERE user_id = ? ORDER BY project_id",
            (user_id,),
        )
    ]


def add_member(conn, project_id, user_id):
    """Make a user a member of a project; False when they were one already."""
    cur = conn.execute(
        "INSERT INTO project_members (project_id, user_id) VALUES (?, ?)"
        " ON CONFLICT (project_id, user_id) DO NOTHING",
        (project_id, user_id),
    )
    return cur.rowcount == 1


def remove_member(conn, project_id, user_id):
    """End a user's membership of a project; False when they were not a member."""
    cur = conn.execute(
        "DELETE FROM project_members WHERE project_id = ? AND user_id = ?", (project_id, user_id)
    )
    return cur.rowcount == 1
