"""What a guest agent reports of its file systems: each mount with the serials of its disks
(a volume's serial is its name), the guest's text made printable and its numbers checked."""

from app.adapters.guest_agent import FILESYSTEMS_MAX, read_guest_info
from tests.unit.test_first_boot import AgentDomain


def test_file_systems_name_the_volumes_they_are_on():
    info = {
        "fs.count": 3,
        "fs.0.mountpoint": "/",
        "fs.0.fstype": "ext4",
        "fs.0.total-bytes": 4_000_000_000,
        "fs.0.used-bytes": 1_000_000_000,
        "fs.0.disk.count": 1,
        "fs.0.disk.0.serial": "",
        "fs.1.mountpoint": "/mnt/data\x1b[2J",
        "fs.1.fstype": "ext4",
        "fs.1.total-bytes": "not a number",
        "fs.1.disk.count": 1,
        "fs.1.disk.0.serial": "data1",
        "fs.2.mountpoint": "/boot/efi",
        "fs.2.fstype": "vfat",
        "fs.2.used-bytes": -5,
    }
    found = read_guest_info(AgentDomain(info, {})).filesystems
    assert found == [
        {"mountpoint": "/", "type": "ext4", "total": 4_000_000_000, "used": 1_000_000_000,
         "disks": [""]},
        {"mountpoint": "/mnt/data", "type": "ext4", "total": None, "used": None,
         "disks": ["data1"]},
        {"mountpoint": "/boot/efi", "type": "vfat", "total": None, "used": None, "disks": []},
    ]  # fmt: skip


def test_a_guest_cannot_make_the_list_endless():
    info = {"fs.count": 10**9, "fs.0.disk.count": 10**9}
    found = read_guest_info(AgentDomain(info, {})).filesystems
    assert len(found) == FILESYSTEMS_MAX and len(found[0]["disks"]) <= 8
    assert read_guest_info(AgentDomain({"fs.count": "many"}, {})).filesystems == []
