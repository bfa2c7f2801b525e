"""Monitor pass over 20 hosts of 100 domains each, and the same pass when one host hangs."""

import statistics
import tempfile
import threading
import time
from pathlib import Path

from app import create_app
from app.adapters import hypervisor as hypervisor_module
from app.db import get_db, transaction
from app.repositories import hosts as hosts_repo
from app.repositories import vms as vms_repo
from app.services import monitor

HOSTS = 20
DOMAINS = 100
TIMEOUT = 2.0
RUNS = 5


def node_xml(host):
    """A test driver file with DOMAINS running domains."""
    domains = "".join(
        f"<domain type='test'><name>h{host:02d}-vm{n:03d}</name><memory>65536</memory>"
        "<os><type>hvm</type></os></domain>"
        for n in range(DOMAINS)
    )
    return (
        "<node><cpu><mhz>2000</mhz><model>i686</model><nodes>1</nodes><sockets>1</sockets>"
        "<cores>8</cores><threads>1</threads></cpu><memory>67108864</memory>"
        f"{domains}</node>"
    )


def build(folder):
    """An app with HOSTS hosts and their VMs registered, each host its own driver file."""
    (folder / "nodes").mkdir()
    app = create_app(
        {
            "INSTANCE_PATH": str(folder / "instance"),
            "DATABASE": str(folder / "nube.sqlite"),
            "REPOSITORY": str(folder / "iaas"),
            "QUEUE": "immediate",
            "PROVISIONER": "recording",
            "LIBVIRT_URI": f"test://{folder}/nodes/{{address}}.xml",
            "HOST_TIMEOUT": TIMEOUT,
            "SECRET_KEY": "x",
        }
    )
    with app.app_context():
        conn = get_db()
        with transaction(conn):
            for h in range(HOSTS):
                address = f"10.8.0.{h + 1}"
                (folder / "nodes" / f"{address}.xml").write_text(node_xml(h))
                host_id = hosts_repo.insert(
                    conn,
                    name=f"h{h:02d}",
                    address=address,
                    user="n",
                    password_enc=None,
                    state="ready",
                    share="bind",
                    network="none",
                )
                for n in range(DOMAINS):
                    vms_repo.insert(
                        conn,
                        vm_id=f"h{h:02d}-vm{n:03d}",
                        host_id=host_id,
                        image="base.qcow2",
                        mem=64,
                        vcpus=1,
                        state="stopped",
                        created_by="bench",
                        project_id=1,  # the project default
                    )
    return app


def timed_pass(app):
    """Seconds one monitor pass takes, and its outcome."""
    started = time.perf_counter()
    outcome = monitor.poll(app)
    return time.perf_counter() - started, outcome


def main():
    """Median healthy pass, then a pass with host h00 hanging."""
    with tempfile.TemporaryDirectory(prefix="nube-bench-monitor-") as tmp:
        app = build(Path(tmp))
        timed_pass(app)  # warm-up: opens every connection
        healthy = [timed_pass(app)[0] for _ in range(RUNS)]
        with app.app_context():
            running = (
                get_db().execute("SELECT COUNT(*) FROM vms WHERE state = 'running'").fetchone()[0]
            )
        hypervisor = app.extensions["nube"].hypervisor
        hypervisor.close()
        release = threading.Event()
        real_open = hypervisor_module.libvirt.open

        def hanging_open(uri):
            if uri.endswith("/10.8.0.1.xml"):
                release.wait(60)
            return real_open(uri)

        hypervisor_module.libvirt.open = hanging_open
        try:
            hung_seconds, outcome = timed_pass(app)
        finally:
            release.set()
            hypervisor_module.libvirt.open = real_open
            hypervisor.close()
            time.sleep(0.5)  # let the released open finish before its driver file goes
        unreachable = sum(1 for value in outcome.values() if value != "ok")
        median = statistics.median(healthy)
        return {
            "hosts": HOSTS,
            "domains_per_host": DOMAINS,
            "vms_seen_running": running,
            "pass_ms_median": round(median * 1000, 1),
            "pass_with_one_hung_host_ms": round(hung_seconds * 1000, 1),
            "host_timeout_ms": TIMEOUT * 1000,
            "hosts_marked_unreachable": unreachable,
            "target_ms": round((TIMEOUT + median) * 1000, 1),
            "target_met": hung_seconds <= TIMEOUT + median + 0.25,
        }
