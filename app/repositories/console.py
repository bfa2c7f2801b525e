"""SQL for the console_tokens table (single-use console links; only their hash is stored)."""

from ..db import now

_SELECT = """
SELECT t.id, t.token_hash, t.user_id, u.username, t.vm_id, t.created_at, t.expires_at,
       t.used_at, t.used_from
FROM console_tokens t JOIN users u ON u.id = t.user_id
"""


def insert(conn, token_hash, user_id, vm_id, expires_at):
    """Store a new console token; returns its id."""
    cur = conn.execute(
        "INSERT INTO console_tokens (token_hash, user_id, vm_id, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?) RETURNING id",
        (token_hash, user_id, vm_id, now(), expires_at),
    )
    return cur.fetchone()[0]


def get(conn, token_hash):
    """The token with this hash and its user's name, or None (also when the user is gone)."""
    return conn.execute(f"{_SELECT} WHERE t.token_hash = ?", (token_hash,)).fetchone()


def consume(conn, token_hash, at, remote_addr):
    """Mark an unused, unexpired token used (compare-and-swap); whether this call did it."""
    cur = conn.execute(
        "UPDATE console_tokens SET used_at = ?, used_from = ?"
        " WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
        (at, remote_addr, token_hash, at),
    )
    return cur.rowcount == 1


def delete_expired(conn, before):
    """Forget tokens that expired before a time (used or not: they can open nothing)."""
    conn.execute("DELETE FROM console_tokens WHERE expires_at < ?", (before,))
