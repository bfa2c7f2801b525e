"""Integration tier fixtures: the controller's SSH key and known_hosts for the lab hosts."""

from __future__ import annotations

import subprocess

import pytest


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
