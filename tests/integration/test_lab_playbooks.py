"""End to end on lab hosts: prepare a host through ansible-runner, run a QEMU domain there, release it.

This is the proof behind docs/lab-notes.md: the plays, the lab, host keys and set_stats.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import ansible_runner
import libvirt
import pytest

from tests.lab import lab

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PLAYS = ROOT / "plays"
DOMAIN = "nube-e2e-vm"


def run_play(
    play: str,
    extravars: dict,
    host: dict | None = None,
    ssh: dict | None = None,
    password_auth: bool = False,
) -> dict:
    """Run a play through ansible-runner and return its playbook_on_stats event data."""
    # ansible-runner writes the passwords to env/passwords: keep its folder private and short-lived.
    private_dir = tempfile.mkdtemp(prefix="nube-runner-")
    try:
        kwargs = {}
        if host:
            hostvars = {
                "ansible_host": host["address"],
                "ansible_user": host["user"],
                "ansible_ssh_common_args": (
                    f"-o UserKnownHostsFile={ssh['known_hosts']} -o StrictHostKeyChecking=yes"
                ),
            }
            if not password_auth:
                hostvars["ansible_ssh_private_key_file"] = ssh["keyfile"]
            kwargs = {
                "inventory": {"all": {"hosts": {host["name"]: hostvars}}},
                "cmdline": ("--ask-pass " if password_auth else "") + "--ask-become-pass",
                "passwords": {
                    r"^SSH password:\s*?$": host["password"],
                    r"^BECOME password.*:\s*?$": host["password"],
                },
            }
        result = ansible_runner.run(
            private_data_dir=private_dir,
            playbook=str(PLAYS / play),
            extravars=extravars,
            envvars={
                "ANSIBLE_HOST_KEY_CHECKING": "True",
                # Connection sharing per run: a multiplexed connection left from an earlier
                # run would outlive a removed key or a changed host key.
                "ANSIBLE_SSH_CONTROL_PATH_DIR": os.path.join(private_dir, "cp"),
                "ANSIBLE_SSH_ARGS": "-C -o ControlMaster=auto -o ControlPersist=5s",
            },
            quiet=True,
            **kwargs,
        )
        assert result.rc == 0, f"{play} failed:\n{result.stdout.read()[-4000:]}"
        stats = [e for e in result.events if e["event"] == "playbook_on_stats"]
        return stats[-1]["event_data"]
    finally:
        shutil.rmtree(private_dir, ignore_errors=True)


def libvirt_uri(host: dict, ssh: dict) -> str:
    """Return the libvirt URI that reaches `host` with the controller's key and known_hosts."""
    return (
        f"qemu+libssh://{host['user']}@{host['address']}/system?keyfile={ssh['keyfile']}"
        f"&known_hosts={ssh['known_hosts']}&known_hosts_verify=normal&sshauth=privkey"
    )


def domain_xml(domain_type: str, disk: str) -> str:
    """Return a minimal domain with one qcow2 disk and no network."""
    return f"""<domain type='{domain_type}'>
  <name>{DOMAIN}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>"""


def make_overlay(repository: Path) -> None:
    """Create a blank base image and the domain's qcow2 overlay on it, as the controller does."""
    base = repository / "images" / "blank.qcow2"
    overlay = repository / "vms" / f"{DOMAIN}.qcow2"
    qemu_img = ["qemu-img", "create", "-q", "-f", "qcow2"]
    subprocess.run([*qemu_img, str(base), "64M"], check=True)
    subprocess.run(
        [*qemu_img, "-F", "qcow2", "-b", "../images/blank.qcow2", str(overlay)], check=True
    )


def mounts_seen_by(pid: int) -> list[tuple[str, str]]:
    """Return (root, mount point) of every mount process `pid` sees."""
    lines = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
    return [(line.split()[3], line.split()[4]) for line in lines]


def run_domain_on_host1(host: dict, ssh: dict, repository: Path, kvm: bool) -> None:
    """Define and start a domain on host 1 over SSH; check where its QEMU runs; remove it."""
    make_overlay(repository)
    conn = libvirt.open(libvirt_uri(host, ssh))
    try:
        domain = conn.defineXML(
            domain_xml("kvm" if kvm else "qemu", f"/mnt/iaas/vms/{DOMAIN}.qcow2")
        )
        domain.create()
        assert domain.isActive()
        qemu_pid = int((lab.host_dir(1) / "run" / "libvirt" / "qemu" / f"{DOMAIN}.pid").read_text())
        mounts = mounts_seen_by(qemu_pid)
        # libvirt gives QEMU a private copy of host 1's namespace: it sees host 1's /run and
        # the repository at /mnt/iaas, which no other namespace has.
        assert (str(lab.host_dir(1) / "run"), "/run") in mounts
        assert (str(repository), "/mnt/iaas") in mounts
        host2_domains = lab.in_host(2, "virsh", "-c", "qemu:///system", "list", "--all", "--name")
        assert DOMAIN not in host2_domains.stdout.split()
        domain.destroy()
        domain.undefine()
    finally:
        conn.close()
    (repository / "vms" / f"{DOMAIN}.qcow2").unlink()


def test_prepare_run_a_vm_and_release_a_host(lab_hosts, controller_ssh, monkeypatch):
    """host_add, a running domain on that host, host_add again (no change), host_remove."""
    # ansible-runner finds ansible-playbook on PATH.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    host = lab_hosts[0]
    repository = Path(tempfile.mkdtemp(prefix="nube-repo-")) / "export" / "iaas"
    # QEMU (libvirt-qemu) must traverse every folder above the disks.
    repository.parent.parent.chmod(0o755)
    try:
        run_play("iaas_init.yaml", {"repository": str(repository), "export": "none"})
        add_vars = {
            "share": "bind",
            "repository": str(repository),
            "controller_pubkey": controller_ssh["pubkey"],
        }
        first = run_play("host_add.yaml", add_vars, host, controller_ssh, password_auth=True)
        facts = first["artifact_data"]["nube_host"]
        assert isinstance(facts["cpus"], int) and facts["cpus"] > 0
        assert isinstance(facts["mem"], int) and facts["mem"] > 0
        assert isinstance(facts["kvm"], bool)
        assert first["changed"].get(host["name"], 0) > 0

        run_domain_on_host1(host, controller_ssh, repository, facts["kvm"])

        again = run_play("host_add.yaml", add_vars, host, controller_ssh)
        assert again["changed"] == {}
        assert again["artifact_data"]["nube_host"] == facts

        removed = run_play("host_remove.yaml", {}, host, controller_ssh)
        assert removed["changed"].get(host["name"], 0) > 0
        assert "/mnt/iaas" not in (lab.host_dir(1) / "fstab").read_text()
        keeper = lab.keeper_pid(1)
        assert "/mnt/iaas" not in [point for _, point in mounts_seen_by(keeper)]
        authorized = (lab.host_dir(1) / "home" / ".ssh" / "authorized_keys").read_text()
        assert controller_ssh["pubkey"].split()[1] not in authorized
        # The key is gone, so this time only the password gets in; nothing is left to change.
        removed_again = run_play("host_remove.yaml", {}, host, controller_ssh, password_auth=True)
        assert removed_again["changed"] == {}
    finally:
        run_play(
            "iaas_destroy.yaml", {"repository": str(repository), "export": "none", "purge": True}
        )
        shutil.rmtree(repository.parent.parent, ignore_errors=True)
