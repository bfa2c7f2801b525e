"""A deploy storm (issue 15): 100 VMs onto 8 lab hosts, from request to running, through the
queue (a real consumer with 8 workers; create and start in one operation each), beside the
floor measured in the same run: the same overlay + define + start straight over libvirt, one
thread per host. Every VM must end running, no operation may fail, no VM may ever read
`unknown` and no host `unreachable`."""

import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import libvirt

from app import core, create_app
from app.db import get_db
from app.domain_xml import render_domain
from app.services import vms
from tests.lab import lab
from tests.processes import Consumer

HOSTS = 8
VMS = 100
WORKERS = 8
MEM = 64  # MiB: a blank disk boots to SeaBIOS, which needs little
IMAGE = "blank.qcow2"
DEADLINE = 900  # seconds: a storm that takes longer has failed


def _environment(top):
    """NUBE_* settings of the storm's controller: real Ansible, SQLite queue, monitor on."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "NUBE_INSTANCE_PATH": str(top / "instance"),
        "NUBE_DATABASE": str(top / "nube.sqlite"),
        "NUBE_REPOSITORY": str(top / "iaas"),
        "NUBE_QUEUE": "sqlite",
        "NUBE_PROVISIONER": "ansible",
        "NUBE_EXPORT": "none",
        "NUBE_CONTROLLER_PREPARE": "false",
        "NUBE_MONITOR_INTERVAL": "5",
        "NUBE_SECRET_KEY": "bench",
    }


def _prepare_hosts(app, lab_hosts):
    """Register and prepare every lab host (host_add.yaml, a bind mount of the repository)."""
    with app.app_context():
        core.init()
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", str(_images(app) / IMAGE), "64M"],
            check=True,
        )
        return [
            core.addHost(
                {
                    "address": host["address"],
                    "user": host["user"],
                    "password": host["password"],
                    "name": host["name"],
                    "share": "bind",
                    "network": "none",
                    "data_address": host["data_address"],  # the lab's underlay
                }
            )
            for host in lab_hosts
        ]


def _images(app):
    return app.extensions["nube"].storage.images_dir


def floor(app, hosts, count):
    """Seconds to make, define and start `count` VMs over libvirt alone, a thread per host."""
    storage = app.extensions["nube"].storage
    uris = {host["id"]: app.extensions["nube"].hypervisor.uri_for(host) for host in hosts}
    mount = app.config["HOST_MOUNT"].rstrip("/")

    def one_host(index, host):
        conn = libvirt.open(uris[host["id"]])
        try:
            for n in range(index, count, len(hosts)):
                name = f"floor{n}"
                subprocess.run(
                    [
                        "qemu-img",
                        "create",
                        "-q",
                        "-f",
                        "qcow2",
                        "-F",
                        "qcow2",
                        "-b",
                        f"../images/{IMAGE}",
                        str(storage.vms_dir / f"{name}.qcow2"),
                    ],
                    check=True,
                )
                vm = {"id": name, "mem": MEM, "vcpus": 1}
                xml = render_domain(
                    vm, host, f"{mount}/vms/{name}.qcow2", app.config["DOMAIN_TEMPLATES"]
                )
                conn.defineXML(xml).create()
        finally:
            conn.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        list(pool.map(lambda pair: one_host(*pair), enumerate(hosts)))
    seconds = time.perf_counter() - started
    for host in hosts:  # leave the hosts empty for Nube's run
        conn = libvirt.open(uris[host["id"]])
        try:
            for dom in conn.listAllDomains():
                if dom.name().startswith("floor"):
                    if dom.isActive():
                        dom.destroy()
                    dom.undefine()
        finally:
            conn.close()
    for disk in storage.vms_dir.glob("floor*.qcow2"):
        disk.unlink()
    return seconds


class _Watch(threading.Thread):
    """Samples the database while the storm runs: any VM unknown, any host unreachable."""

    def __init__(self, app):
        super().__init__(daemon=True, name="storm-watch")
        self.app, self.stop, self.unknown, self.unreachable = app, threading.Event(), set(), set()

    def run(self):
        with self.app.app_context():
            conn = get_db()
            while not self.stop.wait(0.5):
                self.unknown |= {
                    r[0] for r in conn.execute("SELECT id FROM vms WHERE state = 'unknown'")
                }
                self.unreachable |= {
                    r[0] for r in conn.execute("SELECT name FROM hosts WHERE state = 'unreachable'")
                }


def nube(app, env, count):
    """Seconds from the first request to the last VM running, through the queue."""
    consumer = Consumer(env, workers=WORKERS, periodic=True)
    watch = _Watch(app)
    watch.start()
    try:
        started = time.perf_counter()
        with app.app_context():  # as the system
            for n in range(count):
                vms.add(
                    {"id": f"storm{n}", "image": IMAGE, "mem": MEM, "start": True},
                    "bench",
                    wait=False,
                )
        with app.app_context():
            conn = get_db()
            while time.perf_counter() - started < DEADLINE:
                done = conn.execute(
                    "SELECT COUNT(*) FROM operations WHERE kind = 'vm.create'"
                    " AND status NOT IN ('pending', 'running')"
                ).fetchone()[0]
                if done == count:
                    break
                time.sleep(0.2)
            seconds = time.perf_counter() - started
            running = conn.execute("SELECT COUNT(*) FROM vms WHERE state = 'running'").fetchone()[0]
            failed = [
                dict(r)
                for r in conn.execute(
                    "SELECT id, target_name, status, error FROM operations"
                    " WHERE status != 'succeeded' AND kind = 'vm.create'"
                )
            ]
            per_host = {
                r[0]: r[1]
                for r in conn.execute(
                    "SELECT h.name, COUNT(v.id) FROM hosts h LEFT JOIN vms v ON v.host_id = h.id"
                    " GROUP BY h.id ORDER BY h.name"
                )
            }
    finally:
        watch.stop.set()
        watch.join(5)
        consumer.stop()
    return {
        "seconds": round(seconds, 1),
        "running": running,
        "failed_operations": failed[:5],
        "failed_count": len(failed),
        "ever_unknown": sorted(watch.unknown),
        "ever_unreachable": sorted(watch.unreachable),
        "vms_per_host": per_host,
    }


def storm(hosts=HOSTS, count=VMS):
    """The storm's figures: floor and Nube, side by side."""
    top = Path(tempfile.mkdtemp(prefix="nube-bench-storm-", dir="/var/tmp"))
    top.chmod(0o755)  # QEMU (another user) reads the disks below it
    lab_hosts = lab.up(hosts)
    try:
        env = _environment(top)
        settings = {
            k.removeprefix("NUBE_"): v
            for k, v in env.items()
            if k.startswith("NUBE_") and k != "NUBE_INSTANCE_PATH"
        }
        app = create_app({**settings, "INSTANCE_PATH": env["NUBE_INSTANCE_PATH"]})
        registered = _prepare_hosts(app, lab_hosts)
        floor_seconds = floor(app, registered, count)
        figures = nube(app, env, count)
        figures.update(
            floor_seconds=round(floor_seconds, 1),
            over_floor=round(figures["seconds"] / floor_seconds, 2),
            hosts=hosts,
            vms=count,
            workers=WORKERS,
            virt="kvm" if registered[0]["kvm"] else "qemu (TCG)",
        )
        app.extensions["nube"].hypervisor.close()
        return figures
    finally:
        lab.down()
        subprocess.run(["rm", "-rf", str(top)], check=False)


if __name__ == "__main__":
    import json

    print(
        json.dumps(
            storm(
                int(sys.argv[1]) if len(sys.argv) > 1 else HOSTS,
                int(sys.argv[2]) if len(sys.argv) > 2 else VMS,
            ),
            indent=2,
        )
    )
