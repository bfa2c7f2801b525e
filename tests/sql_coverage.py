"""Which unit tests the PostgreSQL run repeats: every distinct SQL statement the SQLite run
executed, at least once, and every test that races two requests or processes.

The repositories' SQL is written once for both engines (app/pg.py translates), so what the
PostgreSQL run proves is that each statement means the same there, and that the locks decide
races the same way. `make test` runs the unit tier on SQLite with NUBE_SQL_TRACE=<prefix>: each
pytest process writes <prefix>.<worker>.jsonl, a line per test with the statements it ran
(literals replaced by ?, so that one statement with other values is the same statement).
The PostgreSQL run with NUBE_SQL_COVER=<prefix> keeps a greedy set cover of those statements
(the test that runs the most statements not yet covered, then the next...), every racing
test, and every test the SQLite run did not record (skipped there, or new)."""

import contextlib
import json
import os
import re
import sqlite3
from pathlib import Path

_STRING = re.compile(r"'(?:[^']|'')*'|[xX]'[0-9a-fA-F]*'")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b")
_NULL = re.compile(r"\bNULL\b")
_LIST = re.compile(r"\?(?:\s*,\s*\?)+")
_SPACE = re.compile(r"\s+")
# transactions, and the schema's own statements (PostgreSQL's run migrates its template once)
_NOT_COUNTED = (
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT",
    "RELEASE",
    "PRAGMA",
    "--",
    "CREATE",
    "ALTER",
    "DROP",
)
# tests whose point is a race: the engine's locks decide them, so each runs on both engines
RACING = re.compile(r"at_once|concurren|race|same_time|parallel|two_processes")


def normalize(sql):
    """A statement with its literal values (as sqlite3 expands them) replaced by ?."""
    sql = _STRING.sub("?", sql)
    sql = _NUMBER.sub("?", sql)
    sql = _NULL.sub("?", sql)
    sql = _LIST.sub("?", sql)
    return _SPACE.sub(" ", sql).strip()


class Tracer:
    """Records the statements each test's sqlite3 connections run (through sqlite3.connect,
    wrapped while the session lasts)."""

    def __init__(self, prefix, worker):
        self.path = Path(f"{prefix}.{worker}.jsonl")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.current, self.statements = None, set()
        self._connect = sqlite3.connect

    def install(self):
        """Wrap sqlite3.connect so that every new connection reports to this tracer."""

        def connect(*args, **kwargs):
            conn = self._connect(*args, **kwargs)
            conn.set_trace_callback(self._record)
            return conn

        sqlite3.connect = connect

    def uninstall(self):
        sqlite3.connect = self._connect

    def _record(self, sql):
        # as cheap as can be (it runs for every statement): judged and normalized at finish
        self.statements.add(sql)

    def start(self, nodeid):
        self.current, self.statements = nodeid, set()

    def finish(self, nodeid):
        """Append the finished test's statements to this process's file."""
        if self.current != nodeid:
            return
        counted = {
            normalize(sql)
            for sql in self.statements
            if not sql.lstrip().upper().startswith(_NOT_COUNTED)
        }
        line = json.dumps({"test": nodeid, "statements": sorted(counted)})
        with self.path.open("a") as handle:
            handle.write(line + "\n")
        self.current = None


def load(prefix):
    """{test: set of statements} from every file the SQLite run wrote under prefix."""
    found = {}
    folder, stem = Path(prefix).parent, Path(prefix).name
    for path in sorted(folder.glob(f"{stem}.*.jsonl")):
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError, KeyError):
                record = json.loads(line)
                found.setdefault(record["test"], set()).update(record["statements"])
    return found


def cover(traces):
    """A greedy set cover: the tests that together ran every statement of traces."""
    left = set().union(*traces.values()) if traces else set()
    chosen = []
    remaining = dict(traces)
    while left:
        best = max(sorted(remaining), key=lambda test: len(remaining[test] & left))
        gained = remaining.pop(best) & left
        if not gained:
            break
        chosen.append(best)
        left -= gained
    return chosen


def selection(items, prefix):
    """(kept, dropped) items for the PostgreSQL run (see the module's docstring)."""
    traces = load(prefix)
    if not traces:
        return list(items), []
    chosen = set(cover(traces))
    kept, dropped = [], []
    for item in items:
        keep = item.nodeid in chosen or item.nodeid not in traces or RACING.search(item.name)
        (kept if keep else dropped).append(item)
    return kept, dropped


def clear(prefix):
    """Delete the files an earlier SQLite run wrote under prefix."""
    folder, stem = Path(prefix).parent, Path(prefix).name
    if folder.is_dir():
        for path in folder.glob(f"{stem}.*.jsonl"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
