"""The few fields of a qcow2 header Nube checks before a host is given a disk or a volume (its
virtual size, backing file and format, external data file), read in Python as QEMU's
docs/interop/qcow2.txt lays them out: the same answer as `qemu-img info -f qcow2` for what
Nube checks (tests/unit/test_qcow2_header.py compares both), without a process per read.

Hosts write these files, so a header is untrusted: anything this reader does not know how to
read safely (encryption, an unknown incompatible feature, a name too long) is refused rather
than guessed, and a data file named anywhere (flag or extension) counts as named."""

import os
import struct

from app.errors import NubeError

MAGIC = b"QFI\xfb"
V2_HEADER = 72  # bytes: a version 2 header; version 3 says its own length
BACKING_NAME_MAX = 1023  # QEMU's own limit
EXTENSIONS_MAX = 64 * 1024  # header extensions live in the first cluster (at most 2 MiB)
EXT_END, EXT_BACKING_FORMAT, EXT_DATA_FILE = 0x00000000, 0xE2792ACA, 0x44415441
# incompatible feature bits QEMU 7/8 know: dirty, corrupt, external data file, compression
# type, extended L2 entries; any other makes QEMU refuse the image, and Nube too
INCOMPATIBLE_KNOWN = 0b11111
INCOMPATIBLE_DATA_FILE = 1 << 2
UNNAMED = "(flagged, unnamed)"
SNAPSHOTS_MAX = 1024  # QEMU allows 65536; Nube makes at most SNAPSHOTS_PER_VM a file
SNAPSHOT_TABLE_MAX = 1 << 20  # bytes of snapshot table read at most
SNAPSHOT_ENTRY = 40  # bytes before an entry's extra data, id and name


class HeaderError(NubeError):
    """A file that is not a qcow2 image this reader can vouch for."""


def _unpack(fmt, data, offset):
    """Big-endian fields at offset, or HeaderError when the header is cut short."""
    try:
        return struct.unpack_from(f">{fmt}", data, offset)
    except struct.error:
        raise HeaderError("its header is cut short") from None


def _name(raw: bytes, what) -> str:
    """A name stored in the header (UTF-8, no NUL), or HeaderError."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HeaderError(f"its {what} is not UTF-8") from None
    if "\x00" in text:
        raise HeaderError(f"its {what} holds a NUL byte")
    return text


def _extensions(data, start):
    """{type: payload} of the header extensions from start to the end marker."""
    found, offset = {}, start
    while True:
        kind, length = _unpack("II", data, offset)
        if kind == EXT_END:
            return found
        offset += 8
        if offset + length > len(data):
            raise HeaderError("a header extension runs past the header")
        found[kind] = data[offset : offset + length]
        offset += (length + 7) & ~7


def _v3_fields(data, version):
    """(incompatible features, header length) of a version 3 header; (0, 72) for version 2."""
    if version == 2:
        return 0, V2_HEADER
    (incompatible,) = _unpack("Q", data, 72)
    (header_length,) = _unpack("I", data, 100)
    if header_length < 104 or header_length > len(data):
        raise HeaderError(f"its header length {header_length} is wrong")
    return incompatible, header_length


def _backing(data, offset, size, extensions) -> dict:
    """The backing file name (and format, when the header names one) at offset."""
    if size > BACKING_NAME_MAX or offset + size > len(data):
        raise HeaderError("its backing file name is out of bounds")
    found = {"backing-filename": _name(data[offset : offset + size], "backing file name")}
    if EXT_BACKING_FORMAT in extensions:
        found["backing-filename-format"] = _name(extensions[EXT_BACKING_FORMAT], "backing format")
    return found


def _snapshots(handle, count, offset) -> list[dict]:
    """The internal snapshots listed in the table at offset: [{id, name, date-sec,
    vm-state-size}], as qemu-img info lists them."""
    if count > SNAPSHOTS_MAX:
        raise HeaderError(f"it has {count} internal snapshots, more than {SNAPSHOTS_MAX}")
    if offset >= os.fstat(handle.fileno()).st_size:
        raise HeaderError("its snapshot table lies past the end of the file")
    handle.seek(offset)
    table = handle.read(SNAPSHOT_TABLE_MAX)
    found, at = [], 0
    for _ in range(count):
        (_, _, id_size, name_size, date, _, _, state, extra) = _unpack("QIHHIIQII", table, at)
        start = at + SNAPSHOT_ENTRY + extra
        end = start + id_size + name_size
        if end > len(table):
            raise HeaderError("its snapshot table runs past what this reader reads")
        found.append(
            {
                "id": _name(table[start : start + id_size], "snapshot id"),
                "name": _name(table[start + id_size : end], "snapshot name"),
                "date-sec": date,
                "vm-state-size": state,
            }
        )
        at = (end + 7) & ~7
    return found


def read(path) -> dict:
    """`qemu-img info --output=json -f qcow2`'s keys for one file's header (format,
    virtual-size, actual-size, backing-filename, backing-filename-format, format-specific's
    data-file, snapshots); HeaderError for anything else."""
    with open(path, "rb") as handle:
        data = handle.read(EXTENSIONS_MAX)
        blocks = os.fstat(handle.fileno()).st_blocks
        return _fields(handle, data, blocks)


def _fields(handle, data, blocks) -> dict:
    """The fields read() returns, from the header's first bytes (data) and the open file."""
    if data[:4] != MAGIC:
        raise HeaderError("it is not a qcow2 image")
    (version, backing_offset, backing_size, _, size, crypt) = _unpack("IQIIQI", data, 4)
    if version not in (2, 3):
        raise HeaderError(f"its qcow2 version {version} is unknown")
    if crypt:
        raise HeaderError("it is encrypted")
    incompatible, header_length = _v3_fields(data, version)
    if incompatible & ~INCOMPATIBLE_KNOWN:
        raise HeaderError(f"it needs features this reader does not know ({incompatible:#x})")
    extensions = _extensions(data, header_length)
    info = {"format": "qcow2", "virtual-size": size, "actual-size": blocks * 512}
    if backing_offset:
        info.update(_backing(data, backing_offset, backing_size, extensions))
    if incompatible & INCOMPATIBLE_DATA_FILE or EXT_DATA_FILE in extensions:
        name = extensions.get(EXT_DATA_FILE)
        data_file = _name(name, "data file name") if name else UNNAMED
        info["format-specific"] = {"type": "qcow2", "data": {"data-file": data_file or UNNAMED}}
    (count, table) = _unpack("IQ", data, 60)
    if count:
        info["snapshots"] = _snapshots(handle, count, table)
    return info
