"""SQL for the user_keys table: each user's SSH public keys."""

from ..db import now

COLUMNS = "id, user_id, name, public_key, fingerprint, created_at"


def of_user(conn, user_id):
    """A user's keys, by name."""
    return conn.execute(
        f"SELECT {COLUMNS} FROM user_keys WHERE user_id = ? ORDER BY name, id", (user_id,)
    ).fetchall()


def find(conn, user_id, *, name=None, fingerprint=None):
    """A user's key with this name or fingerprint, or None."""
    column, value = ("name", name) if name is not None else ("fingerprint", fingerprint)
    return conn.execute(
        f"SELECT {COLUMNS} FROM user_keys WHERE user_id = ? AND {column} = ?", (user_id, value)
    ).fetchone()


def insert(conn, user_id, name, public_key, fingerprint):
    """Add a key; returns its id."""
    cur = conn.execute(
        "INSERT INTO user_keys (user_id, name, public_key, fingerprint, created_at)"
        " VALUES (?, ?, ?, ?, ?) RETURNING id",
        (user_id, name, public_key, fingerprint, now()),
    )
    return cur.fetchone()[0]


def delete(conn, user_id, key_id):
    """Remove one of a user's keys; False when they have no key with this id."""
    cur = conn.execute("DELETE FROM user_keys WHERE id = ? AND user_id = ?", (key_id, user_id))
    return cur.rowcount == 1
