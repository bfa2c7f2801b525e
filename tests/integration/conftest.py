"""Integration tier fixtures: the controller's SSH key and known_hosts for the lab hosts, and
two real guests booted once for the tier (tests/integration/guests.py).

Tests marked `stops_guests` stop or remove the shared guests: they run after every other
integration test (and only those: items of other tiers keep their places)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from app import create_app
from tests.factories import make_ssh_key
from tests.images import built_image
from tests.integration import guests

STOPS_GUESTS = "stops_guests"


def pytest_configure(config):
    """Register the marker of the tests that end the shared guests."""
    config.addinivalue_line(
        "markers", f"{STOPS_GUESTS}: stops or removes the shared guests (runs after the others)"
    )


def _order(item):
    """Where an integration test runs: those that do not use the shared guests first (some
    remove and re-add lab hosts, which must not happen under the guests), then those that
    use them, then those marked stops_guests."""
    if item.get_closest_marker(STOPS_GUESTS):
        return 2
    return 1 if "running_guests" in getattr(item, "fixturenames", ()) else 0


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """Order the integration tests by _order (stable: each group keeps its own order); they
    are reordered among the places they already hold, so no test of another tier moves."""
    here = Path(__file__).parent
    places = [index for index, item in enumerate(items) if here in item.path.parents]
    tier = sorted((items[index] for index in places), key=_order)
    for index, item in zip(places, tier, strict=True):
        items[index] = item


@pytest.fixture(scope="session")
def controller_ssh(lab_hosts, tmp_path_factory):
    """Give the controller an SSH key and a known_hosts filled on first contact with the hosts."""
    instance = tmp_path_factory.mktemp("instance")
    instance.chmod(0o700)
    keyfile = instance / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "nube", "-f", str(keyfile)],
        check=True,
    )
    known_hosts = instance / "known_hosts"
    addresses = [host["address"] for host in lab_hosts]
    scan = subprocess.run(
        ["ssh-keyscan", "-T", "5", "-t", "ed25519", *addresses],
        capture_output=True,
        text=True,
        check=True,
    )
    known_hosts.write_text(scan.stdout)
    known_hosts.chmod(0o600)
    return {
        "keyfile": str(keyfile),
        "pubkey": (instance / "id_ed25519.pub").read_text().strip(),
        "known_hosts": str(known_hosts),
    }


def lab_controller(prefix, **settings):
    """A controller for lab hosts: real provisioner, immediate queue, no kernel NFS, on a temp
    folder QEMU can traverse (it must reach the disks below). Returns (app, folder)."""
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # ansible
    top = Path(tempfile.mkdtemp(prefix=prefix))
    top.chmod(0o755)
    app = create_app(
        {
            "INSTANCE_PATH": str(top / "instance"),
            "DATABASE": str(top / "nube.sqlite"),
            "REPOSITORY": str(top / "export" / "iaas"),
            "QUEUE": "immediate",
            "PROVISIONER": "ansible",
            "EXPORT": "none",
            "HOST_TIMEOUT": 20,
            "SECRET_KEY": "integration",
            **settings,
        }
    )
    return app, top


@pytest.fixture(scope="package")
def running_guests(lab_hosts, tmp_path_factory):
    """A controller with lab hosts lab1, lab2 and lab3, and guest1 on lab1 and guest2 on lab2 booted
    at once from Nube's Debian image (each with the owner's key and user data), returned once
    cloud-init finished in both and their agents answer: {app, repository, owner_key,
    owner_keyfile (its private half), created
    (the VMs addVm returned), agents (what each agent first said)}. guest1 may have moved to
    lab2 (test_real_guest migrates it): read a guest's host from core.listVms. Whatever
    happens, the guests, hosts and folder are removed at the end of the tier."""
    image = built_image()
    owner_folder = tmp_path_factory.mktemp("owner")
    owner_key = make_ssh_key(owner_folder)[0]
    app, top = lab_controller(
        "nube-guests-", VIRT_TYPE="qemu", STOP_TIMEOUT=120, IMAGE_IMPORT_ALLOW="127.0.0.0/8"
    )
    repository = top / "export" / "iaas"
    try:
        guests.install(app, image, lab_hosts)
        created = guests.start_all(app, owner_key)
        with app.app_context():  # lab3's preparation runs while the guests boot
            guests.add_lab_host(lab_hosts[2], "lab3")
        agents = guests.wait_until_ready(app)
        yield {
            "app": app,
            "repository": repository,
            "owner_key": owner_key,
            "owner_keyfile": str(owner_folder / "id_ed25519"),
            "created": created,
            "agents": agents,
        }
    finally:
        guests.tear_down(app, top)
