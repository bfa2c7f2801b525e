"""Two real guests for the integration tier, booted once and shared (the `running_guests`
fixture of tests/integration/conftest.py): a controller with lab hosts lab1 and lab2 and
Nube's own Debian image (tests/images.py), guest1 started on lab1 and guest2 on lab2 at once,
each with the owner's SSH key and user data that writes MARKER to its serial console.

Lab hosts have a software KVM that cannot run a Linux kernel, so the guests run under TCG
(VIRT_TYPE=qemu): they take a minute or two to boot, which is why the tier boots them once.

Tests that stop or remove the shared guests are marked `stops_guests`: the integration
conftest runs them after every other integration test."""

import contextlib
import re
import shutil
import threading
from pathlib import Path

from app import core
from app.adapters.storage import file_sha256
from app.db import get_db
from tests.integration import image_server
from tests.wait import join_all, wait_for

IMAGE = "debian12.qcow2"
BOOT_TIMEOUT = 600  # seconds; two guests under TCG on a loaded CI machine
AGENT_TIMEOUT = 180
MARKER = "NUBE-FIRST-BOOT-MARKER-7f3a"
MARKER_FILE = "/root/first-boot-marker"  # the shared guests' user data writes MARKER there
GUESTS = {"guest1": "lab1", "guest2": "lab2"}  # each guest and the host it starts on
# guest2 boots the first time with a volume attached, which its cloud-init formats and mounts
FIRST_BOOT_VOLUME = {"guest2": "scratch"}
SCRATCH_MOUNT = "/mnt/scratch"
_FINISHED = re.compile(r"Cloud-init v\. \S+ finished")


def hostname(vm_id):
    """The hostname a shared guest is given through cloud-init."""
    return f"nube-{vm_id}"


def install(app, image, lab_hosts):
    """Initialise the controller, import the guest image into its repository from a server on
    127.0.0.1 with its checksum (the guests then boot from an imported image), add lab1 and
    lab2."""
    with app.app_context():
        core.init()
        image = Path(image)
        with image_server.serving(image.parent) as base:
            core.importImage(
                {
                    "name": IMAGE,
                    "url": f"{base}/{image.name}",
                    "sha256": file_sha256(image),
                    "os": "debian-12",
                }
            )
        for number, lab in enumerate(lab_hosts[:2], start=1):
            core.addHost(
                {
                    "address": lab["address"],
                    "user": lab["user"],
                    "password": lab["password"],
                    "name": f"lab{number}",
                    "share": "bind",
                    "network": "none",  # no guest traffic may leave these machines
                    "data_address": lab["data_address"],  # migrations go over the underlay
                }
            )


def user_data(vm_id):
    """A shared guest's user data: MARKER on its console, and (guest2) its first-boot volume
    formatted and mounted by cloud-init's disk_setup, fs_setup and mounts."""
    text = (
        "#cloud-config\nssh_genkeytypes: [ed25519]\n"  # no RSA key generation under TCG
        f"runcmd:\n  - echo {MARKER} > /dev/ttyS0\n"
        f"  - echo {MARKER} > {MARKER_FILE}\n"
    )
    volume = FIRST_BOOT_VOLUME.get(vm_id)
    if volume:
        device = f"/dev/disk/by-id/virtio-{volume}"
        text += (
            f"fs_setup:\n  - {{label: {volume}, filesystem: ext4, device: {device},"
            " partition: none}\n"
            f"mounts:\n  - [LABEL={volume}, {SCRATCH_MOUNT}, ext4, 'defaults,nofail', '0', '2']\n"
        )
    return text


def _create(vm_id, host, owner_key):
    """Create a shared guest and start it (guest2 with its volume attached before it first
    boots); the VM addVm returned."""
    volume = FIRST_BOOT_VOLUME.get(vm_id)
    vm = core.addVm(
        {
            "id": vm_id,
            "image": IMAGE,
            "mem": 768,
            "hostname": hostname(vm_id),
            "ssh_keys": [owner_key],
            "user_data": user_data(vm_id),
            "host": host,
            "start": volume is None,
        }
    )
    if volume:
        core.addVolume({"name": volume, "size": 1})
        core.attachVolume(volume, vm_id)
        core.startVm(vm_id)
        [vm] = core.listVms(f"id = {vm_id}")
    return vm


def start_all(app, owner_key):
    """Create and start every shared guest at once, one thread each; the VMs addVm returned."""
    created, errors = {}, {}

    def start(vm_id, host):
        with app.app_context():
            try:
                created[vm_id] = _create(vm_id, host, owner_key)
            except Exception as exc:  # noqa: BLE001  reported below, with the guest's name
                errors[vm_id] = exc

    threads = [
        threading.Thread(target=start, args=item, name=f"start-{item[0]}")
        for item in GUESTS.items()
    ]
    for thread in threads:
        thread.start()
    join_all(threads, timeout=BOOT_TIMEOUT, message="creating the guests")
    for vm_id, exc in errors.items():
        raise RuntimeError(f"creating {vm_id} failed: {exc}") from exc
    return created


def booted(vm_id):
    """Whether a guest's boot log shows cloud-init finished and a login prompt."""
    return bool(
        _FINISHED.search(core.consoleLog(vm_id, lines=2000))
        and f"{hostname(vm_id)} login:" in core.consoleLog(vm_id, lines=50)
    )


def wait_until_ready(app):
    """Wait until every shared guest finished booting and its agent answers; the agents'
    answers by guest."""
    from app.services import vms

    with app.app_context():
        wait_for(
            lambda: all(booted(vm_id) for vm_id in GUESTS),
            timeout=BOOT_TIMEOUT,
            interval=3,
            message=lambda: (
                "the guests did not finish booting; their logs end:\n"
                + "\n".join(
                    f"--- {vm_id}\n{core.consoleLog(vm_id, lines=40)}"
                    for vm_id in GUESTS
                    if not booted(vm_id)
                )
            ),
        )
        return {
            vm_id: wait_for(lambda vm_id=vm_id: vms.guest(vm_id), timeout=AGENT_TIMEOUT, interval=3)
            for vm_id in GUESTS
        }


def operation_log(kind, vm_id):
    """The log of a guest's newest operation of a kind, as text."""
    op_id = (
        get_db()
        .execute(
            "SELECT id FROM operations WHERE kind = ? AND target_name = ? ORDER BY id DESC",
            (kind, vm_id),
        )
        .fetchone()[0]
    )
    return "\n".join(
        r[0]
        for r in get_db().execute(
            "SELECT message FROM operation_log WHERE operation_id = ? ORDER BY id", (op_id,)
        )
    )


def tear_down(app, top):
    """Remove whatever shared guest is left, destroy the controller (every VM and host), close
    its hypervisor connections and delete its folder: each step even when one before failed."""
    try:
        with app.app_context():
            for vm_id in GUESTS:
                with contextlib.suppress(Exception):  # core.destroy removes it, or says why
                    if core.listVms(f"id = {vm_id}"):
                        core.removeVm(vm_id)
            core.destroy()
    finally:
        try:
            app.extensions["nube"].hypervisor.close()
        finally:
            shutil.rmtree(top, ignore_errors=True)
