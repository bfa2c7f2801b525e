"""The Python qcow2 header reader gives what `qemu-img info -f qcow2` gives for every field
Nube checks, on headers qemu-img itself wrote (plain, overlays, rebased by hand, data files,
compression, extended L2, version 2), and refuses what it cannot vouch for."""

import json
import struct
import subprocess

import pytest

from app.adapters import qcow2_header
from app.adapters.qcow2_header import HeaderError

CHECKED = ("format", "virtual-size", "backing-filename", "backing-filename-format")


def qemu_img(*args):
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def qemu_info(path):
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", "-U", "-f", "qcow2", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def data_file(info):
    return ((info.get("format-specific") or {}).get("data") or {}).get("data-file")


def same(path):
    """The reader's answer, once checked against qemu-img's on every field Nube reads."""
    ours, theirs = qcow2_header.read(path), qemu_info(path)
    for key in CHECKED:
        assert ours.get(key) == theirs.get(key), (key, ours, theirs)
    assert data_file(ours) == data_file(theirs)
    return ours


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "vms").mkdir()
    qemu_img("create", "-f", "raw", str(tmp_path / "images" / "base.raw"), "64M")
    qemu_img("create", "-f", "qcow2", str(tmp_path / "images" / "base.qcow2"), "128M")
    return tmp_path


def test_plain_volumes_and_overlays_read_as_qemu_img_reads_them(folder):
    disk = folder / "vms" / "plain.qcow2"
    qemu_img("create", "-f", "qcow2", str(disk), "3G")
    assert same(disk)["virtual-size"] == 3 << 30
    for base, fmt in (("base.raw", "raw"), ("base.qcow2", "qcow2")):
        overlay = folder / "vms" / f"on-{fmt}.qcow2"
        qemu_img("create", "-f", "qcow2", "-F", fmt, "-b", f"../images/{base}", str(overlay))
        info = same(overlay)
        assert (info["backing-filename"], info["backing-filename-format"]) == (
            f"../images/{base}",
            fmt,
        )
    grown = folder / "vms" / "grown.qcow2"
    qemu_img("create", "-f", "qcow2", str(grown), "1G")
    qemu_img("resize", "-f", "qcow2", str(grown), "5G")
    assert same(grown)["virtual-size"] == 5 << 30


@pytest.mark.parametrize(
    "options",
    [
        "compat=0.10",
        "compression_type=zstd",
        "extended_l2=on,cluster_size=128k",
        "lazy_refcounts=on",
    ],
)
def test_other_header_shapes_read_the_same(folder, options):
    disk = folder / "vms" / "shaped.qcow2"
    qemu_img("create", "-f", "qcow2", "-o", options, str(disk), "2G")
    same(disk)


def test_a_header_rewritten_by_a_host_reads_as_qemu_img_reads_it(folder):
    disk = folder / "vms" / "vm1.qcow2"
    qemu_img("create", "-f", "qcow2", "-F", "raw", "-b", "../images/base.raw", str(disk))
    qemu_img("rebase", "-u", "-f", "qcow2", "-F", "raw", "-b", "/etc/hostname", str(disk))
    assert same(disk)["backing-filename"] == "/etc/hostname"
    qemu_img("rebase", "-u", "-f", "qcow2", "-b", "", str(disk))
    assert "backing-filename" not in same(disk)


def test_an_external_data_file_is_always_seen(folder):
    disk = folder / "vms" / "data.qcow2"
    qemu_img("create", "-f", "qcow2", "-o", f"data_file={folder}/elsewhere.raw", str(disk), "1G")
    assert data_file(same(disk)) == f"{folder}/elsewhere.raw"
    # the flag without a name: still a data file
    raw = bytearray(disk.read_bytes())
    extensions = struct.unpack_from(">I", raw, 100)[0]
    struct.pack_into(">I", raw, extensions, 0x0BADCAFE)  # hide the name's extension
    disk.write_bytes(bytes(raw))
    assert qcow2_header.read(disk)["format-specific"]["data"]["data-file"]


@pytest.mark.parametrize(
    "offset, value, fmt, message",
    [
        (0, b"QFI\x00", None, "not a qcow2 image"),
        (4, 4, ">I", "version 4 is unknown"),
        (32, 1, ">I", "encrypted"),
        (72, 1 << 9, ">Q", "features this reader does not know"),
        (100, 1 << 30, ">I", "header length"),
        (16, 5000, ">I", "backing file name is out of bounds"),
    ],
)
def test_what_it_cannot_vouch_for_is_refused(folder, offset, value, fmt, message):
    disk = folder / "vms" / "odd.qcow2"
    qemu_img("create", "-f", "qcow2", "-F", "raw", "-b", "../images/base.raw", str(disk))
    raw = bytearray(disk.read_bytes())
    if fmt is None:
        raw[offset : offset + len(value)] = value
    else:
        struct.pack_into(fmt, raw, offset, value)
    disk.write_bytes(bytes(raw))
    with pytest.raises(HeaderError, match=message):
        qcow2_header.read(disk)


def test_a_short_or_foreign_file_is_refused(folder):
    for name, content in (("empty", b""), ("short", b"QFI\xfb\x00\x00"), ("raw", b"\x00" * 4096)):
        path = folder / "vms" / name
        path.write_bytes(content)
        with pytest.raises(HeaderError):
            qcow2_header.read(path)
