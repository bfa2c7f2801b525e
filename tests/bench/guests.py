"""Real guests: how long image.build takes, what the cloud-init seed adds to VM creation, and
how long a VM takes from start to "Cloud-init ... finished" on a lab host."""

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app import core, create_app
from app.services import vm_work
from tests.images import built_image
from tests.lab import lab

SEED_RUNS = 30
FINISHED = re.compile(r"Cloud-init v\. \S+ finished")
BOOT_TIMEOUT = 900


def _app(top, **settings):
    """A controller on a temp instance and repository."""
    return create_app(
        {
            "INSTANCE_PATH": str(top / "instance"),
            "DATABASE": str(top / "nube.sqlite"),
            "REPOSITORY": str(top / "iaas"),
            "QUEUE": "immediate",
            "SECRET_KEY": "x",
            **settings,
        }
    )


def image_build():
    """Seconds of core.buildImage (mmdebstrap, file system, GRUB, compression) and the size
    of the image it wrote."""
    top = Path(tempfile.mkdtemp(prefix="nube-bench-build-", dir="/var/tmp"))
    try:
        app = _app(top, PROVISIONER="recording", LIBVIRT_URI="test:///default")
        with app.app_context():
            core.init()
            started = time.perf_counter()
            info = core.buildImage({"name": "bench", "release": "bookworm", "size": "4G"})
            seconds = time.perf_counter() - started
        app.extensions["nube"].hypervisor.close()
        return {
            "seconds": round(seconds, 1),
            "image_mib": round(info["actual_size"] / 2**20, 1),
            "virtual_gib": round(info["virtual_size"] / 2**30, 1),
        }
    finally:
        subprocess.run(["rm", "-rf", str(top)], check=False)


def _create_seconds(vm_id, image, with_seed, keys):
    """Seconds of one core.addVm, with the seed written or that step left out."""
    original = vm_work._write_seed
    if not with_seed:
        vm_work._write_seed = lambda ctx, vm, host: None
    try:
        started = time.perf_counter()
        core.addVm(
            {
                "id": vm_id,
                "image": image,
                "mem": 16,
                "ssh_keys": keys,
                "user_data": "#cloud-config\nruncmd: [echo hi]\n",
            }
        )
        return time.perf_counter() - started
    finally:
        vm_work._write_seed = original


def seed_overhead(runs=SEED_RUNS):
    """Median ms of VM creation (disk, seed, domain) with and without the seed, interleaved,
    on libvirt's test driver and a real repository."""
    top = Path(tempfile.mkdtemp(prefix="nube-bench-seed-", dir="/var/tmp"))
    try:
        key = top / "key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        keys = [key.with_suffix(".pub").read_text().strip()]
        app = _app(
            top, PROVISIONER="recording", LIBVIRT_URI="test:///default", CONTROLLER_PREPARE=False
        )
        with app.app_context():
            core.init()
            core.addHost(
                {"address": "127.0.0.1", "user": "root", "prepare": False, "network": "default"}
            )
            subprocess.run(
                ["qemu-img", "create", "-q", "-f", "qcow2", str(top / "iaas/images/b.qcow2"), "1G"],
                check=True,
            )
            times = {True: [], False: []}
            for n in range(runs + 3):
                for with_seed in (True, False):
                    vm_id = f"s{int(with_seed)}-{n}"
                    seconds = _create_seconds(vm_id, "b.qcow2", with_seed, keys)
                    if n >= 3:  # warm-up: imports, first connection
                        times[with_seed].append(seconds)
                    core.removeVm(vm_id)
        app.extensions["nube"].hypervisor.close()
        with_ms = statistics.median(times[True]) * 1000
        without_ms = statistics.median(times[False]) * 1000
        return {
            "runs": runs,
            "create_with_seed_ms": round(with_ms, 2),
            "create_without_seed_ms": round(without_ms, 2),
            "seed_adds_ms": round(with_ms - without_ms, 2),
            "target_ms": 50,
        }
    finally:
        subprocess.run(["rm", "-rf", str(top)], check=False)


def boot_to_cloud_init(image_path):
    """Seconds from startVm to "Cloud-init ... finished" in the boot log, on a lab host under
    TCG (the lab's software KVM cannot run a Linux kernel), and to the login prompt."""
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    top = Path(tempfile.mkdtemp(prefix="nube-bench-boot-"))
    top.chmod(0o755)
    [host] = lab.up(1)
    try:
        app = _app(top, PROVISIONER="ansible", EXPORT="none", VIRT_TYPE="qemu", STOP_TIMEOUT=120)
        with app.app_context():
            core.init()
            shutil.copyfile(image_path, top / "iaas/images/debian.qcow2")
            core.addHost(
                {
                    "address": host["address"],
                    "user": host["user"],
                    "password": host["password"],
                    "share": "bind",
                    "network": "none",
                }
            )
            core.addVm({"id": "boot1", "image": "debian.qcow2", "mem": 768})
            started = time.perf_counter()
            core.startVm("boot1")
            finished = login = None
            while time.perf_counter() - started < BOOT_TIMEOUT:
                log = core.consoleLog("boot1", lines=3000)
                if finished is None and FINISHED.search(log):
                    finished = time.perf_counter() - started
                if "login:" in log.rsplit("\n", 1)[-1]:
                    login = time.perf_counter() - started
                if finished and login:
                    break
                time.sleep(0.5)
            stop_started = time.perf_counter()
            core.stopVm("boot1")
            stop = time.perf_counter() - stop_started
            core.removeVm("boot1")
            core.destroy()
        app.extensions["nube"].hypervisor.close()
        return {
            "virt": "TCG (domain type qemu)",
            "to_cloud_init_finished_s": round(finished, 1) if finished else None,
            "to_login_prompt_s": round(login, 1) if login else None,
            "agent_shutdown_s": round(stop, 1),
        }
    finally:
        lab.down()
        subprocess.run(["rm", "-rf", str(top)], check=False)


def main():
    """Every guest figure."""
    figures = {"image_build": image_build(), "seed": seed_overhead()}
    figures["boot"] = boot_to_cloud_init(built_image())
    return figures
