"""Builders of benchmark data: hosts and VMs written through the repositories."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = """
import sys
from app import create_app
from app.db import get_db, transaction
from app.repositories import hosts as hosts_repo, vms as vms_repo
from app.services import users

hosts, vms = int(sys.argv[1]), int(sys.argv[2])
app = create_app()
with app.app_context():
    users.create("bench", "bench-password", "operator", "bench")
    conn = get_db()
    with transaction(conn):
        ids = []
        for n in range(hosts):
            host_id = hosts_repo.insert(conn, name=f"host-{n:03d}", address=f"10.1.{n // 250}.{n % 250 + 1}",
                                        user="nube", password_enc=None, state="ready",
                                        share="nfs", network="default")
            hosts_repo.update(conn, host_id, cpus=32, mem=262144, free_mem=200000, kvm=1)
            ids.append(host_id)
        states = ("running", "stopped")
        for n in range(vms):
            # exactly 20 VMs in error whatever the size, so the filtered figures compare
            state = "error" if n < 20 else states[n % 2]
            vms_repo.insert(conn, vm_id=f"vm-{n:05d}", host_id=ids[n % hosts], image="base.qcow2",
                            mem=(512, 1024, 2048)[n % 3], vcpus=1 + n % 4, state=state,
                            created_by="bench", project_id=1)  # the project default
"""


def populate(env, hosts, vms):
    """Fill the bench database (in a child process with the bench's environment)."""
    subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(hosts), str(vms)], cwd=ROOT, env=env, check=True
    )
