"""SQL for the images table (what Nube knows beyond the files themselves)."""

from ..db import now

# where an image came from: the source column's words
SOURCES = ("build", "upload", "import", "vm")


def all_records(conn):
    """{name: row} of every image record."""
    rows = conn.execute(
        "SELECT name, description, uploaded_by, created_at, os, sha256, source, source_url"
        " FROM images"
    )
    return {row["name"]: row for row in rows}


def record(
    conn, name, *, uploaded_by, source, description="", os=None, checksum=None, source_url=None
):
    """Record an image Nube has just written into images/: who, what it is (os, e.g.
    debian-12), its file's SHA-256 (checksum, hex) and where it came from (one of SOURCES;
    source_url for an import). Replaces an older record of the name (one a file deleted by
    hand left behind)."""
    if source not in SOURCES:
        raise ValueError(f"unknown image source {source!r}")
    conn.execute(
        "INSERT INTO images (name, description, uploaded_by, created_at, os, sha256, source,"
        " source_url) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET description = excluded.description,"
        " uploaded_by = excluded.uploaded_by, created_at = excluded.created_at,"
        " os = excluded.os, sha256 = excluded.sha256, source = excluded.source,"
        " source_url = excluded.source_url",
        (name, description, uploaded_by, now(), os, checksum, source, source_url),
    )


def delete(conn, name):
    """Forget an image's record."""
    conn.execute("DELETE FROM images WHERE name = ?", (name,))
