"""Template filters for operations: durations and JSON input shown readably."""

import json

from ... import formats


def duration(op):
    """How long an operation ran (so far, while it runs); '-' before it started."""
    return formats.duration(op.get("started_at"), op.get("finished_at"))


def pretty_json(text):
    """Stored JSON text indented for reading; the text itself when it is not JSON."""
    if text in (None, ""):
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, sort_keys=True)
    except (TypeError, ValueError):
        return str(text)
