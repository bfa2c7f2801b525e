"""Turns a stopped VM's disk into a standalone image (image.save's recipe): the backing chain
flattened into one compressed qcow2, then the guest's identity removed.

Flattening: `qemu-img convert -O qcow2 -c` of the disk with its chain named by Nube (a json:
spec pinning the backing file to the VM's image, never the one the disk's header names: hosts
write that header), optionally of one internal snapshot (`-l snapshot.name=NAME`: the state
the snapshot kept, not the disk's current one).

The guest's identity: `virt-sysprep` (libguestfs-tools), with its default operations (SSH host
keys, users' .ssh folders, logs, DHCP leases, machine-id...) plus cloud-init's instance state
(`--delete /var/lib/cloud/*`, as `cloud-init clean` does: the next boot is a new instance that
makes new host keys and takes the new VM's hostname) and an empty /etc/machine-id
(`--truncate`: virt-sysprep's customize step writes a random one, which every VM made from the
image would then share; empty, systemd makes a new one at first boot).

Why virt-sysprep and not Nube's own steps (checked 2026-12-04 on the development machine): it
inspects the guest in a small appliance VM, so a hostile filesystem is parsed by the
appliance's kernel, not the controller's tools, and it knows every layout (partitions, LVM,
GPT). libguestfs needs a kernel in /boot for its appliance (linux-image-cloud-amd64 here, the
machine had none) and ran in 26-31 s per image under TCG (LIBGUESTFS_BACKEND=direct,
LIBGUESTFS_BACKEND_SETTINGS=force_tcg: this machine's /dev/kvm runs no Linux kernel). The
controller asks for TCG when VIRT_TYPE is `qemu` (the setting that says KVM cannot run guests
here); otherwise libguestfs uses KVM where it can. A disk with no operating system
virt-sysprep recognises is refused (it says "no operating systems were found").
"""

import json
import os

from app.adapters import qcow2_header
from app.adapters.commands import CommandFailed, CommandRunner
from app.errors import OperationFailed

TOOLS = {"qemu-img": "qemu-utils", "virt-sysprep": "libguestfs-tools"}
# cloud-init's state: with it gone, the next boot is a new instance (new keys, hostname, user)
CLOUD_STATE = "/var/lib/cloud/*"
MACHINE_ID = "/etc/machine-id"


def chain_spec(disk, backing):
    """A json: filename opening disk (qcow2) on exactly the backing chain Nube names: backing
    is [(path, format)] (one entry for an overlay on its image, none for a full copy)."""
    spec = {"driver": "qcow2", "file": {"driver": "file", "filename": str(disk)}, "backing": None}
    if backing:
        [(path, fmt)] = backing
        spec["backing"] = {"driver": fmt, "file": {"driver": "file", "filename": str(path)}}
    return "json:" + json.dumps(spec, sort_keys=True)


COPY_CHUNK = 8 << 20


def _copy_disk(disk, copy, check):
    """Copy a VM disk's bytes into copy (0600, new), through a descriptor that never follows
    a link swapped in for the disk; check() between chunks (cancel, time limit)."""
    try:
        source = os.open(disk, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise OperationFailed(
            f"cannot open the disk {disk}: {exc.strerror} (a link is never followed)"
        ) from None
    try:
        target = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            while os.copy_file_range(source, target, COPY_CHUNK):
                check()
        finally:
            os.close(target)
    finally:
        os.close(source)


def _check_copy(copy, max_size):
    """Refuse a copied disk whose header names an external data file or a size beyond the
    VM's disk (a header a host rewrote)."""
    try:
        header = qcow2_header.read(copy)
    except qcow2_header.HeaderError as exc:
        raise OperationFailed(f"the VM's disk is not a qcow2 Nube can read: {exc}") from None
    if (header.get("format-specific") or {}).get("data"):
        raise OperationFailed("the VM's disk names an external data file: its header was altered")
    if header["virtual-size"] > max_size:
        raise OperationFailed(
            f"the VM's disk says it is {header['virtual-size']} bytes, more than its"
            f" {max_size} bytes: its header was altered"
        )


class ImageSaver:
    """The recipe; every command goes through the runner (unit tests may record it)."""

    def __init__(self, runner=None, tcg=False):
        self.runner = runner or CommandRunner()
        self.tcg = tcg

    def check_ready(self):
        """Refuse early, with what to install, when a tool is missing."""
        missing = self.runner.missing(list(TOOLS))
        if missing:
            packages = " ".join(sorted({TOOLS[tool] for tool in missing}))
            raise OperationFailed(
                f"missing {', '.join(missing)}: install the Debian packages {packages}"
            )

    def flatten(self, disk, backing, out, snapshot=None, *, log, check, max_size):
        """Write disk (on its backing chain), or the state its internal snapshot kept, as one
        compressed qcow2 with no backing file at out.

        A host may rewrite the disk's header between Nube's check and qemu-img's read, to name
        an external data file (which no json: spec can pin away) or a huge size: so the disk's
        bytes are first copied, through a descriptor opened here, into the controller's
        private staging folder, and the copy, which no host can reach, is checked (no data
        file, a virtual size of at most max_size bytes, the VM's own) and converted."""
        taken = ["-l", f"snapshot.name={snapshot}"] if snapshot else []
        copy = out.with_name("disk-copy.qcow2")
        log(f"copying {disk.name} into the staging folder, out of the hosts' reach")
        _copy_disk(disk, copy, check)
        try:
            _check_copy(copy, max_size)
            self.runner.run(
                ["qemu-img", "convert", "-O", "qcow2", "-c", *taken]
                + ["--", chain_spec(copy, backing), str(out)],
                log=log,
                check=check,
            )
        finally:
            copy.unlink(missing_ok=True)

    def reset_identity(self, image, *, log, check):
        """Remove the guest's identity from a qcow2 image in place (virt-sysprep)."""
        env = {"LIBGUESTFS_BACKEND": "direct"}
        if self.tcg:
            env["LIBGUESTFS_BACKEND_SETTINGS"] = "force_tcg"
        errors = []

        def logged(line):
            """Log a line, keeping virt-sysprep's own errors (its last line is a bug-report
            hint, not the cause)."""
            if line.startswith("virt-sysprep: error:"):
                errors.append(line.removeprefix("virt-sysprep: error:").strip())
            log(line)

        try:
            self.runner.run(
                ["virt-sysprep", "--format", "qcow2", "-a", str(image)]
                + ["--delete", CLOUD_STATE, "--truncate", MACHINE_ID],
                log=logged,
                check=check,
                env=env,
            )
        except CommandFailed as exc:
            if not errors:
                raise
            raise OperationFailed(
                f"virt-sysprep could not remove the guest's identity: {errors[-1]}"
            ) from exc
