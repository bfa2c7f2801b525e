"""SQL for the users table."""

from ..db import now

COLUMNS = "id, username, password_hash, role, created_at, last_login"


def get(conn, user_id):
    """The user with this id, or None."""
    return conn.execute(f"SELECT {COLUMNS} FROM users WHERE id = ?", (user_id,)).fetchone()


def by_username(conn, username):
    """The user with this name (case-insensitive), or None."""
    return conn.execute(f"SELECT {COLUMNS} FROM users WHERE username = ?", (username,)).fetchone()


def all_users(conn):
    """Every user, by name."""
    return conn.execute(f"SELECT {COLUMNS} FROM users ORDER BY username").fetchall()


def count(conn, role=None):
    """How many users there are (of one role, if given)."""
    if role:
        return conn.execute("SELECT COUNT(*) FROM users WHERE role = ?", (role,)).fetchone()[0]
    return conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]


def insert(conn, username, password_hash, role):
    """Add a user; returns its id."""
    cur = conn.execute(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
        (username, password_hash, role, now()),
    )
    return cur.lastrowid


def set_password(conn, user_id, password_hash):
    """Replace a user's password hash."""
    conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))


def set_role(conn, user_id, role):
    """Change a user's role."""
    conn.execute("UPDATE users SET role = ? WHERE id = ?", (role, user_id))


def touch_login(conn, user_id):
    """Record a successful login."""
    conn.execute("UPDATE users SET last_login = ? WHERE id = ?", (now(), user_id))


def delete(conn, user_id):
    """Remove a user."""
    conn.execute("DELETE FROM users WHERE id = ?", (user_id,))


def record_login_failure(conn, remote_addr, ts):
    """Remember a failed login from an address (for the rate limit)."""
    conn.execute("INSERT INTO login_failures (remote_addr, ts) VALUES (?, ?)", (remote_addr, ts))


def recent_login_failures(conn, remote_addr, since):
    """How many failed logins came from an address since a time."""
    return conn.execute(
        "SELECT COUNT(*) FROM login_failures WHERE remote_addr = ? AND ts >= ?",
        (remote_addr, since),
    ).fetchone()[0]


def clear_login_failures(conn, remote_addr, before=None):
    """Forget failures from an address (all, or those older than a time)."""
    if before is None:
        conn.execute("DELETE FROM login_failures WHERE remote_addr = ?", (remote_addr,))
    else:
        conn.execute("DELETE FROM login_failures WHERE ts < ?", (before,))
