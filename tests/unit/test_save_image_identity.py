"""image.save on a real Debian guest disk: a VM made from the cached image Nube built (an
overlay, as every VM disk is) that has an identity of its own (machine-id, SSH host keys,
cloud-init's instance state, written into its filesystem with debugfs) is saved with the real
virt-sysprep; the image has none of it left and keeps the VM's own files. Skipped when the
cached image (tests/images.py) or virt-sysprep is absent; about a minute (virt-sysprep boots
its appliance under TCG here)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from app import core
from app.adapters.commands import CommandRunner
from tests.factories import gen_vm
from tests.images import cache_dir, image_key

pytestmark = pytest.mark.slow

PLANTED = "nube-test-identity\n"


def cached_image():
    """The cached Debian image (the current recipe's, else any bookworm one), or None."""
    current = cache_dir() / f"debian-bookworm-{image_key()}.qcow2"
    if current.is_file():
        return current
    return next(iter(sorted(cache_dir().glob("debian-bookworm-*.qcow2"))), None)


def unavailable():
    """Why this test cannot run here, or None."""
    if cached_image() is None:
        return f"no cached Debian image in {cache_dir()} (tests/images.py builds one)"
    missing = CommandRunner().missing(["virt-sysprep", "debugfs", "sfdisk"])
    if missing:
        return f"needs {', '.join(missing)} (libguestfs-tools, e2fsprogs, fdisk)"
    if not list(Path("/boot").glob("vmlinuz-*")):
        return "libguestfs's appliance needs a kernel in /boot"
    return None


@pytest.fixture
def config_overrides():
    """This machine's KVM runs no Linux kernel: virt-sysprep's appliance runs under TCG."""
    return {"VIRT_TYPE": "qemu", "CPU_OVERCOMMIT": 100.0, "MEM_OVERCOMMIT": 100.0}


def partition_offset(raw):
    """The byte offset of a raw disk's first partition (its ext4 root)."""
    table = json.loads(
        subprocess.run(["sfdisk", "--json", str(raw)], capture_output=True, check=True).stdout
    )["partitiontable"]
    return table["partitions"][0]["start"] * table["sectorsize"]


def debugfs(raw, offset, commands, write=False):
    """Run debugfs commands on the filesystem at offset in a raw disk; its output."""
    args = ["debugfs", *(["-w"] if write else []), "-f", "-", f"{raw}?offset={offset}"]
    done = subprocess.run(args, input=commands, capture_output=True, text=True, check=True)
    return done.stdout


def plant_identity(tmp_path, disk, base):
    """Give the VM's disk what a booted guest has: a machine-id, SSH host keys, cloud-init's
    instance state, and a file of its own (written in a raw copy, then the overlay made again
    on its base from it: still an overlay, as Nube made it)."""
    raw = tmp_path / "planted.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(disk), str(raw)], check=True)
    offset = partition_offset(raw)
    content = tmp_path / "content"
    content.write_text(PLANTED)
    debugfs(
        raw,
        offset,
        "\n".join(
            [
                "rm /etc/machine-id",
                f"write {content} /etc/machine-id",
                f"write {content} /etc/ssh/ssh_host_ed25519_key",
                f"write {content} /etc/ssh/ssh_host_ed25519_key.pub",
                "mkdir /var/lib/cloud",
                "mkdir /var/lib/cloud/instances",
                "mkdir /var/lib/cloud/instances/iid-old",
                f"write {content} /var/lib/cloud/instances/iid-old/user-data.txt",
                "symlink /var/lib/cloud/instance /var/lib/cloud/instances/iid-old",
                "mkdir /var/lib/cloud/data",
                f"write {content} /var/lib/cloud/data/instance-id",
                f"write {content} /etc/nube-marker",
            ]
        ),
        write=True,
    )
    overlay = tmp_path / "vm1.qcow2"
    subprocess.run(
        ["qemu-img", "convert", "-O", "qcow2", "-B", str(base), "-F", "qcow2"]
        + [str(raw), str(overlay)],
        check=True,
    )
    subprocess.run(
        ["qemu-img", "rebase", "-u", "-F", "qcow2", "-b", "../images/debian.qcow2", str(overlay)],
        check=True,
    )
    os.replace(overlay, disk)
    raw.unlink()


def test_a_saved_debian_vm_has_no_identity_left(ctx, host, tmp_path):
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    images = ctx.extensions["nube"].storage.images_dir
    shutil.copyfile(cached_image(), images / "debian.qcow2")  # never the cached file itself
    gen_vm(ctx, "debian.qcow2", "vm1")
    disk = ctx.extensions["nube"].storage.disk_path("vm1")
    plant_identity(tmp_path, disk, images / "debian.qcow2")

    core.saveImage("vm1", "saved.qcow2")

    saved = images / "saved.qcow2"
    header = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", str(saved)], capture_output=True, check=True
        ).stdout
    )
    assert "backing-filename" not in header
    raw = tmp_path / "saved.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(saved), str(raw)], check=True)
    offset = partition_offset(raw)
    read = debugfs(
        raw,
        offset,
        "cat /etc/machine-id\nls -p /etc/ssh\nls -p /var/lib/cloud\ncat /etc/nube-marker\n",
    )
    machine_id, ssh, cloud, marker = read.split("debugfs: ")[1:]
    assert machine_id.splitlines()[1:] == []  # empty: systemd makes a new one at first boot
    assert "ssh_host_" not in ssh and "/sshd_config/" in ssh
    assert [line.split("/")[5] for line in cloud.splitlines()[1:] if line] == [".", ".."]
    assert marker.splitlines()[1:] == [PLANTED.strip()]
    # the VM's own disk is as it was
    before = debugfs_of(tmp_path, disk, "cat /etc/machine-id\n")
    assert PLANTED.strip() in before


def debugfs_of(tmp_path, qcow2, commands):
    """debugfs's output on a qcow2's first partition (read through a raw copy)."""
    raw = tmp_path / "check.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(qcow2), str(raw)], check=True)
    try:
        return debugfs(raw, partition_offset(raw), commands)
    finally:
        raw.unlink()
