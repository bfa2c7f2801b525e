"""Volumes on real guests (the integration tier's shared pair, booted once): one attached
before guest2's first boot, formatted and mounted by its cloud-init; another made in the
repository, hot-plugged into a running guest that formats and mounts it and writes a file,
grown live (the guest sees the new size at once), carried by a live migration, released by
the guest and detached live, then attached to the other guest, which reads the same file.
Commands run in the guests through their agents (tests/integration/guest_exec.py)."""

import subprocess

import pytest

from app import core
from app.services import vms
from tests.integration.guest_exec import shell
from tests.integration.guests import SCRATCH_MOUNT
from tests.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GIB = 1 << 30
DISK = "/dev/disk/by-id/virtio-data1"  # the volume's name is the serial the guest sees
PROOF = "written-by-guest1-c41f"


def sees_disk(app, vm_id):
    """Whether the guest has the volume's device now."""
    return shell(app, vm_id, f"test -b {DISK} && echo yes || echo no").strip() == "yes"


def host_of(vm_id):
    """The name of the host a VM runs on."""
    return core.listVms(f"id = {vm_id}")[0]["host_name"]


def test_a_volume_attached_before_the_first_boot_is_formatted_and_mounted_by_cloud_init(
    running_guests,
):
    app = running_guests["app"]
    with app.app_context():
        [scratch] = core.listVolumes("name = scratch")
        assert (scratch["vm"], scratch["target"], scratch["state"]) == ("guest2", "vdb", "in-use")
        found = shell(app, "guest2", f"findmnt -n -o FSTYPE,LABEL {SCRATCH_MOUNT}").split()
        assert found == ["ext4", "scratch"]
        shell(app, "guest2", f"touch {SCRATCH_MOUNT}/written && sync")
        # the guest agent reports it too, by the volume's name (its disk's serial)
        mounted = {f["mountpoint"]: f for f in vms.guest("guest2")["filesystems"]}
        assert mounted[SCRATCH_MOUNT]["disks"] == ["scratch"]
        assert mounted[SCRATCH_MOUNT]["type"] == "ext4"


def test_a_volume_carries_its_data_from_guest_to_guest(running_guests):
    app = running_guests["app"]
    with app.app_context():
        volume = core.addVolume({"name": "data1", "size": 1})
        assert (volume["size"], volume["state"]) == (1, "available")

        attached = core.attachVolume("data1", "guest1")  # guest1 runs: a hot-plug
        assert (attached["vm"], attached["target"], attached["state"]) == (
            "guest1",
            "vdb",
            "in-use",
        )
        wait_for(lambda: sees_disk(app, "guest1"), timeout=60, interval=1, message="vdb in guest1")
        shell(
            app,
            "guest1",
            f"mkfs.ext4 -q {DISK} && mkdir -p /mnt/data && mount {DISK} /mnt/data"
            f" && echo {PROOF} > /mnt/data/proof && sync",
        )

        # refusals against the real thing change nothing
        with pytest.raises(core.Conflict, match="attached to VM guest1"):
            core.attachVolume("data1", "guest2")
        with pytest.raises(core.Conflict, match="attached to VM guest1: detach it"):
            core.removeVolume("data1")
        with pytest.raises(core.InvalidInput, match="it can only grow"):
            core.growVolume("data1", 1)

        assert core.growVolume("data1", 2)["size"] == 2  # live: QEMU resizes, the guest sees
        wait_for(
            lambda: int(shell(app, "guest1", f"blockdev --getsize64 {DISK}")) == 2 * GIB,
            timeout=30,
            interval=1,
            message="the guest seeing 2 GiB",
        )
        shell(app, "guest1", f"resize2fs {DISK} >/dev/null 2>&1")
        blocks = int(shell(app, "guest1", "df --output=size -B1M /mnt/data | tail -1"))
        assert blocks > 1500  # MiB: the file system grew into the new room

        before = host_of("guest1")
        moved = core.migrateVm("guest1")  # live, to the other lab host
        assert moved["host_name"] != before and moved["state"] == "running"
        assert [v["vm"] for v in core.listVolumes("name = data1")] == ["guest1"]
        assert shell(app, "guest1", "cat /mnt/data/proof").strip() == PROOF

        shell(app, "guest1", "umount /mnt/data")
        detached = core.detachVolume("data1")  # guest1 releases it
        assert (detached["vm"], detached["state"]) == (None, "available")
        assert not sees_disk(app, "guest1")

        core.attachVolume("data1", "guest2")
        wait_for(lambda: sees_disk(app, "guest2"), timeout=60, interval=1, message="vdb in guest2")
        read = shell(
            app, "guest2", f"mkdir -p /mnt/data && mount {DISK} /mnt/data && cat /mnt/data/proof"
        )
        assert read.strip() == PROOF

        shell(app, "guest2", "umount /mnt/data")
        core.detachVolume("data1")
        core.removeVolume("data1")
        assert not (running_guests["repository"] / "volumes" / "data1.qcow2").exists()


def test_a_guest_that_never_lets_go_keeps_its_volume(running_guests):
    """A guest that does not answer the unplug request (here: no OS at all, SeaBIOS waiting
    on a blank disk) keeps the volume: the detach fails after DETACH_TIMEOUT and says so, and
    the volume stays attached; stopped, the VM gives it up through its definition."""
    app = running_guests["app"]
    blank = running_guests["repository"] / "images" / "blank.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(blank), "64M"], check=True)
    blank.chmod(0o644)
    with app.app_context():
        core.addVm({"id": "silent1", "image": "blank.qcow2", "mem": 64, "start": True})
        core.addVolume({"name": "held1", "size": 1})
        core.attachVolume("held1", "silent1")
        app.config["DETACH_TIMEOUT"] = 3
        try:
            with pytest.raises(core.OperationFailed, match="did not release vdb within 3s"):
                core.detachVolume("held1")
        finally:
            app.config["DETACH_TIMEOUT"] = 60.0
        [held] = core.listVolumes("name = held1")
        assert (held["vm"], held["state"], held["task"]) == ("silent1", "in-use", None)
        core.stopVm("silent1", force=True)
        assert core.detachVolume("held1")["state"] == "available"
        core.removeVm("silent1")
        core.removeVolume("held1")
        blank.unlink()
