"""SQL for the audit table."""

from ..db import now
from ..filter_language import Column, compile_filter

FILTER_COLUMNS = {
    "actor": Column("actor"),
    "action": Column("action"),
    "target": Column("target"),
    "remote_addr": Column("remote_addr"),
    "ts": Column("ts"),
}
# where a bare word in the filter looks (a search box's words: names, states)
SEARCH_COLUMNS = ("actor", "action", "target")


def add(conn, actor, action, target=None, detail=None, remote_addr=None):
    """Append one audit record."""
    conn.execute(
        "INSERT INTO audit (ts, actor, action, target, detail, remote_addr)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (now(), actor, action, target, detail, remote_addr),
    )


def page(conn, query="", limit=50, offset=0):
    """(rows, total) of audit records matching a filter, newest first."""
    where, params = compile_filter(query, FILTER_COLUMNS, SEARCH_COLUMNS)
    clause = f" WHERE {where}" if where else ""
    total = conn.execute(f"SELECT COUNT(*) FROM audit{clause}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT id, ts, actor, action, target, detail, remote_addr FROM audit{clause}"
        " ORDER BY id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    return rows, total


def logged_in_from(conn, username, remote_addr, since):
    """Whether a user logged in successfully from an address since a time."""
    return (
        conn.execute(
            "SELECT 1 FROM audit WHERE lower(actor) = lower(?) AND action = 'login'"
            " AND remote_addr = ?"
            " AND ts >= ? LIMIT 1",
            (username, remote_addr, since),
        ).fetchone()
        is not None
    )
