"""Start the local daemons an all-in-one install needs when no init system runs them."""

import grp
import os
import shutil
import subprocess
from pathlib import Path


def _running(name):
    """Whether a process with this exact name runs."""
    return subprocess.run(["pgrep", "-x", name], capture_output=True).returncode == 0


def _has_systemd():
    """Whether systemd manages services here (then it starts libvirtd itself)."""
    return Path("/run/systemd/system").is_dir()


def fix_kvm_permissions():
    """Give /dev/kvm the usual root:kvm 0660 that udev would (QEMU runs in group kvm)."""
    kvm = Path("/dev/kvm")
    if not kvm.exists() or os.geteuid() != 0:
        return
    try:
        gid = grp.getgrnam("kvm").gr_gid
    except KeyError:
        return
    os.chown(kvm, 0, gid)
    os.chmod(kvm, 0o660)


def main():
    """Start virtlogd and libvirtd when installed, not running, and no systemd."""
    fix_kvm_permissions()
    if _has_systemd() or os.geteuid() != 0:
        return
    for daemon in ("virtlogd", "libvirtd"):
        if shutil.which(daemon) and not _running(daemon):
            subprocess.run([daemon, "-d"], check=False)
            print(f"started {daemon}")


if __name__ == "__main__":
    main()
