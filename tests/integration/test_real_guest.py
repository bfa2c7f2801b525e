"""Real guests on lab hosts (the tier's shared guest1 and guest2, tests/integration/guests.py):
Nube's own Debian image, a cloud-init seed with a generated SSH key and user data, the boot
log read from the repository, the guest agent answering, a canceled then a real live migration,
and, after every other integration test, a clean shutdown through the agent and nothing left
after removal."""

import re
import subprocess
import threading

import pytest

from app import core
from app.db import get_db
from app.services import operations, vms
from tests.factories import cloud_init_fingerprint
from tests.integration.guests import GUESTS, MARKER, NETWORK, hostname, operation_log
from tests.wait import join_all, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def shared(running_guests):
    """The shared guests, with their controller's app context pushed for the test."""
    with running_guests["app"].app_context():
        yield running_guests


def test_the_guests_boot_configured_from_their_seeds(shared):
    for vm_id, host in GUESTS.items():
        vm = shared["created"][vm_id]
        assert vm["state"] == "running" and vm["host_name"] == host
        assert (shared["repository"] / "vms" / f"{vm_id}-seed.iso").is_file()
        assert "(type qemu)" in operation_log("vm.create", vm_id)
        # the boot log, as virtlogd writes it into the repository and Nube reads it back
        log = core.consoleLog(vm_id, lines=5000)
        assert MARKER in log, vm_id
        assert cloud_init_fingerprint(shared["owner_key"]) in log  # cloud-init's authorized keys
        assert "Authorized keys from /home/debian/.ssh/authorized_keys for user debian" in log


def test_the_guest_agents_answer_with_the_hostnames_given(shared):
    for vm_id in GUESTS:
        guest = wait_for(lambda vm_id=vm_id: vms.guest(vm_id), timeout=60, interval=2)
        assert guest["hostname"] == hostname(vm_id)
        assert "Debian" in guest["os"]


def running_migration():
    """The id of the running vm.migrate operation once it logged the job's progress."""
    row = (
        get_db()
        .execute(
            "SELECT o.id FROM operations o JOIN operation_log l ON l.operation_id = o.id"
            " WHERE o.kind = 'vm.migrate' AND o.status = 'running' AND l.message LIKE ?",
            ("%MiB of memory left%",),
        )
        .fetchone()
    )
    return row[0] if row else None


def test_a_canceled_live_migration_leaves_the_guest_where_it_was_and_a_real_one_moves_it(
    shared,
):
    """A canceled live migration leaves guest1 running on lab1; a real one moves it to lab2
    without a reboot, and its agent answers from there."""
    app = shared["app"]
    app.config["MIGRATION_BANDWIDTH"] = 1  # MiB/s: slow enough to cancel half-way
    outcome = {}

    def migrate():
        with app.app_context():
            try:
                core.migrateVm("guest1", "lab2")
            except core.OperationFailed as exc:
                outcome["error"] = str(exc)

    thread = threading.Thread(target=migrate, name="migrate-guest1")
    thread.start()
    try:
        op_id = wait_for(running_migration, timeout=120, interval=0.5, message="a migration")
        operations.cancel(op_id, "test")
    finally:
        join_all([thread], timeout=180, message="the canceled migration")
        app.config["MIGRATION_BANDWIDTH"] = 0
    assert "canceled" in outcome.get("error", ""), outcome
    vm = core.listVms("id = guest1")[0]
    assert vm["host_name"] == "lab1" and vm["state"] == "running"
    assert "stays on lab1" in operation_log("vm.migrate", "guest1")

    moved = core.migrateVm("guest1", "lab2")
    assert moved["host_name"] == "lab2" and moved["state"] == "running"
    assert "MiB of memory left" in operation_log("vm.migrate", "guest1")
    guest = wait_for(lambda: vms.guest("guest1"), timeout=60, interval=2)
    assert guest["hostname"] == hostname("guest1")  # the agent answers from lab2
    # no second boot: the kernel announced itself once in the whole boot log
    assert core.consoleLog("guest1", lines=10_000).count("Linux version") == 1


@pytest.mark.stops_guests
def test_the_guests_shut_down_through_their_agents_and_leave_nothing_once_removed(shared):
    for vm_id in GUESTS:
        # a clean shutdown through the agent, not ACPI, not forced
        core.stopVm(vm_id)
        stop = operation_log("vm.stop", vm_id)
        said = f"stop's log:\n{stop}\nboot log:\n{core.consoleLog(vm_id, lines=60)}"
        assert f"asked {vm_id} to shut down (through the guest agent)" in stop, said
        assert "forcing" not in stop, said
        assert core.listVms(f"id = {vm_id}")[0]["state"] == "stopped"
        assert "reboot: Power down" in core.consoleLog(vm_id, lines=100)

    for vm_id in GUESTS:
        core.removeVm(vm_id)
    left = sorted(p.name for p in (shared["repository"] / "vms").iterdir())
    assert left == [], f"removeVm left {left}"
    # guest2's first-boot volume outlives it, detached, until removed on its own
    [scratch] = core.listVolumes("name = scratch")
    assert (scratch["vm"], scratch["state"]) == (None, "available")
    core.removeVolume("scratch")
    assert not (shared["repository"] / "volumes" / "scratch.qcow2").exists()
    # their network goes too, and no host keeps a bridge, a VXLAN device or a rule of it
    core.removeNetwork(NETWORK)
    for host in core.listHosts():
        lab_namespace = f"nube-lab{host['name'].removeprefix('lab')}"
        for command in (["ip", "-br", "link"], ["nft", "list", "ruleset"]):
            listing = subprocess.run(
                ["ip", "netns", "exec", lab_namespace, *command],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            pattern = r"\b(nbr|nvx|nt)\d+|nube_(vxlan|rules|ports)"
            assert not re.search(pattern, listing), (host["name"], listing)
