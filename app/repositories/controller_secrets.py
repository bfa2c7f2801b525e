"""SQL for the controller_secrets table (values are ciphertext; app/services/shared_keys.py)."""

from ..db import now


def get(conn, name):
    """A secret's ciphertext, or None."""
    row = conn.execute(
        "SELECT value_enc FROM controller_secrets WHERE name = ?", (name,)
    ).fetchone()
    return row[0] if row else None


def add_if_absent(conn, name, value_enc):
    """Store a secret unless another controller stored it first (the first one wins)."""
    conn.execute(
        "INSERT INTO controller_secrets (name, value_enc, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO NOTHING",
        (name, value_enc, now()),
    )


def names(conn):
    """The names of the stored secrets."""
    return [row[0] for row in conn.execute("SELECT name FROM controller_secrets ORDER BY name")]
