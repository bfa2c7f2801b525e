"""SQLite connections: one per app context (request or worker), WAL, foreign keys on."""

import sqlite3
import threading
from datetime import UTC, datetime

from flask import current_app, g

from .migrations import migrate

_migrated = set()
_migrate_lock = threading.Lock()


STAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # every table stores times as this text (UTC)


def stamp(moment):
    """A time in the ISO-8601 form every table stores (comparable as text)."""
    return moment.strftime(STAMP_FORMAT)


def now():
    """The current UTC time as the ISO-8601 text every table stores."""
    return stamp(datetime.now(UTC))


def connect(path):
    """Open a connection with the pragmas every Nube connection needs."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def ensure_schema(path):
    """Migrate the database at path once per process."""
    with _migrate_lock:
        if path in _migrated:
            return
        conn = connect(path)
        try:
            migrate(conn)
        finally:
            conn.close()
        _migrated.add(path)


def forget_schema(path):
    """Forget that a (deleted) database was migrated, so a new one at path is migrated again."""
    with _migrate_lock:
        _migrated.discard(path)


def get_db():
    """The connection of the current app context, opened on first use."""
    if "db" not in g:
        path = current_app.config["DATABASE"]
        ensure_schema(path)
        g.db = connect(path)
    return g.db


def close_db(_exc=None):
    """Close the app context's connection, if it opened one."""
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


class transaction:
    """`with transaction(conn):` runs a block in BEGIN IMMEDIATE … COMMIT, rolling back on error."""

    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        # IMMEDIATE takes the write lock up front, so check-then-write blocks never interleave.
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        return False


def init_app(app):
    """Register connection teardown on the app."""
    app.teardown_appcontext(close_db)
