"""How numbers and times read on the dashboard: the template filters, and the text the live
updates carry (so the page's script formats nothing itself)."""


def mib(value):
    """MiB as a short human figure."""
    if value is None:
        return "-"
    return f"{value / 1024:.1f} GiB" if value >= 1024 else f"{value} MiB"


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
