"""How numbers and times read on the dashboard: the template filters, and the text the live
updates carry (so the page's script formats nothing itself)."""

from datetime import UTC, datetime

from .db import STAMP_FORMAT


def mib(value):
    """MiB as a short human figure."""
    if value is None:
        return "-"
    return f"{value / 1024:.1f} GiB" if value >= 1024 else f"{value} MiB"


def gib(value):
    """Whole GiB (a volume's or a disk's size) as text."""
    return "-" if value is None else f"{value} GiB"


def human_bytes(value):
    """Bytes as a short human figure."""
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


def when(stamp):
    """An ISO time as 'YYYY-MM-DD HH:MM:SS'."""
    return stamp[:19].replace("T", " ") if stamp else "never"


def plain(value):
    """Any value as text ('-' for none)."""
    return "-" if value is None else str(value)


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


def duration(started_at, finished_at):
    """How long an operation ran (so far, while it runs); '-' before it started."""
    started = _parse(started_at)
    if started is None:
        return "-"
    finished = _parse(finished_at) or datetime.now(UTC)
    return human_seconds((finished - started).total_seconds())
