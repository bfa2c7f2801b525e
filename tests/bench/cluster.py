"""VM creation from a data-filled base image, overlay vs copy (1 GiB and 4 GiB; the image's pages
evicted from the page cache first (cold) or not (warm)), and a re-run of host_add.yaml on a
prepared lab host."""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app import core, create_app
from tests.lab import lab

MIB = 1024 * 1024


def filled_image(path, gib):
    """A raw image of `gib` GiB full of random data (not sparse: every block is written)."""
    subprocess.run(
        ["dd", "if=/dev/urandom", f"of={path}", "bs=16M", f"count={gib * 64}", "status=none"],
        check=True,
    )
    return path


def evict(path):
    """Drop a file's pages from the page cache, as for an image nobody read lately."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def creation_seconds(app, image, mode, runs, cold):
    """Median seconds of core.addVm (disk + domain) for one disk mode."""
    storage = app.extensions["nube"].storage
    storage.disk_mode = mode
    times = []
    for n in range(runs):
        vm_id = f"{mode}-{Path(image).stem}-{n}"
        if cold:
            evict(storage.images_dir / image)
        started = time.perf_counter()
        core.addVm({"id": vm_id, "image": image, "mem": 16})
        times.append(time.perf_counter() - started)
        core.removeVm(vm_id)
    return statistics.median(times)


def disk_modes():
    """Overlay vs copy for 1 GiB and 4 GiB images, side by side in one run."""
    top = Path(tempfile.mkdtemp(prefix="nube-bench-disk-", dir="/var/tmp"))
    try:
        app = create_app(
            {
                "INSTANCE_PATH": str(top / "instance"),
                "DATABASE": str(top / "nube.sqlite"),
                "REPOSITORY": str(top / "iaas"),
                "QUEUE": "immediate",
                "PROVISIONER": "recording",
                "LIBVIRT_URI": "test:///default",
                "CONTROLLER_PREPARE": False,
                "SECRET_KEY": "x",
            }
        )
        figures = {}
        with app.app_context():
            core.init()
            core.addHost(
                {"address": "127.0.0.1", "user": "root", "prepare": False, "network": "none"}
            )
            images = app.extensions["nube"].storage.images_dir
            for gib in (1, 4):
                name = f"data-{gib}g.raw"
                filled_image(images / name, gib)
                for cache in ("cold", "warm"):
                    cold = cache == "cold"
                    overlay = creation_seconds(app, name, "overlay", runs=5, cold=cold)
                    copy = creation_seconds(app, name, "copy", runs=3, cold=cold)
                    figures[f"{gib}GiB_{cache}"] = {
                        "overlay_s": round(overlay, 4),
                        "copy_s": round(copy, 3),
                        "copy_over_overlay": round(copy / overlay, 1),
                    }
                (images / name).unlink()
        return figures
    finally:
        subprocess.run(["rm", "-rf", str(top)], check=False)


def host_add_rerun(runs=3):
    """Median seconds of host_add.yaml on a lab host that is already prepared (nothing to do)."""
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    top = Path(tempfile.mkdtemp(prefix="nube-bench-lab-"))
    top.chmod(0o755)
    [host] = lab.up(1)
    try:
        app = create_app(
            {
                "INSTANCE_PATH": str(top / "instance"),
                "DATABASE": str(top / "nube.sqlite"),
                "REPOSITORY": str(top / "iaas"),
                "QUEUE": "immediate",
                "PROVISIONER": "ansible",
                "EXPORT": "none",
                "SECRET_KEY": "x",
            }
        )
        with app.app_context():
            core.init()
            added = core.addHost(
                {
                    "address": host["address"],
                    "user": host["user"],
                    "password": host["password"],
                    "share": "bind",
                    "network": "none",
                }
            )
            adapters = app.extensions["nube"]
            extravars = {
                "share": "bind",
                "repository": str(top / "iaas"),
                "host_mount": "/mnt/iaas",
                "controller_pubkey": adapters.public_key(),
            }
            times, changed = [], []
            for _ in range(runs):
                lines = []
                started = time.perf_counter()
                adapters.provisioner.run(
                    "host_add.yaml",
                    host=added,
                    password=host["password"],
                    extravars=extravars,
                    log=lambda line, level="info", sink=lines: sink.append(line),
                )
                times.append(time.perf_counter() - started)
                changed.append(sum(1 for line in lines if line.startswith("changed:")))
            core.removeHost(added["id"])
        return {
            "host_add_rerun_s": round(statistics.median(times), 2),
            "runs": runs,
            "tasks_changed_per_rerun": changed,
        }
    finally:
        lab.down()
        subprocess.run(["rm", "-rf", str(top)], check=False)
