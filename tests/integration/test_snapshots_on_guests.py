"""Snapshots of a real guest (guest2 of the integration tier's shared pair, with its volume
scratch mounted): taken while it runs, its file systems frozen by its agent; the snapshot moves
with a live migration (it is inside the repository's files); on the new host a live snapshot
is taken and deleted while the guest runs; stopped there, the VM is reverted (files deleted
after the snapshot come back, one written after it is gone), the snapshot deleted, and the
guest boots; stopped, it is saved as an image, and a VM made from that image boots with what it had
(the marker its first boot wrote) and an identity of its own (hostname, machine-id, SSH host
keys). Commands run in the guest through its agent (tests/integration/guest_exec.py)."""

import pytest

from app import core
from app.adapters import qcow2_header
from tests.integration.guest_exec import shell
from tests.integration.guests import MARKER, MARKER_FILE, SCRATCH_MOUNT, hostname, operation_log
from tests.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SAVED = "guest2-saved.qcow2"
FAST_KEYS = "#cloud-config\nssh_genkeytypes: [ed25519]\n"  # no RSA key made under TCG
KEPT = "kept-by-snapshot-5e21"
LATER = "written-after-the-snapshot-90c4"
BOOT_TIMEOUT = 600


def host_of(vm_id):
    """The name of the host a VM runs on."""
    return core.listVms(f"id = {vm_id}")[0]["host_name"]


def wait_for_agent(app, vm_id):
    """Wait until a started guest's agent runs commands."""

    def answers():
        try:
            return shell(app, vm_id, "echo up").strip() == "up"
        except Exception:  # noqa: BLE001  the agent is not up yet
            return False

    wait_for(answers, timeout=BOOT_TIMEOUT, interval=3, message=f"{vm_id}'s agent after a start")


def tags(repository, *files):
    """The internal snapshots each file holds."""
    return [
        [s["name"] for s in qcow2_header.read(repository / f).get("snapshots", ())] for f in files
    ]


def test_a_snapshot_moves_with_its_guest_and_brings_it_back_on_the_new_host(running_guests):
    app, repository = running_guests["app"], running_guests["repository"]
    files = ("vms/guest2.qcow2", "volumes/scratch.qcow2")
    kept = f"/root/kept {SCRATCH_MOUNT}/kept"
    with app.app_context():
        shell(app, "guest2", f"for f in {kept}; do echo {KEPT} > $f; done && sync")
        taken = core.snapshotVm("guest2", "s1")
        assert (taken["state"], taken["frozen"], taken["volumes"]) == ("ready", True, ["scratch"])
        assert "the guest's file systems were frozen for it" in operation_log(
            "vm.snapshot", "guest2"
        )
        assert tags(repository, *files) == [["nube-s1"], ["nube-s1"]]
        shell(app, "guest2", f"rm {kept} && echo {LATER} > /root/later && sync")
        with pytest.raises(core.Conflict, match="running"):
            core.revertSnapshot("guest2", "s1")

        before = host_of("guest2")
        moved = core.migrateVm("guest2")  # live: the snapshots are inside the files it keeps
        assert moved["host_name"] != before and moved["state"] == "running"
        assert [s["name"] for s in core.listSnapshots("guest2")] == ["s1"]

        # on the new host: a live snapshot, deleted while the guest runs
        frozen = core.snapshotVm("guest2", "s2")["frozen"]
        assert frozen is True, operation_log("vm.snapshot", "guest2")
        core.removeSnapshot("guest2", "s2")
        assert tags(repository, *files) == [["nube-s1"], ["nube-s1"]]
        assert shell(app, "guest2", "echo alive").strip() == "alive"

        core.stopVm("guest2")
        core.revertSnapshot("guest2", "s1")  # on the host it moved to
        core.removeSnapshot("guest2", "s1")  # stopped: qemu-img deletes it
        assert core.listSnapshots("guest2") == [] and tags(repository, *files) == [[], []]

        # stopped, it is saved as an image, and a new VM boots from that image beside it
        saved = core.saveImage("guest2", SAVED)
        assert saved["name"] == SAVED
        core.startVm("guest2")
        core.addVm(
            {
                "id": "guest3",
                "image": SAVED,
                "mem": 768,
                "hostname": hostname("guest3"),
                "ssh_keys": [running_guests["owner_key"]],
                "user_data": FAST_KEYS,
                "start": True,
            }
        )
        wait_for_agent(app, "guest2")
        wait_for_agent(app, "guest3")
        # the files the snapshot kept are back, the one written after it is gone
        assert shell(app, "guest2", f"cat {kept}").split() == [KEPT, KEPT]
        assert shell(app, "guest2", "test -e /root/later && echo yes || echo no").strip() == "no"
        # the new VM has what the saved one had, and an identity of its own
        assert shell(app, "guest3", f"cat {MARKER_FILE}").strip() == MARKER
        assert shell(app, "guest3", "hostname").strip() == hostname("guest3")
        identity = "cat /etc/machine-id /etc/ssh/ssh_host_ed25519_key.pub"
        theirs, ours = shell(app, "guest2", identity).split("\n"), shell(app, "guest3", identity)
        ours = ours.split("\n")
        assert ours[0] and ours[0] != theirs[0]  # machine-id
        assert ours[1] and ours[1] != theirs[1]  # SSH host key
        core.removeVm("guest3")
