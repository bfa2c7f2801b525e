"""A PostgreSQL server the tests start themselves: Debian's initdb and postgres, run as the
`postgres` user, listening only on a Unix socket in a temp folder (no system service, no TCP
port), and stopped by pid. Each test gets a fresh database copied from a migrated template.

Copying and dropping a database take the server a tenth of a second per test (CREATE DATABASE's
checkpoints): a worker thread does both beside the tests, one copy ahead, so a test only waits
when the copy it takes is not ready yet.

`NUBE_TEST_DATABASE=postgresql` makes the unit tier's `app` fixture use it (`make test` runs
the unit tier once on SQLite and once this way)."""

import concurrent.futures
import glob
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

import psycopg

BIN_GLOB = "/usr/lib/postgresql/*/bin"
USER = "postgres"
START_TIMEOUT = 30.0
TEMPLATE = "nube_template"


def bin_dir():
    """The newest installed PostgreSQL's bin folder, or None."""
    found = sorted(glob.glob(BIN_GLOB), key=lambda p: int(Path(p).parent.name))
    return Path(found[-1]) if found else None


def unavailable_reason():
    """Why a PostgreSQL server cannot start here, or None."""
    if bin_dir() is None:
        return "PostgreSQL is not installed (make test installs Debian's postgresql)"
    if os.geteuid() != 0:
        return "starting postgres as its own user needs root"
    return None


def _as_postgres(*command, **kwargs):
    """Run a command as the postgres user."""
    return subprocess.run(["runuser", "-u", USER, "--", *command], check=True, **kwargs)


class PostgresServer:
    """One postgres process on a socket in its own temp folder."""

    def __init__(self):
        self.top = Path(tempfile.mkdtemp(prefix="nube-pg-"))
        shutil.chown(self.top, USER, USER)
        self.data = self.top / "data"
        self.socket_dir = self.top / "run"
        self.socket_dir.mkdir()
        shutil.chown(self.socket_dir, USER, USER)
        self.process = None
        self._names = itertools.count(1)
        # one thread, so creating and dropping happen one at a time, in the order asked
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="nube-pg")
        self._next = None  # the copy being made for the next test
        self._drops = []  # drops under way: their errors surface at the next copy

    def start(self):
        """initdb, then postgres; returns once it accepts connections."""
        binaries = bin_dir()
        _as_postgres(
            str(binaries / "initdb"), "-D", str(self.data), "--auth=trust", "--username", USER,
            "--encoding=UTF8", "--locale=C.UTF-8",
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        log = open(self.top / "postgres.log", "ab")  # noqa: SIM115  closed in stop()
        self._log = log
        self.process = subprocess.Popen(
            ["runuser", "-u", USER, "--", str(binaries / "postgres"), "-D", str(self.data),
             "-k", str(self.socket_dir), "-c", "listen_addresses=",
             # a throwaway server: durability buys nothing, speed does
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200"],
            stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    return self
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"postgres did not start: {(self.top / 'postgres.log').read_text()}"
                    ) from None
                time.sleep(0.1)

    def url(self, database):
        """A libpq URL for a database on this server (over its socket)."""
        return f"postgresql://{USER}@/{database}?host={self.socket_dir}"

    def admin(self, sql):
        """Run one statement outside a transaction in the postgres database."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql)

    def create_template(self, migrate):
        """A migrated template database that every test's database is copied from."""
        from app import pg

        self.admin(f"CREATE DATABASE {TEMPLATE}")
        migrate(self.url(TEMPLATE))
        pg.close_pool(self.url(TEMPLATE))  # a template takes no copies while in use
        self.admin(f"ALTER DATABASE {TEMPLATE} WITH ALLOW_CONNECTIONS false")

    def _create(self, template):
        """Create a database copied from template; its URL."""
        name = f"nube_t{os.getpid()}_{next(self._names)}"
        # FILE_COPY: for a small database a file copy is faster than WAL_LOG's (46 vs 74 ms).
        self.admin(f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY")
        return self.url(name)

    def new_database(self, migrated=True):
        """A fresh database, migrated (a copy of the template) or empty; its URL."""
        if not migrated:
            return self._create("template0")
        pending = []
        for drop in self._drops:
            if drop.done():
                drop.result()  # a drop that failed fails the test after it, not silently
            else:
                pending.append(drop)
        self._drops = pending
        ready = self._next or self._worker.submit(self._create, TEMPLATE)
        self._next = self._worker.submit(self._create, TEMPLATE)
        return ready.result()

    def drop_database(self, url):
        """Drop a test's database (on the worker thread), ending whatever still holds a
        connection to it."""
        from app import pg  # the test process's own pooled connections go first

        pg.close_pool(url)
        name = urllib.parse.urlsplit(url).path.lstrip("/")
        self._drops.append(
            self._worker.submit(self.admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        )

    def stop(self):
        """Stop postgres by pid (fast shutdown) and delete its folder."""
        self._worker.shutdown(wait=True, cancel_futures=True)
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # SIGINT: postgres's fast shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if getattr(self, "_log", None):
            self._log.close()
        shutil.rmtree(self.top, ignore_errors=True)
