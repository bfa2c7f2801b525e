"""A serial console's bytes as plain text: terminal escapes, carriage returns and other
control characters removed, so logs read as the operator would have seen them."""

import re

_ESCAPES = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, erase
    rb"|\x1b\][^\x07\x1b\n]{0,512}(?:\x07|\x1b\\)?"  # OSC (window titles), never past a line
    rb"|\x1b[()*+][0-9A-Za-z]"  # character set selection
    rb"|\x1b[@-Z\\-_=>78]"  # other two-byte escapes
)
# C0 controls, DEL, C1 controls, and Unicode's invisible formatting (bidi overrides,
# zero-width characters) that could make a line read as something it is not
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def clean_line(line: str) -> str:
    """A line as the terminal left it: what follows its last carriage return, no controls."""
    shown = [part for part in line.split("\r") if part.strip()]
    return _CONTROL.sub("", shown[-1] if shown else "")


def clean(data: bytes) -> list[str]:
    """The lines of console output (the last one may be a partial line such as a prompt)."""
    text = _ESCAPES.sub(b"", data).decode("utf-8", errors="replace")
    return [clean_line(line) for line in text.split("\n")]


def complete_lines(data: bytes) -> tuple[bytes, bytes]:
    """data split after its last newline: (whole lines, the unfinished rest)."""
    cut = data.rfind(b"\n") + 1
    return data[:cut], data[cut:]
