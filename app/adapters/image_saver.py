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
from app.adapters.vm_files import HOST_GID, HOST_UID
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

    def flatten(self, disk, backing, out, snapshot=None, *, log, check):
        """Write disk (on its backing chain), or the state its internal snapshot kept, as one
        compressed qcow2 with no backing file at out.

        A host may rewrite the disk's header between Nube's check and qemu-img's read, to name
        an external data file (which no json: spec can pin away): so qemu-img runs as the
        hosts' own user (nobody) when the controller is root, reading the disk and writing
        the output through descriptors the controller opened, and can read only what a host
        could. The output is made empty first (qemu-img create, which reads nothing) and
        given back to root once written."""
        taken = ["-l", f"snapshot.name={snapshot}"] if snapshot else []
        # hosts write vms/: the disk is opened here, never through a link swapped in for it
        try:
            fd = os.open(disk, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise OperationFailed(
                f"cannot open the disk {disk}: {exc.strerror} (a link is never followed)"
            ) from None
        try:
            size = qcow2_header.read(f"/dev/fd/{fd}")["virtual-size"]
            self.runner.run(
                ["qemu-img", "create", "-q", "-f", "qcow2", "--", str(out), str(size)],
                log=log,
                check=check,
            )
            base_fds = [os.open(path, os.O_RDONLY | os.O_CLOEXEC) for path, _ in backing]
            out_fd = os.open(out, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                chain = [
                    (f"/dev/fd/{n}", fmt) for n, (_, fmt) in zip(base_fds, backing, strict=True)
                ]
                self._convert(fd, out_fd, chain, base_fds, taken, log, check)
            finally:
                for opened in (out_fd, *base_fds):
                    os.close(opened)
        except qcow2_header.HeaderError as exc:
            raise OperationFailed(f"the disk {disk} is not a readable qcow2: {exc}") from None
        finally:
            os.close(fd)

    def _convert(self, fd, out_fd, chain, base_fds, taken, log, check):
        """qemu-img convert from the disk's descriptor (on chain, its base image's) into the
        output's, as nobody when the controller is root (the output is nobody's meanwhile,
        root's again after)."""
        prefix = []
        if os.geteuid() == 0:
            os.fchown(out_fd, HOST_UID, HOST_GID)
            prefix = ["setpriv", f"--reuid={HOST_UID}", f"--regid={HOST_GID}", "--clear-groups"]
        target = {"driver": "qcow2", "file": {"driver": "file", "filename": f"/dev/fd/{out_fd}"}}
        try:
            self.runner.run(
                [*prefix, "qemu-img", "convert", "-n", "-O", "qcow2", "-c", *taken]
                + ["--", chain_spec(f"/dev/fd/{fd}", chain), "json:" + json.dumps(target)],
                log=log,
                check=check,
                pass_fds=(fd, out_fd, *base_fds),
            )
        finally:
            if prefix:
                os.fchown(out_fd, 0, 0)

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
