"""The monitor's lease: which one of the consumers runs the monitor, kept in the queue's storage.

huey's `lock_task` has no expiry here (its TTL needs Redis 7.4 with RedisHuey, Debian 12 ships
7.0, and SqliteHuey has none), so a consumer stopped while it held the lock (SIGKILL, or the
SIGTERM `make run` sends, which ends huey's worker threads without their `finally`) left it
held for good and no consumer ever ran the monitor or recovery again. A lease instead expires
unless its holder renews it, and one held by a dead process of this machine is taken at once.
"""

import logging
import math
import secrets
import sqlite3
import threading
import time
from contextlib import closing

from huey.storage import RedisStorage, SqliteStorage

from .recovery import alive_here
from .runner import worker_name

log = logging.getLogger(__name__)


class Lease:
    """A named lease held by one `host:pid:nonce` token at a time, for ttl seconds a renewal."""

    def __init__(self, name, ttl):
        self.name = name
        self.ttl = ttl

    def acquire(self):
        """Take the lease; its token, or None when a live holder has it."""
        holder = self._holder()
        # a holder of this machine whose process is gone will never renew: no need to wait
        dead = holder if holder and not alive_here(holder.rpartition(":")[0]) else ""
        token = f"{worker_name()}:{secrets.token_hex(4)}"
        return token if self._take(token, dead) else None

    def renew(self, token):
        """Extend the lease (or retake it, expired but still free); False if another has it."""
        return self._take(token, token)

    def release(self, token):
        """Give the lease back, if it is still this token's."""
        self._drop(token)

    def _holder(self):
        """The token holding the lease (unexpired), or None."""
        raise NotImplementedError

    def _take(self, token, holder):
        """Atomically hold the lease for ttl if it is free, expired or held by `holder`."""
        raise NotImplementedError

    def _drop(self, token):
        """Atomically free token's lease."""
        raise NotImplementedError

    def last_pass(self, now=None):
        """When the last monitor pass ended (epoch seconds; 0 for never). Whoever can write the
        queue's storage can write this value: anything but a finite time not after `now` (nan,
        inf, a future time, text) counts as no pass, so the next pass is made at once."""
        raw = self._last_pass()
        if raw is None:
            return 0.0
        now = time.time() if now is None else now
        try:
            moment = float(raw)
        except (TypeError, ValueError):
            moment = math.nan
        if math.isfinite(moment) and moment <= now:
            return moment
        log.warning("monitor lease %s: ignoring its last pass %.40r", self.name, raw)
        return 0.0

    def _last_pass(self):
        """The recorded end of the last pass as stored (unchecked), or None."""
        raise NotImplementedError

    def mark_pass(self, moment):
        """Record when a monitor pass ended."""
        raise NotImplementedError


# Redis expires the key itself (its own clock, so the consumers' clocks need not agree).
_TAKE = """local held = redis.call('get', KEYS[1])
-- a key without an expiry was never a lease of Nube's: it blocks nobody
if held and held ~= ARGV[2] and redis.call('pttl', KEYS[1]) ~= -1 then return 0 end
redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[3])
return 1"""
_DROP = """if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('del', KEYS[1])"""


class RedisLease(Lease):
    """A lease as a Redis key with an expiry, changed only by Lua compare-and-set scripts."""

    def __init__(self, conn, name, ttl):
        super().__init__(name, ttl)
        self.conn = conn
        self.key = f"nube.lease.{name}"
        self.pass_key = f"nube.lease.{name}.last-pass"
        self._take_script = conn.register_script(_TAKE)
        self._drop_script = conn.register_script(_DROP)

    def _ms(self):
        return int(self.ttl * 1000)

    def _holder(self):
        value = self.conn.get(self.key)
        return value.decode(errors="replace") if value else None

    def _take(self, token, holder):
        return bool(self._take_script(keys=[self.key], args=[token, holder, self._ms()]))

    def _drop(self, token):
        self._drop_script(keys=[self.key], args=[token])

    def _last_pass(self):
        value = self.conn.get(self.pass_key)
        return value.decode(errors="replace") if value is not None else None

    def mark_pass(self, moment):
        self.conn.set(self.pass_key, repr(moment))


_TABLE = (
    "CREATE TABLE IF NOT EXISTS nube_lease (name TEXT PRIMARY KEY, holder TEXT,"
    " expires REAL NOT NULL DEFAULT 0, last_pass REAL NOT NULL DEFAULT 0)"
)


class SqliteLease(Lease):
    """A lease as a row beside huey's tables in the queue's file, changed by compare-and-set."""

    def __init__(self, path, name, ttl):
        super().__init__(name, ttl)
        self.path = path
        self._execute(_TABLE)

    def _execute(self, sql, params=()):
        """Run one statement in autocommit; (rows changed, first row)."""
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as conn:
            cur = conn.execute(sql, params)
            return cur.rowcount, cur.fetchone()

    def _holder(self):
        _, row = self._execute(
            "SELECT holder FROM nube_lease WHERE name = ? AND expires >= ?",
            (self.name, time.time()),
        )
        return row[0] if row else None

    def _take(self, token, holder):
        now = time.time()
        changed, _ = self._execute(
            "INSERT INTO nube_lease (name, holder, expires) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires"
            " WHERE nube_lease.holder IS NULL OR nube_lease.expires < ? OR nube_lease.holder = ?",
            (self.name, token, now + self.ttl, now, holder),
        )
        return changed == 1

    def _drop(self, token):
        self._execute(
            "UPDATE nube_lease SET holder = NULL, expires = 0 WHERE name = ? AND holder = ?",
            (self.name, token),
        )

    def _last_pass(self):
        _, row = self._execute("SELECT last_pass FROM nube_lease WHERE name = ?", (self.name,))
        return row[0] if row else None

    def mark_pass(self, moment):
        self._execute(
            "INSERT INTO nube_lease (name, last_pass) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET last_pass = excluded.last_pass",
            (self.name, moment),
        )


class LocalLease(Lease):
    """A lease within this process (huey's in-memory queue: there is no other consumer)."""

    def __init__(self, name, ttl):
        super().__init__(name, ttl)
        self._lock = threading.Lock()
        self._token, self._expires, self._passed = None, 0.0, None

    def _holder(self):
        with self._lock:
            return self._token if self._expires >= time.time() else None

    def _take(self, token, holder):
        with self._lock:
            if self._token and self._expires >= time.time() and self._token != holder:
                return False
            self._token, self._expires = token, time.time() + self.ttl
            return True

    def _drop(self, token):
        with self._lock:
            if self._token == token:
                self._token, self._expires = None, 0.0

    def _last_pass(self):
        return self._passed

    def mark_pass(self, moment):
        self._passed = moment


def make_lease(huey, name, ttl):
    """The lease kept where this huey instance keeps its queue."""
    storage = huey.storage
    if isinstance(storage, RedisStorage):
        return RedisLease(storage.conn, name, ttl)
    if isinstance(storage, SqliteStorage):
        return SqliteLease(storage.filename, name, ttl)
    return LocalLease(name, ttl)
