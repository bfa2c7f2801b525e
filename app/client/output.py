"""How answers are printed: tables with aligned columns, key/value records, or JSON (-o json)."""

import json

from ..serial_text import printable


def clean(text):
    """Any value as text fit for a terminal: a controller's answer (or whatever answers in its
    place) must not drive it or hide words, so escape sequences, control characters but
    newline and tab, and invisible Unicode go, as in boot logs and guest agent text."""
    return printable(str(text), keep="\n\t")


class Terminal:
    """A stream that cleans what is written to it: the last guard, so no text from the
    controller reaches the terminal raw whichever way a command prints it."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        """Write text, cleaned."""
        return self.stream.write(clean(text))

    def flush(self):
        """Flush the stream underneath."""
        self.stream.flush()


def cell(value):
    """A value as one line of table text: '-' for none, yes/no, lists and objects compact."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return " ".join(f"{cell(key)}={cell(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ",".join(cell(item) for item in value)
    return clean(value).replace("\n", " ").replace("\t", " ")


def _is_number(value):
    """Whether a value is a number (right-aligned in tables)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numeric_column(rows, key):
    """Whether a column holds numbers (or nothing) in every row, and a number in one."""
    values = [row.get(key) for row in rows]
    return any(map(_is_number, values)) and all(_is_number(v) or v is None for v in values)


def table(rows, columns, out):
    """Rows (dicts) under headings, each column as wide as its widest cell; numbers to the right.
    columns: (key, heading) pairs."""
    texts = [[cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [
        max([len(heading), *(len(line[index]) for line in texts)])
        for index, (_, heading) in enumerate(columns)
    ]
    numeric = [_numeric_column(rows, key) for key, _ in columns]
    lines = [[heading for _, heading in columns], *texts]
    for line in lines:
        padded = [
            text.rjust(width) if right else text.ljust(width)
            for text, width, right in zip(line, widths, numeric, strict=True)
        ]
        out.write("  ".join(padded).rstrip() + "\n")


def record(item, out, keys=None):
    """One object as 'key: value' lines, keys aligned; a value of several lines is indented."""
    keys = [key for key in (keys or item) if key in item]
    names = {key: cell(key) for key in keys}  # the controller names them: cleaned too
    width = max((len(name) for name in names.values()), default=0)
    for key in keys:
        out.write(f"{names[key] + ':':<{width + 1}} {_field(item[key], width + 2)}\n")


def _field(value, indent):
    """A record's value: text of several lines, or a list of texts, one a line, indented."""
    if isinstance(value, str) and "\n" in value.strip():
        value = value.strip().split("\n")
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return ("\n" + " " * indent).join(clean(v) for v in value)
    return cell(value)


def size(value):
    """A number of bytes in binary units (1.5 GiB); anything else as it is."""
    if not _is_number(value):
        return value
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def log_line(line):
    """One operation log line as text: its time, its level when not info, its message."""
    if not isinstance(line, dict):
        return clean(line)
    stamp = str(line.get("ts") or "")
    if "T" in stamp:
        stamp = stamp.split("T", 1)[1][:8]
    level = line.get("level") or "info"
    marker = "" if level == "info" else f"[{level}] "
    return clean(f"{stamp} {marker}{line.get('message', '')}".strip())


def as_json(data, out):
    """data as indented JSON (control characters escaped)."""
    json.dump(data, out, indent=2)
    out.write("\n")
