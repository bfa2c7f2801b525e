"""Integration tier fixtures: the controller's SSH key and known_hosts for the lab hosts."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from app import create_app


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
