"""SQL for the users table."""

from .. import states
from ..db import now

COLUMNS = "id, username, password_hash, role, created_at, last_login"


def get(conn, user_id):
    """The user with this id, or None."""
    return conn.execute(f"SELECT {COLUMNS} FROM users WHERE id = ?", (user_id,)).fetchone()


def by_username(conn, username):
    """The user with this name (case-insensitive), or None."""
    # lower() on both sides: SQLite's NOCASE column and PostgreSQL's lower(username) index
    return conn.execute(
        f"SELECT {COLUMNS} FROM users WHERE lower(username) = lower(?)", (username,)
    ).fetchone()


def all_users(conn):
    """Every user, by name."""
    return conn.execute(
        f"SELECT {COLUMNS} FROM users ORDER BY lower(username), username"
    ).fetchall()


def count(conn, role=None):
    """How many users there are (of one role, if given)."""
    if role:
        return conn.execute("SELECT COUNT(*) FROM users WHERE role = ?", (role,)).fetchone()[0]
    return conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]


def insert(conn, username, password_hash, role):
    """Add a user; returns its id."""
    cur = conn.execute(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)"
        " RETURNING id",
        (username, password_hash, role, now()),
    )
    return cur.fetchone()[0]


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


def prune_login_attempts(conn, before):
    """Forget login attempts older than a time (they no longer count)."""
    conn.execute("DELETE FROM login_attempts WHERE ts < ?", (before,))


def login_attempt_counts(conn, username, remote_addr, since):
    """Attempts (failed or still being checked) since a time: (this account from this address,
    this account from anywhere, this address for any account)."""
    row = conn.execute(
        "SELECT"
        " COALESCE(SUM(CASE WHEN username = ? AND remote_addr = ? THEN 1 ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN username = ? THEN 1 ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN remote_addr = ? THEN 1 ELSE 0 END), 0)"
        " FROM login_attempts WHERE ts >= ? AND (username = ? OR remote_addr = ?)",
        (username, remote_addr, username, remote_addr, since, username, remote_addr),
    ).fetchone()
    return tuple(row)


def reserve_login_attempt(conn, username, remote_addr, ts):
    """Count an attempt before its password is checked (so parallel guesses count); its id."""
    cur = conn.execute(
        "INSERT INTO login_attempts (username, remote_addr, ts, outcome)"
        " VALUES (?, ?, ?, ?) RETURNING id",
        (username, remote_addr, ts, states.LOGIN_PENDING),
    )
    return cur.fetchone()[0]


def fail_login_attempt(conn, attempt_id):
    """A reserved attempt whose password was wrong: it stays counted."""
    conn.execute(
        "UPDATE login_attempts SET outcome = ? WHERE id = ?", (states.LOGIN_FAILED, attempt_id)
    )


def clear_login_attempts(conn, attempt_id, username, remote_addr):
    """A right password: this attempt and the account's earlier ones from this address go (the
    address's failures on other accounts stay)."""
    conn.execute(
        "DELETE FROM login_attempts WHERE id = ? OR (username = ? AND remote_addr = ?)",
        (attempt_id, username, remote_addr),
    )


def insert_session(conn, token_hash, user_id, remote_addr):
    """Record a new login session; returns its id."""
    stamp = now()
    cur = conn.execute(
        "INSERT INTO user_sessions (token_hash, user_id, created_at, last_seen, remote_addr)"
        " VALUES (?, ?, ?, ?, ?) RETURNING id",
        (token_hash, user_id, stamp, stamp, remote_addr),
    )
    return cur.fetchone()[0]


def session_user(conn, token_hash, user_id, created_after, seen_after):
    """The user of a live session (this hash, this user, created and last used after the times
    given), or None."""
    return conn.execute(
        f"SELECT {', '.join('u.' + c for c in COLUMNS.split(', '))}, s.last_seen AS session_seen"
        " FROM user_sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.token_hash = ? AND s.user_id = ? AND s.created_at > ? AND s.last_seen > ?",
        (token_hash, user_id, created_after, seen_after),
    ).fetchone()


def touch_session(conn, token_hash):
    """Note that a session was used now."""
    conn.execute("UPDATE user_sessions SET last_seen = ? WHERE token_hash = ?", (now(), token_hash))


def delete_session(conn, token_hash):
    """End one session."""
    conn.execute("DELETE FROM user_sessions WHERE token_hash = ?", (token_hash,))


def delete_sessions(conn, user_id):
    """End every session of a user."""
    conn.execute("DELETE FROM user_sessions WHERE user_id = ?", (user_id,))


def prune_sessions(conn, created_before):
    """Forget sessions past their lifetime."""
    conn.execute("DELETE FROM user_sessions WHERE created_at <= ?", (created_before,))
