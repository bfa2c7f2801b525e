"""Whole numbers: those typed by people (ASCII digits only, never too many), and disk sizes."""

MAX_DIGITS = 18  # fits SQLite's 64-bit integers with room to spare


def is_digits(text):
    """Whether text is a non-empty run of ASCII digits ('²' and '٣' are digits to str.isdigit
    but not to int(), and ids never have them)."""
    return isinstance(text, str) and text.isascii() and text.isdigit()


def parse_id(text):
    """A non-negative integer from ASCII digits, or None when text is not one (or too long)."""
    text = text.strip() if isinstance(text, str) else text
    if not is_digits(text) or len(text) > MAX_DIGITS:
        return None
    return int(text)


GIB = 1 << 30


def disk_gib(size):
    """A disk's virtual size in whole GiB, rounded up (what the disk quota counts)."""
    return -(-int(size) // GIB)
