"""qemu-img's changes to a VM disk or a volume that no QEMU has open: grow it, and take,
apply and delete its internal snapshots. A mixin of Storage (which gives qemu_img and
read_header).

Hosts write these files, so the header qemu-img reads may name any file, as a backing file or
an external data file (which a resize truncates), however recently it was checked. So
qemu-img never opens the backing chain (backing: null: a resize or an internal snapshot needs
only the file itself), gets the file as a descriptor the controller opened (no path to swap),
and runs as the hosts' own user (nobody) when the controller is root: whatever the header
says, it can reach only what a host can already write. A file that is no longer nobody's is
given back to nobody first (through the same descriptor): VM files are nobody's (vm_files'
publish_mode), but a host's libvirt that relabels the files of its running domains may leave
one to root or to its QEMU user when the domain stops (seen on lab hosts, whose repository is a
bind mount that squashes nothing, after a live migration)."""

import json
import os

from app.adapters.vm_files import HOST_GID, HOST_UID

SNAPSHOT_TAG_PREFIX = "nube-"  # never a name of digits alone, which qemu-img takes for an id


def snapshot_tag(name) -> str:
    """The tag a Nube snapshot has inside a qcow2 file."""
    return f"{SNAPSHOT_TAG_PREFIX}{name}"


def _as_hosts_user(fd):
    """The setpriv prefix that runs a command as the hosts' user (none when the controller is
    not root), the file behind fd given back to that user first."""
    if os.geteuid() != 0:
        return ()
    st = os.fstat(fd)
    if (st.st_uid, st.st_gid) != (HOST_UID, HOST_GID):
        os.fchown(fd, HOST_UID, HOST_GID)
    return ("setpriv", f"--reuid={HOST_UID}", f"--regid={HOST_GID}", "--clear-groups")


class Qcow2Calls:
    """File-level qemu-img calls of Storage."""

    def _on_file(self, path, args, log, tail=()):
        """Run `qemu-img ARGS <the file as json:, chain cut> TAIL` as described above."""
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            spec = {
                "driver": "qcow2",
                "backing": None,
                "file": {"driver": "file", "filename": f"/dev/fd/{fd}"},
            }
            prefix = _as_hosts_user(fd)
            return self.qemu_img.run(
                [*args, f"json:{json.dumps(spec)}", *tail], log, prefix=prefix, pass_fds=(fd,)
            )
        finally:
            os.close(fd)

    def grow_file(self, path, size_gib, log=lambda msg: None):
        """Grow a qcow2 file to size_gib GiB (qemu-img refuses to shrink without --shrink,
        never passed)."""
        self._on_file(path, ["resize", "-q"], log, tail=(f"{size_gib}G",))

    def file_snapshots(self, path) -> list[str]:
        """The tags of a qcow2 file's internal snapshots, from its header (no process)."""
        header = self.read_header(path, path.name)
        return [snapshot["name"] for snapshot in header.get("snapshots", ())]

    def take_snapshot(self, path, name, log=lambda msg: None):
        """Take the internal snapshot `nube-<name>` of a qcow2 file."""
        self._on_file(path, ["snapshot", "-q", "-c", snapshot_tag(name)], log)

    def apply_snapshot(self, path, name, log=lambda msg: None):
        """Bring a qcow2 file back to its internal snapshot `nube-<name>` (what was written
        since is lost)."""
        self._on_file(path, ["snapshot", "-q", "-a", snapshot_tag(name)], log)

    def delete_snapshot(self, path, name, log=lambda msg: None):
        """Delete the internal snapshot `nube-<name>` of a qcow2 file (the clusters only it
        kept are freed)."""
        self._on_file(path, ["snapshot", "-q", "-d", snapshot_tag(name)], log)

    @staticmethod
    def allocated_bytes(path) -> int:
        """The bytes a file takes on its filesystem."""
        return os.stat(path).st_blocks * 512
