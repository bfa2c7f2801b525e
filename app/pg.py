"""PostgreSQL behind the sqlite3 interface the repositories use: `?` placeholders, rows read by
name or position, `execute` on the connection, autocommit outside explicit transactions.

The repositories' SQL is written once, in the subset both engines speak (RETURNING ids,
CASE instead of boolean sums, quoted "user", explicit NULLS FIRST/LAST); this module only
bridges the driver's differences, never rewrites a query's meaning.
"""

import ipaddress
import os
import re
import threading

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import BaseRowFactory
from psycopg_pool import ConnectionPool

from .errors import InvalidInput

SCHEMES = ("postgresql://", "postgres://")
# One number every Nube process agrees on: the advisory lock that serializes write sections
# the way SQLite's BEGIN IMMEDIATE does, and the one that serializes migrations.
WRITE_LOCK = 0x6E756265  # "nube"
MIGRATE_LOCK = WRITE_LOCK + 1
# a quoted string or identifier (passed through untouched), a placeholder, or a percent sign
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?|%")


def is_url(database):
    """Whether a DATABASE setting names a PostgreSQL server."""
    return isinstance(database, str) and database.startswith(SCHEMES)


def network_hosts(url, environ):
    """The hosts a PostgreSQL URL reaches over the network (not a Unix socket, not a loopback
    address), with libpq's PGHOST/PGHOSTADDR/PGSERVICE taken where the URL says nothing, and
    the sslmode it uses; ValueError (saying nothing of the URL) when libpq cannot read it."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        raise ValueError("DATABASE is not a URL libpq can read") from None
    for key in ("host", "hostaddr", "sslmode", "service"):
        if key not in params and environ.get(f"PG{key.upper()}"):
            params[key] = environ[f"PG{key.upper()}"]
    # libpq connects to hostaddr when it is given (host then only names the certificate)
    targets = (params.get("hostaddr") or params.get("host") or "").split(",")
    remote = [target for target in targets if not _is_local(target.strip())]
    if params.get("service"):  # a service file may name any host: count it as remote
        remote.append(f"service {params['service']}")
    return remote, params.get("sslmode", "")


def _is_local(target):
    """Whether one libpq host is a Unix socket (a path, or empty: libpq's default socket) or a
    loopback address."""
    if not target or target.startswith(("/", "@")) or target.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(target).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def placeholders(sql):
    """sqlite3's `?` placeholders as psycopg's `%s` (and a literal `%` as `%%`), outside
    quoted strings and identifiers."""

    def swap(match):
        token = match.group(0)
        if token == "?":
            return "%s"
        return token.replace("%", "%%")  # psycopg reads every % as a placeholder, quoted or not

    return _TOKENS.sub(swap, sql)


def _param(value):
    """A parameter as SQLite would store it: booleans are the integers 0 and 1. Text with a
    NUL, which PostgreSQL cannot store, is refused as bad input (not a server error)."""
    if isinstance(value, str) and "\x00" in value:
        raise InvalidInput("text must not contain NUL characters")
    return int(value) if isinstance(value, bool) else value


class Row(tuple):
    """A result row read by position, by column name, or as a dict (like sqlite3.Row)."""

    __slots__ = ()
    _names: tuple = ()

    def __getitem__(self, key):
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._names.index(key))
            except ValueError:
                raise IndexError(f"no such column: {key}") from None
        return tuple.__getitem__(self, key)

    def keys(self):
        """The column names, in order."""
        return list(self._names)


def _row_factory(cursor) -> BaseRowFactory:
    """psycopg's row factory: Row subclasses that know this result's column names."""
    names = tuple(column.name for column in cursor.description or ())
    row_class = type("Row", (Row,), {"__slots__": (), "_names": names})
    return row_class


class Cursor:
    """What `execute` returns: fetchone, fetchall, iteration and rowcount."""

    def __init__(self, cursor):
        self._cursor = cursor
        self.rowcount = cursor.rowcount

    def fetchone(self):
        """The next row, or None."""
        return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self):
        """Every remaining row."""
        return self._cursor.fetchall() if self._cursor.description else []

    def __iter__(self):
        return iter(self.fetchall())


# A new connection costs about 4 ms per request (a backend process with cold caches); each
# process keeps a few open instead. Keyed by pid too: a forked child never shares its
# parent's sockets.
POOL_SIZE = 32  # connections one process may hold at once (web threads, workers, beats)
LOCK_TIMEOUT = 30  # seconds: SQLite's busy_timeout, then an error rather than a hang
_pools = {}
_pools_lock = threading.Lock()


def _configure(conn):
    """Every new pooled connection: autocommit, Nube's rows, a bounded lock wait."""
    conn.autocommit = True
    conn.row_factory = _row_factory
    conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}s'")


def _reset(conn):
    """A connection given back: out of any transaction a failure left open."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.rollback()


def pool(url):
    """This process's pool of connections to a database."""
    key = (os.getpid(), url)
    with _pools_lock:
        if key not in _pools:
            _pools[key] = ConnectionPool(
                url,
                min_size=1,
                max_size=POOL_SIZE,
                configure=_configure,
                reset=_reset,
                timeout=LOCK_TIMEOUT,
                kwargs={"connect_timeout": LOCK_TIMEOUT},
                open=True,
                name="nube",
            )
        return _pools[key]


def close_pool(url):
    """Close this process's pool of a database (before it is dropped: a purge, a test)."""
    with _pools_lock:
        found = _pools.pop((os.getpid(), url), None)
    if found is not None:
        found.close()


class Connection:
    """A pooled psycopg connection that speaks like Nube's sqlite3 connections; close()
    gives it back to the pool."""

    dialect = "postgresql"

    def __init__(self, url):
        self._pool = pool(url)
        self._conn = self._pool.getconn()

    def execute(self, sql, params=()):
        """Run one statement with `?` parameters."""
        cursor = self._conn.execute(placeholders(sql), [_param(p) for p in params])
        return Cursor(cursor)

    def executemany(self, sql, rows):
        """Run one statement once per parameter row."""
        with self._conn.cursor() as cursor:
            cursor.executemany(placeholders(sql), [[_param(p) for p in row] for row in rows])

    def begin_write(self):
        """Start a write section: a transaction holding Nube's write lock until it ends."""
        self._conn.execute("BEGIN")
        self._conn.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK])

    def close(self):
        """Give the connection back to the pool (once)."""
        if self._conn is not None:
            self._pool.putconn(self._conn)
            self._conn = None

    def __del__(self):
        # a wrapper dropped without close() must not keep its pool's connection for good
        if getattr(self, "_conn", None) is not None and not self._pool.closed:
            self.close()


ERRORS = (psycopg.Error,)
