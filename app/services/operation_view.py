"""An operation as the API and the dashboard's polls show it: one shape, built here.

The API's operation objects, the operation page's log.json and the overview's poll all read
an operation through `public` (the same field names and value forms, with its progress as
`{percent, text}`), so a script and an API client see the same thing.
"""

import json

from . import charts, operations

LOG_BATCH = 500  # log lines one answer carries at most; `more` says when to ask again at once
LOG_LINE_KEYS = ("id", "ts", "level", "message")


def _loads(text):
    """A JSON column's value (None stays None)."""
    return None if text is None else json.loads(text)


def public(row):
    """An operation's fields as the API names them (those the row has): JSON columns decoded,
    the cancel flag a boolean, and its progress as charts.operation_progress computes it."""
    op = dict(row)
    for key in ("input", "result"):
        if key in op:
            op[key] = _loads(op[key])
    if "cancel_requested" in op:
        op["cancel_requested"] = bool(op["cancel_requested"])
    op["progress"] = charts.operation_progress(op)
    return op


def follow(op_id, after=0, batch=LOG_BATCH):
    """An operation with its log lines after a line id (`log`), `more` when a full batch left
    lines waiting, and `done` once it is terminal and every line is here."""
    # status first, lines second: once a terminal status is read, every line is written
    op = public(operations.get(op_id))
    lines = operations.log(op_id, after, batch)
    op["log"] = [{key: line[key] for key in LOG_LINE_KEYS} for line in lines]
    op["more"] = len(lines) == batch
    op["done"] = op["status"] in operations.TERMINAL and not op["more"]
    return op
