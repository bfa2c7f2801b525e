"""A real guest on a lab host: Nube's own Debian image (built, or reused from the cache), a
cloud-init seed with a generated SSH key and user data, the boot log read from the repository,
the guest agent answering, a clean shutdown through it, and nothing left after removal.

Lab hosts have a software KVM that cannot run a Linux kernel, so the guest runs under TCG
(VIRT_TYPE=qemu): it takes a minute or two to boot."""

import os
import re
import shutil
import threading

import pytest

from app import core
from app.db import get_db
from tests.factories import cloud_init_fingerprint, make_ssh_key
from tests.images import built_image
from tests.integration.conftest import lab_controller
from tests.wait import join_all, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IMAGE = "debian12.qcow2"
BOOT_TIMEOUT = 600  # seconds; TCG on a loaded CI machine
MARKER = "NUBE-FIRST-BOOT-MARKER-7f3a"


@pytest.fixture(scope="module")
def guest_image():
    """Nube's Debian image, built by image.build once and cached outside the repository."""
    return built_image()


@pytest.fixture(scope="module")
def controller(lab_hosts, guest_image):
    """A controller with two lab hosts and the guest image in its repository."""
    app, top = lab_controller("nube-guest-", VIRT_TYPE="qemu", STOP_TIMEOUT=120)
    repository = top / "export" / "iaas"
    with app.app_context():
        core.init()
        shutil.copyfile(guest_image, repository / "images" / IMAGE)
        os.chmod(repository / "images" / IMAGE, 0o644)
        for number, lab in enumerate(lab_hosts[:2], start=1):
            core.addHost(
                {
                    "address": lab["address"],
                    "user": lab["user"],
                    "password": lab["password"],
                    "name": f"lab{number}",
                    "share": "bind",
                    "network": "none",  # no guest traffic may leave these machines
                }
            )
        yield {"app": app, "repository": repository}
        try:
            core.destroy()
        finally:
            app.extensions["nube"].hypervisor.close()
            shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="module")
def owner_key(tmp_path_factory):
    """The VM owner's key pair, made for this test."""
    return make_ssh_key(tmp_path_factory.mktemp("owner"))[0]


def operation_log(kind):
    """The newest operation of a kind: its log as text."""
    op_id = (
        get_db()
        .execute("SELECT id FROM operations WHERE kind = ? ORDER BY id DESC", (kind,))
        .fetchone()[0]
    )
    return "\n".join(
        r[0]
        for r in get_db().execute(
            "SELECT message FROM operation_log WHERE operation_id = ? ORDER BY id", (op_id,)
        )
    )


def test_a_real_guest_boots_configured_and_shuts_down_through_its_agent(controller, owner_key):
    repository = controller["repository"]
    user_data = f"#cloud-config\nruncmd:\n  - echo {MARKER} > /dev/ttyS0\n"
    vm = core.addVm(
        {
            "id": "guest1",
            "image": IMAGE,
            "mem": 768,
            "hostname": "nube-guest",
            "ssh_keys": [owner_key],
            "user_data": user_data,
            "host": "lab1",
            "start": True,
        }
    )
    assert vm["state"] == "running"
    assert (repository / "vms" / "guest1-seed.iso").is_file()
    assert "(type qemu)" in operation_log("vm.create")

    # the boot log, as virtlogd writes it into the repository and Nube reads it back
    finished = re.compile(r"Cloud-init v\. \S+ finished")
    wait_for(
        lambda: (
            finished.search(core.consoleLog("guest1", lines=2000))
            and "nube-guest login:" in core.consoleLog("guest1", lines=50)
        ),
        timeout=BOOT_TIMEOUT,
        interval=3,
        message=lambda: (
            "the guest did not finish booting; its log ends:\n"
            + core.consoleLog("guest1", lines=40)
        ),
    )
    log = core.consoleLog("guest1", lines=5000)
    assert MARKER in log
    assert cloud_init_fingerprint(owner_key) in log  # cloud-init's authorized keys
    assert "Authorized keys from /home/debian/.ssh/authorized_keys for user debian" in log

    # the guest agent answers with the hostname it was given
    from app.services import vms

    guest = wait_for(lambda: vms.guest("guest1"), timeout=180, interval=3)
    assert guest["hostname"] == "nube-guest"
    assert "Debian" in guest["os"]

    migrate_the_booted_guest(controller["app"])

    # a clean shutdown through the agent, not ACPI, not forced
    core.stopVm("guest1")
    stop = operation_log("vm.stop")
    said = f"stop's log:\n{stop}\nboot log:\n{core.consoleLog('guest1', lines=60)}"
    assert "asked guest1 to shut down (through the guest agent)" in stop, said
    assert "forcing" not in stop, said
    assert core.listVms("id = guest1")[0]["state"] == "stopped"
    assert "reboot: Power down" in core.consoleLog("guest1", lines=100)

    core.removeVm("guest1")
    left = sorted(p.name for p in (repository / "vms").iterdir())
    assert left == [], f"removeVm left {left}"


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


def migrate_the_booted_guest(app):
    """A canceled live migration leaves the guest running where it was; a real one moves it
    to lab2 without a reboot, and its agent answers from there."""
    from app.services import operations, vms

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
    assert "stays on lab1" in operation_log("vm.migrate")

    moved = core.migrateVm("guest1", "lab2")
    assert moved["host_name"] == "lab2" and moved["state"] == "running"
    assert "MiB of memory left" in operation_log("vm.migrate")
    guest = wait_for(lambda: vms.guest("guest1"), timeout=60, interval=2)
    assert guest["hostname"] == "nube-guest"  # the agent answers from lab2
    # no second boot: the kernel announced itself once in the whole boot log
    assert core.consoleLog("guest1", lines=10_000).count("Linux version") == 1
