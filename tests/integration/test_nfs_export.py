"""The controller's NFS export for real: iaas_init.yaml with the userspace server (nfs-ganesha,
as these machines have no kernel NFS), read over NFSv4 by a client on loopback."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from app.adapters.ansible import AnsibleProvisioner
from tests.processes import ROOT
from tests.wait import wait_for

pytestmark = pytest.mark.integration

PIDFILE = Path("/run/ganesha.pid")


@pytest.fixture
def repository():
    """A repository with one image in it, readable by the NFS server."""
    if os.geteuid() != 0:
        pytest.skip("the controller playbooks need root")
    top = Path(tempfile.mkdtemp(prefix="nube-nfs-"))
    top.chmod(0o755)
    repo = top / "export" / "iaas"
    (repo / "images").mkdir(parents=True)
    (repo / "images" / "shared.qcow2").write_bytes(b"nube" * 1024)
    yield repo
    shutil.rmtree(top, ignore_errors=True)


def nfs_ls(path):
    """List a folder of the export over NFSv4 from 127.0.0.1 (libnfs's client, no kernel)."""
    return subprocess.run(
        ["nfs-ls", f"nfs://127.0.0.1{path}?version=4"], capture_output=True, text=True, timeout=60
    )


def listed(repository):
    """What listing images/ over NFS prints (its error when refused)."""
    result = nfs_ls(f"{repository}/images")
    return result.stdout + result.stderr


def test_ganesha_exports_the_repository_to_the_named_hosts_only(repository, tmp_path):
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    runner = AnsibleProvisioner(
        ROOT / "plays", tmp_path / "runner", tmp_path / "key", tmp_path / "known_hosts"
    )
    variables = {"repository": str(repository), "export": "nfs", "nfs_server": "ganesha"}
    try:
        runner.run("iaas_init.yaml", extravars={**variables, "nfs_clients": ["127.0.0.1"]})
        # ganesha takes a moment to come up after a (re)start
        wait_for(lambda: "shared.qcow2" in listed(repository), timeout=20, interval=0.2,
                 message="the export to list images/shared.qcow2")  # fmt: skip
        config = Path("/etc/ganesha/ganesha.conf").read_text()
        assert "127.0.0.1" in config and "*" not in config.split("NUBE IAAS REPOSITORY")[1]

        # a controller whose hosts are elsewhere no longer lets this address in
        runner.run("iaas_init.yaml", extravars={**variables, "nfs_clients": ["127.0.0.9"]})
        wait_for(lambda: "shared.qcow2" not in listed(repository), timeout=20, interval=0.2,
                 message="the export to refuse 127.0.0.1")  # fmt: skip
    finally:
        runner.run("iaas_destroy.yaml", extravars={**variables, "nfs_clients": []})
    assert not PIDFILE.exists() or not _alive(PIDFILE)
    assert "NUBE IAAS REPOSITORY" not in Path("/etc/ganesha/ganesha.conf").read_text()


def _alive(pidfile):
    """Whether the process named in a pid file runs."""
    try:
        os.kill(int(pidfile.read_text().strip()), 0)
    except (ValueError, ProcessLookupError):
        return False
    return True
