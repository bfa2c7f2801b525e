"""Tests for the filter-expression compiler in app.filter_language."""

import sqlite3

import pytest

from app.errors import InvalidInput
from app.filter_language import MAX_DEPTH, MAX_LENGTH, MAX_VALUES, Column, compile_filter

COLUMNS = {
    "name": Column("v.name"),
    "state": Column("v.state"),
    "address": Column("h.address"),
    "mem": Column("v.mem", "int"),
    "vcpus": Column("v.vcpus", "int"),
    "task": Column("v.task"),
    "autostart": Column("v.autostart", "bool"),
}


def compile_(text):
    """Compile against the shared test columns."""
    return compile_filter(text, COLUMNS)


@pytest.mark.parametrize(
    ("text", "sql", "params"),
    [
        ("state='running' AND mem >= 512", "(v.state = ? AND v.mem >= ?)", ["running", 512]),
        ("state=running", "v.state = ?", ["running"]),
        (
            "name LIKE 'web%' OR (vcpus IN (2,4) AND NOT task IS NULL)",
            "(lower(v.name) LIKE lower(?) ESCAPE '\\' OR (v.vcpus IN (?, ?) AND NOT (v.task IS NULL)))",
            ["web%", 2, 4],
        ),
        # A bare word is a string literal even when it spells a column name.
        ("name = address", "v.name = ?", ["address"]),
        ("NAME = 'x' aNd MEM < -1.5", "(v.name = ? AND v.mem < ?)", ["x", -1.5]),
        ("state != 'x' or state <> y", "(v.state <> ? OR v.state <> ?)", ["x", "y"]),
        (
            "name NOT LIKE web% and task is not null",
            "(lower(v.name) NOT LIKE lower(?) ESCAPE '\\' AND v.task IS NOT NULL)",
            ["web%"],
        ),
        ("vcpus not in (1)", "v.vcpus NOT IN (?)", [1]),
        ("name = \"a\"\"b\" OR name = 'it''s'", "(v.name = ? OR v.name = ?)", ['a"b', "it's"]),
        # A number typed against a text column stays text, exactly as typed.
        ("name = 007", "v.name = ?", ["007"]),
        (
            "address = 10.0.0.1:22 or name = bob@example.com",
            "(h.address = ? OR v.name = ?)",
            ["10.0.0.1:22", "bob@example.com"],
        ),
        ("mem = '512'", "v.mem = ?", [512]),
        ("autostart = TRUE", "v.autostart = ?", [1]),
        ("autostart = no", "v.autostart = ?", [0]),
        ("autostart IN (yes, 0, 'False')", "v.autostart IN (?, ?, ?)", [1, 0, 0]),
        ("NOT NOT state = x", "NOT (NOT (v.state = ?))", ["x"]),
        ("NOT (state = x OR state = y)", "NOT (v.state = ? OR v.state = ?)", ["x", "y"]),
        ("((state = x))", "v.state = ?", ["x"]),
        # AND binds tighter than OR; the emitted parentheses must keep that.
        (
            "state=a OR state=b AND mem>1",
            "(v.state = ? OR (v.state = ? AND v.mem > ?))",
            ["a", "b", 1],
        ),
        (
            "(state=a OR state=b) AND mem>1",
            "((v.state = ? OR v.state = ?) AND v.mem > ?)",
            ["a", "b", 1],
        ),
        ("", "", []),
        ("   \t ", "", []),
    ],
)
def test_valid_filters_compile_to_exact_sql(text, sql, params):
    """Valid filters produce the expected SQL text and parameters."""
    assert compile_(text) == (sql, params)


