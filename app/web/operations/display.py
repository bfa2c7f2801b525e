"""Template filters for operations: durations and JSON input shown readably."""

import json
from datetime import UTC, datetime

from ...db import STAMP_FORMAT


def _parse(stamp):
    """An ISO time as the tables store it, or None."""
    if not stamp:
        return None
    try:
        return datetime.strptime(stamp, STAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            return None


def human_seconds(seconds):
    """Seconds as '0.4 s', '12 s', '3 min 4 s' or '2 h 5 min'."""
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def duration(op):
    """How long an operation ran (so far, while it runs); '-' before it started."""
    started = _parse(op.get("started_at"))
    if started is None:
        return "-"
    finished = _parse(op.get("finished_at")) or datetime.now(UTC)
    return human_seconds((finished - started).total_seconds())


def pretty_json(text):
    """Stored JSON text indented for reading; the text itself when it is not JSON."""
    if text in (None, ""):
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, sort_keys=True)
    except (TypeError, ValueError):
        return str(text)
