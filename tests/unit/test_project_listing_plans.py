"""A member's VM listing searches the project index on SQLite: it reads its projects' rows, never
the whole table (the plans `make bench` reports under projects, pinned without timing)."""

import re

import pytest

from app.db import connect
from app.migrator import migrate
from app.repositories import vms as vms_repo

# the plan line of a lookup on an index whose first column is the project
BY_PROJECT = re.compile(r"^SEARCH v USING (COVERING )?INDEX \w+ \(project_id=\?")


@pytest.fixture
def conn(tmp_path):
    """A migrated, empty SQLite database (without statistics the planner's choice does not
    depend on the rows: it assumes a large table)."""
    connection = connect(str(tmp_path / "nube.sqlite"))
    migrate(connection)
    yield connection
    connection.close()


def plans(conn, listing):
    """{sql: plan lines} of the SELECTs a listing runs."""
    statements = []
    conn.set_trace_callback(statements.append)
    try:
        listing()
    finally:
        conn.set_trace_callback(None)
    return {
        sql: [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
        for sql in statements
        if sql.lstrip().upper().startswith("SELECT")
    }


def page(conn, query, project_ids):
    """What the VM list page and GET /api/v1/vms run: the count, then the first page."""
    vms_repo.count(conn, query, project_ids)
    vms_repo.search(conn, query, "id", False, 50, 0, project_ids)


@pytest.mark.parametrize("project_ids", [(2,), (2, 3, 4, 5, 6)])
@pytest.mark.parametrize("query", ["", "mem >= 512", "vm-00"])
def test_member_page_searches_the_project_index(conn, query, project_ids):
    found = plans(conn, lambda: page(conn, query, project_ids))
    assert len(found) == 2
    for sql, lines in found.items():
        assert BY_PROJECT.match(lines[0]), (sql, lines)
        assert not [line for line in lines if line.startswith("SCAN v")], (sql, lines)


def test_member_live_poll_looks_rows_up_by_id(conn):
    ids = [f"vm-{n:05d}" for n in range(50)]
    found = plans(conn, lambda: vms_repo.live_states(conn, ids, (2, 3)))
    [lines] = found.values()
    assert re.match(
        r"^SEARCH vms USING (COVERING )?INDEX \w+ \((project_id=\? AND )?id=\?\)", lines[0]
    ), lines


def test_full_listing_of_a_member_searches_the_project_index(conn):
    found = plans(conn, lambda: vms_repo.search(conn, "", project_ids=(2,)))
    [lines] = found.values()
    assert BY_PROJECT.match(lines[0]), lines