def test_user_text_never_appears_in_sql():
    """Literals, even ones full of SQL, travel only as parameters."""
    sql, params = compile_("name = 'x'' OR 1=1; DROP TABLE vms --'")
    assert sql == "v.name = ?"
    assert params == ["x' OR 1=1; DROP TABLE vms --"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1=1; DROP TABLE vms", "unexpected ';' at position 4"),
        ("id='x' OR 1=1 --", "unexpected '--' at position 15"),
        ("name=a--b", "unexpected '--' at position 7"),
        ("name = 'x' /* hi */", "unexpected '/*' at position 12"),
        ("state = running)", "unexpected ')' at position 16"),
        ("mem >= ", "unexpected end of filter: expected a value after '>='"),
        ("state=)", "expected a value after '=' at position 7, got ')'"),
        ("name = 'a' UNION SELECT password FROM users", "unexpected 'UNION' at position 12"),
        ("lower(name)='x'", "function calls are not allowed: 'lower' at position 1"),
        ("password = 'x'", "unknown column 'password' at position 1 (known: address, autostart,"),
        ("name = 'abc", "unterminated string at position 8"),
        ('name = "abc', "unterminated string at position 8"),
        ("(state = x", "unexpected end of filter: expected ')'"),
        ("state", "unexpected end of filter: expected an operator after 'state'"),
        ("state running", "expected an operator after 'state' at position 7, got 'running'"),
        ("1=1", "expected a column name at position 1, got '1'"),
        ("'x' = name", "expected a column name at position 1, got \"'x'\""),
        ("mem = abc", "mem expects a number, got 'abc' at position 7"),
        ("mem > vcpus", "got 'vcpus' at position 7 (comparing two columns is not supported)"),
        ("autostart = maybe", "autostart expects true or false, got 'maybe' at position 13"),
        ("mem LIKE '5%'", "LIKE at position 5 needs a text column; mem is int"),
        ("name LIKE 'h\\'", "ends with a lone '\\'"),
        ("name = 'a\x00'", "NUL character at position 10"),
        ("vcpus IN ()", "IN at position 7 needs at least one value"),
        ("vcpus IN (1 2)", "expected ',' or ')' after '1' at position 13, got '2'"),
        ("vcpus IN 1", "expected '(' at position 10, got '1'"),
        ("name IN (SELECT name FROM vms)", "expected ',' or ')' after 'SELECT' at position 17"),
        ("name = (SELECT 1)", "expected a value after '=' at position 8, got '('"),
        ("name = NULL", "got 'NULL' (use IS NULL or IS NOT NULL)"),
        ("state = and", "expected a value after '=' at position 9, got 'and'"),
        ("task IS 'x'", "expected NULL after 'IS' at position 9"),
        ("state NOT = x", "expected LIKE or IN after 'NOT' at position 11, got '='"),
        ("state = x AND", "unexpected end of filter: expected a column name"),
        ("mem = 99999999999999999999", "number out of range at position 7"),
        ("name = x!", "unexpected '!' at position 9"),
    ],
)
def test_hostile_or_broken_filters_are_refused(text, message):
    """Bad filters raise InvalidInput naming the offending token and its position."""
    with pytest.raises(InvalidInput) as caught:
        compile_(text)
    assert message in str(caught.value)


