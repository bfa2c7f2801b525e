"""SQL for the images table (what Nube knows beyond the files themselves)."""

from ..db import now


def all_records(conn):
    """{name: row} of every image record."""
    rows = conn.execute("SELECT name, description, uploaded_by, created_at FROM images")
    return {row["name"]: row for row in rows}


def upsert(conn, name, description, uploaded_by):
    """Record who added an image and what it is."""
    conn.execute(
        "INSERT INTO images (name, description, uploaded_by, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET description = excluded.description",
        (name, description, uploaded_by, now()),
    )


def delete(conn, name):
    """Forget an image's record."""
    conn.execute("DELETE FROM images WHERE name = ?", (name,))
