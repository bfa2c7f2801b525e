"""The PostgreSQL run's selection (tests/sql_coverage.py): statements compared without their
values, a greedy cover of every statement, racing and untraced tests always kept."""

from types import SimpleNamespace

from tests import sql_coverage


def test_statements_are_compared_without_their_values():
    one = sql_coverage.normalize("SELECT * FROM vms WHERE id = 'vm1' AND mem >= 512")
    two = sql_coverage.normalize("SELECT *  FROM vms WHERE id = 'it''s'\n AND mem >= -3.5")
    assert one == two == "SELECT * FROM vms WHERE id = ? AND mem >= ?"
    listed = sql_coverage.normalize("SELECT id FROM vms WHERE id IN ('a', 'b', 'c') AND x IS NULL")
    assert listed == sql_coverage.normalize("SELECT id FROM vms WHERE id IN ('a') AND x IS NULL")
    assert sql_coverage.normalize("SELECT v2.id FROM vms v2") == "SELECT v2.id FROM vms v2"


def test_the_cover_runs_every_statement_with_few_tests():
    traces = {"a": {1, 2}, "b": {2, 3, 4}, "c": {4}, "d": {5}, "e": set()}
    chosen = sql_coverage.cover(traces)
    assert set().union(*(traces[t] for t in chosen)) == {1, 2, 3, 4, 5}
    assert chosen == ["b", "a", "d"]


def test_racing_and_untraced_tests_are_always_kept(tmp_path):
    prefix = tmp_path / "trace"
    tracer = sql_coverage.Tracer(prefix, "gw0")
    for test, statements in (("t::a", ["s1", "s2"]), ("t::b", ["s1"]), ("t::c_at_once", ["s1"])):
        tracer.start(test)
        tracer.statements.update(statements)
        tracer.finish(test)
    items = [
        SimpleNamespace(nodeid=f"t::{name}", name=name) for name in ("a", "b", "c_at_once", "new")
    ]
    kept, dropped = sql_coverage.selection(items, prefix)
    assert [i.name for i in kept] == ["a", "c_at_once", "new"]
    assert [i.name for i in dropped] == ["b"]
    sql_coverage.clear(prefix)
    assert sql_coverage.selection(items, prefix) == (items, [])
