"""A VM's boot log (its serial console, written by virtlogd into the repository): its tail,
and what is new since a reader's last look."""

from .. import serial_text
from ..errors import InvalidInput
from ..extensions import adapters
from ..limits import BOOT_LOG_LINES
from ..numbers import is_digits
from . import vms

LINES_MAX = BOOT_LOG_LINES.maximum
FOLLOW_CHUNK = 64 * 1024  # bytes a live page takes per poll


def tail(vm_id, lines=200):
    """The last lines of a VM's boot log as text (empty before its first start)."""
    if isinstance(lines, bool) or not isinstance(lines, int):
        raise InvalidInput(f"lines must be a whole number, not {lines!r:.40}")
    if message := BOOT_LOG_LINES.message_for(lines):
        raise InvalidInput(message)
    vm = vms.get(vm_id)
    data, start, _size = adapters().storage.read_console(vm["id"])
    shown = serial_text.clean(data)
    if start > 0:
        shown = shown[1:]  # read from the middle of a line: drop the broken first one
    if shown and shown[-1] == "":
        shown.pop()
    return "\n".join(shown[-lines:])


def follow(vm_id, offset=None):
    """What a live page shows next: whole lines from offset (the last ones when None), the
    unfinished line after them (a login prompt ends without a newline), and where to read
    from next time."""
    vm = vms.get(vm_id)
    if offset is not None:
        if not isinstance(offset, str) or not is_digits(offset) or len(offset) > 15:
            raise InvalidInput(f"offset must be a byte count, not {offset!r:.40}")
        offset = int(offset)
    data, start, size = adapters().storage.read_console(vm["id"], offset, FOLLOW_CHUNK)
    whole, rest = serial_text.complete_lines(data)
    more = start + len(data) < size
    if more and not whole:  # one line longer than a chunk: take it in pieces
        whole, rest = data, b""
    lines = serial_text.clean(whole) if whole else []
    if whole.endswith(b"\n"):
        lines.pop()  # the empty text after the last newline
    if offset is None and start > 0 and lines:
        lines = lines[1:]  # began in the middle of a line
    return {
        "lines": lines,
        "partial": "" if more else serial_text.clean(rest)[-1],
        "offset": start + len(whole),
        "restarted": offset is not None and start < offset,
        "more": more,
    }
