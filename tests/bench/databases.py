"""The VM list page at 10,000 VMs and the operations throughput, on SQLite and on PostgreSQL.

Both engines get the same rows (populate.py, through the repositories), the same gunicorn
(1 worker, 1 thread) and the same consumer; only NUBE_DATABASE differs. PostgreSQL is a
throwaway server from tests/pg_server.py (fsync off: a bench, not a durability test), started
and stopped by pid here, each measurement on its own fresh database copied from a migrated
template. The PostgreSQL database is ANALYZEd after populating, the state autovacuum reaches
on its own a minute later.
"""

import statistics
import tempfile
import time
from pathlib import Path

from app.db import connect, ensure_schema
from app.repositories import vms as vms_repo
from tests import pg_server
from tests.bench import ops as ops_bench
from tests.bench.http import Session
from tests.bench.populate import populate
from tests.processes import Server

VMS = 10_000
HOSTS = 200
RUNS = 100
WARMUP = 5
FILTER = "state = 'error' AND mem >= 512"
PAGES = {"page_1": "/vms/", "filtered": "/vms/?" + Session.encode({"q": FILTER})}
WORKERS = (1, 4)
CONNECTS = 200
ENGINES = ("sqlite", "postgresql")


def _summary(values):
    """Median and p95 of a list of milliseconds."""
    return {
        "median": round(statistics.median(values), 2),
        "p95": round(statistics.quantiles(values, n=20)[18], 2),
    }


def _page(session, path):
    """Server time (Server-Timing) and wall time of a page over RUNS requests."""
    for _ in range(WARMUP):
        session.get(path)
    responses = [session.get(path) for _ in range(RUNS)]
    return {
        "server_ms": _summary([r.server_ms for r in responses]),
        "wall_ms": _summary([r.client_ms for r in responses]),
    }


def _analyze(database):
    """Refresh PostgreSQL's planner statistics (SQLite is left as Nube leaves it)."""
    conn = connect(database)
    try:
        conn.execute("ANALYZE")
    finally:
        conn.close()


def list_page(environment, database):
    """The VM list page, plain and filtered, at VMS VMs on `database` (None: SQLite)."""
    with tempfile.TemporaryDirectory(prefix="nube-bench-db-") as tmp:
        env = environment(Path(tmp))
        if database:
            env["NUBE_DATABASE"] = database
        started = time.perf_counter()
        populate(env, hosts=HOSTS, vms=VMS)
        populate_s = time.perf_counter() - started
        if database:
            _analyze(database)
        server = Server(env)
        try:
            session = Session(server.url)
            session.login("bench", "bench-password")
            pages = {name: _page(session, path) for name, path in PAGES.items()}
        finally:
            server.stop()
        connection = connection_cost(env["NUBE_DATABASE"])
    return {**pages, "populate_s": round(populate_s, 2), "connection": connection}


def _ms(work, times):
    """Run work, appending its duration in ms to times."""
    started = time.perf_counter()
    work()
    times.append((time.perf_counter() - started) * 1000)


def _list_queries(conn):
    """The VM list page's own two queries: the count and page 1."""
    vms_repo.count(conn)
    vms_repo.search(conn, limit=50)


def _fresh_list_queries(database):
    """Open a connection, run the list page's queries, close it: what one request does."""
    conn = connect(database)
    try:
        _list_queries(conn)
    finally:
        conn.close()


def connection_cost(database, runs=CONNECTS):
    """Medians (ms) of open + close, and of the list queries on a fresh vs a reused connection."""
    opened, fresh, reused = [], [], []
    warm = connect(database)
    try:
        for _ in range(runs):
            _ms(lambda: connect(database).close(), opened)
            _ms(lambda: _fresh_list_queries(database), fresh)
            _ms(lambda: _list_queries(warm), reused)
    finally:
        warm.close()
    figures = {
        "open_close_ms": statistics.median(opened),
        "queries_fresh_connection_ms": statistics.median(fresh),
        "queries_reused_connection_ms": statistics.median(reused),
    }
    figures["per_request_cost_ms"] = (
        figures["queries_fresh_connection_ms"] - figures["queries_reused_connection_ms"]
    )
    return {key: round(value, 3) for key, value in figures.items()}


def _engine(environment, server, engine):
    """Every figure for one engine."""

    def fresh():
        return server.new_database() if engine == "postgresql" else None

    figures = {}
    database = fresh()
    try:
        figures["vm_list"] = list_page(environment, database)
    finally:
        if database:
            server.drop_database(database)
    for workers in WORKERS:
        database = fresh()
        try:
            figures[f"operations_workers_{workers}"] = ops_bench.run_once(workers, database)
        finally:
            if database:
                server.drop_database(database)
    return figures


def main(environment):
    """Both engines' figures, with the PostgreSQL server started and stopped here."""
    reason = pg_server.unavailable_reason()
    if reason:
        raise RuntimeError(f"the databases bench needs PostgreSQL: {reason}")
    server = pg_server.PostgresServer()
    try:
        server.start()
        server.create_template(ensure_schema)
        figures = {engine: _engine(environment, server, engine) for engine in ENGINES}
    finally:
        server.stop()
    return {"vms": VMS, "hosts": HOSTS, "filter": FILTER, "runs": RUNS, **figures}
