"""SQL for VM snapshots (snapshots) and the volumes each one holds (snapshot_volumes)."""

from ..db import now
from ..states import READY

_SELECT = """
SELECT s.id, s.vm_id AS vm, s.name, s.state, s.frozen, s.size, s.created_by, s.created_at
FROM snapshots s
"""


def add(conn, vm_id, name, actor, size, volumes):
    """Record a snapshot being taken of a VM (state creating) with the volumes it holds
    ([(name, target)]); its id. A name the VM already has breaks the UNIQUE constraint."""
    snapshot_id = conn.execute(
        "INSERT INTO snapshots (vm_id, name, state, size, created_by, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (vm_id, name, "creating", size, actor, now()),
    ).fetchone()[0]
    for volume, target in volumes:
        conn.execute(
            "INSERT INTO snapshot_volumes (snapshot_id, volume, target) VALUES (?, ?, ?)",
            (snapshot_id, volume, target),
        )
    return snapshot_id


def get(conn, vm_id, name):
    """A VM's snapshot by name, or None."""
    return conn.execute(f"{_SELECT} WHERE s.vm_id = ? AND s.name = ?", (vm_id, name)).fetchone()


def of_vm(conn, vm_id):
    """A VM's snapshots, oldest first."""
    return conn.execute(
        f"{_SELECT} WHERE s.vm_id = ? ORDER BY s.created_at, s.id", (vm_id,)
    ).fetchall()


def names_of_vm(conn, vm_id):
    """The names of a VM's snapshots, oldest first."""
    return [row["name"] for row in of_vm(conn, vm_id)]


def volumes_of(conn, snapshot_id):
    """The volumes a snapshot holds: rows of (volume, target), by target."""
    return conn.execute(
        "SELECT volume, target FROM snapshot_volumes WHERE snapshot_id = ?"
        " ORDER BY length(target), target",
        (snapshot_id,),
    ).fetchall()


def holding_volume(conn, volume):
    """The snapshots (vm, name) that hold a volume."""
    return conn.execute(
        "SELECT s.vm_id AS vm, s.name FROM snapshots s"
        " JOIN snapshot_volumes v ON v.snapshot_id = s.id WHERE v.volume = ? ORDER BY s.id",
        (volume,),
    ).fetchall()


def set_state(conn, snapshot_id, state):
    """Set a snapshot's state."""
    conn.execute("UPDATE snapshots SET state = ? WHERE id = ?", (state, snapshot_id))


def set_taken(conn, snapshot_id, frozen, size):
    """Mark a snapshot ready, with whether the guest's file systems were frozen (None: the VM
    was stopped) and the bytes its files held."""
    conn.execute(
        "UPDATE snapshots SET state = ?, frozen = ?, size = ? WHERE id = ?",
        (READY, None if frozen is None else int(frozen), size, snapshot_id),
    )


def delete(conn, snapshot_id):
    """Forget a snapshot (and the volumes it held)."""
    conn.execute("DELETE FROM snapshot_volumes WHERE snapshot_id = ?", (snapshot_id,))
    conn.execute("DELETE FROM snapshots WHERE id = ?", (snapshot_id,))


def delete_of_vm(conn, vm_id):
    """Forget every snapshot of a VM (its files are gone or no longer hold them)."""
    conn.execute(
        "DELETE FROM snapshot_volumes WHERE snapshot_id IN"
        " (SELECT id FROM snapshots WHERE vm_id = ?)",
        (vm_id,),
    )
    conn.execute("DELETE FROM snapshots WHERE vm_id = ?", (vm_id,))


def project_of(conn, snapshot_id):
    """The project of a snapshot's VM (None when either is gone)."""
    row = conn.execute(
        "SELECT v.project_id FROM snapshots s JOIN vms v ON v.id = s.vm_id WHERE s.id = ?",
        (snapshot_id,),
    ).fetchone()
    return row[0] if row else None
