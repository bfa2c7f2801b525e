"""Live migration of an idle 256 MiB VM between two lab hosts through Nube, beside the floor
measured in the same run with libvirt alone (the same flags, straight virDomainMigrate3), and
the drain of a host with 10 running VMs."""

import shutil
import statistics
import time

import libvirt

from app import core
from app.addresses import uri_host
from app.db import get_db
from tests.conftest import make_image
from tests.integration.conftest import lab_controller
from tests.lab import lab

RUNS = 3
DRAIN_VMS = 10
IMAGE = "blank.qcow2"


def _hosts(app):
    """The two registered lab hosts, as rows."""
    with app.app_context():
        return [dict(r) for r in get_db().execute("SELECT * FROM hosts ORDER BY id")]


def _libvirt_alone(app, src, dst, name):
    """Seconds of one live migration made with libvirt-python directly (Nube's flags)."""
    hypervisor = app.extensions["nube"].hypervisor
    flags = (
        libvirt.VIR_MIGRATE_LIVE
        | libvirt.VIR_MIGRATE_PERSIST_DEST
        | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
        | libvirt.VIR_MIGRATE_UNSAFE
    )
    data_address = dst["data_address"] or dst["address"]
    params = {
        libvirt.VIR_MIGRATE_PARAM_URI: f"tcp://{uri_host(data_address)}",
        libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS: data_address,
    }
    sconn, dconn = libvirt.open(hypervisor.uri_for(src)), libvirt.open(hypervisor.uri_for(dst))
    try:
        dom = sconn.lookupByName(name)
        started = time.perf_counter()
        dom.migrate3(dconn, params, flags)
        return time.perf_counter() - started
    finally:
        sconn.close()
        dconn.close()


def _nube(app, name, host_name):
    """Seconds of one core.migrateVm."""
    with app.app_context():
        started = time.perf_counter()
        core.migrateVm(name, host_name)
        return time.perf_counter() - started


def main():
    """Migration and drain figures."""
    hosts = lab.up(2)
    app, top = lab_controller("nube-bench-migrate-")
    try:
        with app.app_context():
            core.init()
            make_image(top / "export" / "iaas" / "images" / IMAGE, size="256M", fmt="qcow2")
            for number, host in enumerate(hosts, start=1):
                core.addHost(
                    {
                        "address": host["address"],
                        "user": host["user"],
                        "password": host["password"],
                        "name": f"lab{number}",
                        "share": "bind",
                        "network": "none",
                        "data_address": host["data_address"],  # the lab's underlay
                    }
                )
            core.addVm({"id": "m1", "image": IMAGE, "mem": 256, "host": "lab1", "start": True})
        lab1, lab2 = _hosts(app)
        nube, alone = [], []
        for _ in range(RUNS):  # there and back, each way by both
            nube.append(_nube(app, "m1", "lab2"))
            nube.append(_nube(app, "m1", "lab1"))
            alone.append(_libvirt_alone(app, lab1, lab2, "m1"))
            alone.append(_libvirt_alone(app, lab2, lab1, "m1"))
        with app.app_context():
            for n in range(DRAIN_VMS):
                core.addVm({"id": f"d{n}", "image": IMAGE, "mem": 64, "host": "lab1"})
                core.startVm(f"d{n}")
            core.removeVm("m1")
            started = time.perf_counter()
            result = core.drainHost(lab1["id"])
            drain_s = time.perf_counter() - started
            core.destroy()
        return {
            "vm_mem_mib": 256,
            "runs": len(nube),
            "live_migration_s": round(statistics.median(nube), 2),
            "libvirt_alone_s": round(statistics.median(alone), 2),
            "over_floor": round(statistics.median(nube) / statistics.median(alone), 2),
            "drain_vms": DRAIN_VMS,
            "drain_s": round(drain_s, 1),
            "drain_moved": len(result["moved"]),
            "drain_stayed": len(result["stayed"]),
        }
    finally:
        app.extensions["nube"].hypervisor.close()
        lab.down()
        shutil.rmtree(top, ignore_errors=True)
