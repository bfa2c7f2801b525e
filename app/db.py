"""Database connections: one per app context (request or worker). SQLite by default (WAL,
foreign keys on); a `postgresql://` DATABASE goes through app.pg, with the same SQL."""

import contextlib
import os
import sqlite3
import threading
import time
from datetime import UTC, datetime

from flask import current_app, g

from . import pg
from .migrator import drop_all, migrate

_migrated = set()
_migrate_lock = threading.Lock()


STAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # every table stores times as this text (UTC)


def stamp(moment):
    """A time in the ISO-8601 form every table stores (comparable as text)."""
    return moment.strftime(STAMP_FORMAT)


def now():
    """The current UTC time as the ISO-8601 text every table stores."""
    return stamp(datetime.now(UTC))


# What a failing statement raises, whichever engine runs it.
ERRORS = (sqlite3.Error, *pg.ERRORS)


def nulls_order(descending, nullable):
    """ASC or DESC; for a column that may be NULL, with SQLite's place for NULLs (first going
    up) spelled out for PostgreSQL. Only there: a NULLS clause keeps PostgreSQL from reading a
    NOT NULL column in its index's order."""
    if not nullable:
        return "DESC" if descending else "ASC"
    return "DESC NULLS LAST" if descending else "ASC NULLS FIRST"


def connect(path):
    """Open a connection: PostgreSQL for a URL, else SQLite with the pragmas Nube needs."""
    if pg.is_url(path):
        return pg.Connection(path)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 30000")
    _use_wal(conn)
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _use_wal(conn, timeout=30.0):
    """Switch a connection's database to WAL. The switch takes no busy handler: while another
    process writes to a new database (several starting at once), it is retried here."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


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


def drop_database(path):
    """Purge: delete the SQLite file and its WAL companions, or drop Nube's PostgreSQL tables."""
    if pg.is_url(path):
        conn = connect(path)
        try:
            drop_all(conn)
        finally:
            conn.close()
        pg.close_pool(path)
    else:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path + suffix)
    forget_schema(path)


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
    """`with transaction(conn):` runs a block as one writer (SQLite's BEGIN IMMEDIATE, or
    PostgreSQL's advisory write lock) … COMMIT, rolling back on error."""

    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        # IMMEDIATE takes the write lock up front, so check-then-write blocks never interleave;
        # PostgreSQL takes Nube's advisory lock for the same effect across every controller.
        begin_write = getattr(self.conn, "begin_write", None)
        if begin_write is not None:
            begin_write()
        else:
            self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        return False


def init_app(app):
    """Register connection teardown on the app."""
    app.teardown_appcontext(close_db)
