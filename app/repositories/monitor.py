"""SQL for what the monitor records: drift and host capacity samples."""

from ..db import now

SAMPLES_KEPT = 288  # a day of samples at the default 5-minute chart resolution


def note_drift(conn, host_id, kind, name):
    """Record (or refresh) one drift finding."""
    stamp = now()
    conn.execute(
        "INSERT INTO drift (host_id, kind, name, detected_at, last_seen) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (host_id, kind, name) DO UPDATE SET last_seen = excluded.last_seen",
        (host_id, kind, name, stamp, stamp),
    )


def clear_drift(conn, host_id, keep):
    """Forget a host's drift findings that this pass no longer sees; keep: {(kind, name)}."""
    rows = conn.execute("SELECT id, kind, name FROM drift WHERE host_id = ?", (host_id,))
    stale = [row["id"] for row in rows if (row["kind"], row["name"]) not in keep]
    conn.executemany("DELETE FROM drift WHERE id = ?", [(i,) for i in stale])


def add_sample(conn, host_id, free_mem, vm_count, running):
    """Append a capacity sample and trim the host's oldest beyond SAMPLES_KEPT."""
    conn.execute(
        "INSERT INTO host_samples (host_id, ts, free_mem, vm_count, running) VALUES (?, ?, ?, ?, ?)",
        (host_id, now(), free_mem, vm_count, running),
    )
    conn.execute(
        "DELETE FROM host_samples WHERE host_id = ? AND id <= (SELECT id FROM host_samples"
        " WHERE host_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
        (host_id, host_id, SAMPLES_KEPT),
    )


def samples(conn, host_id, limit=SAMPLES_KEPT):
    """A host's newest samples, oldest first."""
    rows = conn.execute(
        "SELECT ts, free_mem, vm_count, running FROM host_samples WHERE host_id = ?"
        " ORDER BY id DESC LIMIT ?",
        (host_id, limit),
    ).fetchall()
    return list(reversed(rows))
