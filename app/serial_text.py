"""Text nobody vouches for (a serial console, a guest agent, a controller's answer in the
`nube` client) made fit to show: terminal escape sequences, control characters and invisible
Unicode removed, so it reads as what it is and cannot drive a terminal or hide a word.

Standard library only: the `nube` client uses it where only Python is installed."""

import re
import unicodedata

_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI (7- or 8-bit): colours, cursor moves, erase
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\n]{0,512}(?:\x07|\x1b\\)?"  # OSC (window titles), never past a line
    r"|\x1b[()*+][0-9A-Za-z]"  # character set selection
    r"|\x1b[@-Z\\-_=>78]"  # other two-byte escapes
)


def _shown(char: str, keep: str) -> str:
    """One character that is not printable: itself if kept, ' ' for a space, else nothing."""
    if char in keep:
        return char
    return " " if unicodedata.category(char) == "Zs" else ""


def printable(text: str, keep: str = "") -> str:
    """text without terminal escape sequences and without every character Python does not
    count as printable (Unicode categories Cc, Cf, Cs, Co, Cn, Zl, Zp: C0 and C1 controls, DEL,
    bidi overrides, zero-width characters, private-use and unassigned code points), but those
    in keep; a space other than ' ' (no-break, ideographic) reads as ' '."""
    text = _ESCAPES.sub("", text)
    if text.isprintable():
        return text  # the common case, at C speed
    return "".join(char if char.isprintable() else _shown(char, keep) for char in text)


def clean_line(line: str) -> str:
    """A line as the terminal left it: what follows its last carriage return, printable only
    (tabs kept)."""
    shown = [part for part in line.split("\r") if part.strip()]
    return printable(shown[-1] if shown else "", keep="\t")


def clean(data: bytes) -> list[str]:
    """The lines of console output (the last one may be a partial line such as a prompt)."""
    text = _ESCAPES.sub("", data.decode("utf-8", errors="replace"))
    return [clean_line(line) for line in text.split("\n")]


def complete_lines(data: bytes) -> tuple[bytes, bytes]:
    """data split after its last newline: (whole lines, the unfinished rest)."""
    cut = data.rfind(b"\n") + 1
    return data[:cut], data[cut:]