def test_nesting_limit_counts_parentheses_and_nots():
    """Nesting up to the limit works; one more level is refused, never a RecursionError."""
    ok = "(" * MAX_DEPTH + "state=x" + ")" * MAX_DEPTH
    assert compile_(ok) == ("v.state = ?", ["x"])
    with pytest.raises(InvalidInput, match=f"deeper than {MAX_DEPTH} levels at position 51"):
        compile_("(" * (MAX_DEPTH + 1) + "state=x" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(InvalidInput, match="deeper than"):
        compile_("NOT " * (MAX_DEPTH + 1) + "state=x")
    with pytest.raises(InvalidInput, match="deeper than"):
        compile_("(" * MAX_LENGTH)


def test_length_and_value_limits():
    """Over-long filters and too many literals are refused before doing real work."""
    with pytest.raises(InvalidInput, match=f"too long .* at most {MAX_LENGTH}"):
        compile_("name = '" + "x" * MAX_LENGTH + "'")
    many = "vcpus IN (" + ",".join(["1"] * (MAX_VALUES + 1)) + ")"
    with pytest.raises(InvalidInput, match=f"too many values \\(more than {MAX_VALUES}\\)"):
        compile_(many)
    _, params = compile_("vcpus IN (" + ",".join(["1"] * MAX_VALUES) + ")")
    assert len(params) == MAX_VALUES


def test_column_keys_are_case_insensitive_and_kind_is_checked():
    """Mixed-case dict keys still match, and a bad Column kind is a programming error."""
    assert compile_filter("Host = a", {"HOST": Column("h.name")}) == ("h.name = ?", ["a"])
    with pytest.raises(ValueError, match="kind"):
        Column("v.x", "float")


def test_compiled_filters_run_against_sqlite():
    """Compiled SQL selects the right rows, and an injection attempt leaves the table intact."""
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE TABLE vms (name TEXT, state TEXT, mem INTEGER, vcpus INTEGER,"
        " task TEXT, autostart INTEGER)"
    )
    db.executemany(
        "INSERT INTO vms VALUES (?, ?, ?, ?, ?, ?)",
        [
            ("web-1", "running", 1024, 2, None, 1),
            ("web-2", "stopped", 512, 4, "start", 0),
            ("db-1", "running", 4096, 8, None, 1),
            ("it's", "running", 256, 1, "migrate", 0),
        ],
    )
    columns = {
        name: Column(name, kind)
        for name, kind in [
            ("name", "text"),
            ("state", "text"),
            ("mem", "int"),
            ("vcpus", "int"),
            ("task", "text"),
            ("autostart", "bool"),
        ]
    }

    def names(text):
        """Run a filter and return the matching VM names in order."""
        sql, params = compile_filter(text, columns)
        # sql comes from compile_filter: whitelisted columns and '?' placeholders only.
        query = "SELECT name FROM vms WHERE " + (sql or "1") + " ORDER BY name"  # noqa: S608
        return [row[0] for row in db.execute(query, params)]

    assert names("") == ["db-1", "it's", "web-1", "web-2"]
    assert names("state=running AND mem >= 512") == ["db-1", "web-1"]
    assert names("name LIKE 'WEB%'") == [
        "web-1",
        "web-2",
    ]  # LIKE ignores case (lower() on both sides, on either engine)
    assert names("name LIKE 'web%' OR (vcpus IN (2,4,8) AND NOT task IS NULL)") == [
        "web-1",
        "web-2",
    ]
    assert names("state = running OR state = stopped AND autostart = true") == [
        "db-1",
        "it's",
        "web-1",
    ]
    assert names("name = 'it''s'") == ["it's"]
    assert names("task IS NOT NULL AND vcpus NOT IN (4)") == ["it's"]
    with pytest.raises(InvalidInput, match="expected a column name at position 15, got '1'"):
        names("name = 'x' OR 1=1")
    with pytest.raises(InvalidInput, match="unexpected ';' at position 4"):
        names("1=1; DROP TABLE vms")
    assert db.execute("SELECT count(*) FROM vms").fetchone() == (4,)
    db.close()


SEARCHED = ("name", "state")
TERM = "(lower(v.name) LIKE lower(?) ESCAPE '\\' OR lower(v.state) LIKE lower(?) ESCAPE '\\')"


@pytest.mark.parametrize(
    ("text", "sql", "params"),
    [
        ("web1", TERM, ["%web1%", "%web1%"]),
        ("'web 1'", TERM, ["%web 1%", "%web 1%"]),
        ("state", TERM, ["%state%", "%state%"]),  # a column name alone is a word to look for
        ("50%_x", TERM, ["%50\\%\\_x%"] * 2),  # the user's % and _ are themselves
        ("web AND mem > 5", f"({TERM} AND v.mem > ?)", ["%web%", "%web%", 5]),
        ("(db OR running)", f"({TERM} OR {TERM})", ["%db%"] * 2 + ["%running%"] * 2),
    ],
)
def test_a_bare_word_searches_the_search_columns(text, sql, params):
    assert compile_filter(text, COLUMNS, SEARCHED) == (sql, params)


def test_a_bare_word_is_an_error_without_search_columns_or_before_a_value():
    with pytest.raises(InvalidInput, match="unknown column 'web1' at position 1"):
        compile_filter("web1", COLUMNS)
    with pytest.raises(InvalidInput, match="expected an operator after 'state'"):
        compile_filter("state running", COLUMNS, SEARCHED)
    with pytest.raises(InvalidInput, match="expected a column name"):
        compile_filter("AND", COLUMNS, SEARCHED)


@pytest.mark.parametrize(
    ("text", "sql", "params"),
    [
        ("host = 3", "v.host_id = ?", [3]),
        ("host = lab1", "h.name = ?", ["lab1"]),
        ("host != 'lab 2'", "h.name <> ?", ["lab 2"]),
        ("host IN (lab1, lab2)", "h.name IN (?, ?)", ["lab1", "lab2"]),
        ("host NOT IN (1, 2)", "v.host_id NOT IN (?, ?)", [1, 2]),
        ("host LIKE 'lab%'", "lower(h.name) LIKE lower(?) ESCAPE '\\'", ["lab%"]),
    ],
)
def test_an_id_column_takes_a_name_too(text, sql, params):
    columns = {"host": Column("v.host_id", "int", by_name="h.name")}
    assert compile_filter(text, columns) == (sql, params)
