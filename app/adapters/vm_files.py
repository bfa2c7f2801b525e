"""A VM's files in the repository: the names it owns in vms/ (disk, cloud-init seed, serial
console log and the copies virtlogd rotates it into), writing the seed and the empty log, and
reading the log back. A mixin of Storage (which gives vms_dir, _staging and _place)."""

import os
import re
import secrets
import stat
from pathlib import Path

from app.errors import InvalidInput, OperationFailed
from app.limits import NAME_PATTERN

VM_ID_RE = f"^{NAME_PATTERN}$"
PARTIAL_SUFFIX = ".part"
SEED_SUFFIX = "-seed.iso"
CONSOLE_LOG_SUFFIX = ".console.log"
CONSOLE_LOG_ROTATIONS = 10  # virtlogd keeps max_backups (3 by default) rotated copies
CONSOLE_READ_MAX = 256 * 1024
# nobody:nogroup, the anonuid/anongid of the export (plays/iaas_init.yaml nfs_options)
HOST_UID = HOST_GID = 65534

_VM_ID = re.compile(VM_ID_RE)


def check_vm_id(vm_id) -> str:
    """Return vm_id if it is a safe VM id, else raise InvalidInput."""
    # fullmatch: with re.match, '$' would also accept a trailing newline
    if not isinstance(vm_id, str) or not _VM_ID.fullmatch(vm_id):
        raise InvalidInput(f"invalid VM id {vm_id!r:.80}: use letters, digits, '_', '.', '-'")
    return vm_id


class VmFiles:
    """The VM files half of Storage."""

    def vm_file_names(self, vm_id) -> list[str]:
        """The names in vms/ that belong to a VM: disk, seed, console log (and the copies
        virtlogd rotates it into)."""
        check_vm_id(vm_id)
        log = f"{vm_id}{CONSOLE_LOG_SUFFIX}"
        rotated = [f"{log}.{n}" for n in range(CONSOLE_LOG_ROTATIONS)]
        return [f"{vm_id}.qcow2", f"{vm_id}{SEED_SUFFIX}", log, *rotated]

    def existing_vm_files(self, vm_id) -> list[str]:
        """Which of a VM's files are in vms/ (a new VM with this id would meet them)."""
        return [n for n in self.vm_file_names(vm_id) if os.path.lexists(self.vms_dir / n)]

    def delete_vm_files(self, vm_id) -> list[str]:
        """Remove a VM's disk, seed and console logs; the names removed."""
        return [n for n in self.vm_file_names(vm_id) if self._unlink_vm_file(n)]

    def write_seed(self, vm_id, data: bytes) -> Path:
        """Write vms/<vm_id>-seed.iso (staged, then linked in; never over an existing file)."""
        return self._write_vm_file(vm_id, SEED_SUFFIX, data)

    def create_console_log(self, vm_id) -> Path:
        """Make vms/<vm_id>.console.log, empty, for the host's virtlogd to append to: made
        here, since hosts cannot create entries in vms/."""
        return self._write_vm_file(vm_id, CONSOLE_LOG_SUFFIX, b"")

    def _write_vm_file(self, vm_id, suffix, data: bytes) -> Path:
        """Write vms/<vm_id><suffix> (staged, then linked in; never over an existing file)."""
        final = self.vms_dir / f"{check_vm_id(vm_id)}{suffix}"
        tmp = self._staging() / f"{vm_id}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with open(fd, "wb") as f:
                f.write(data)
            publish_mode(tmp)
            self._place(tmp, final, f"vms/{final.name} already exists")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return final

    def read_console(self, vm_id, offset=None, limit=CONSOLE_READ_MAX) -> tuple[bytes, int, int]:
        """Up to limit bytes of a VM's console log from offset (None: the last limit bytes);
        returns (data, where it starts, the file's size). A host writes it, so the file is
        opened without following a symlink and read only if it is a regular file."""
        path = self.vms_dir / f"{check_vm_id(vm_id)}{CONSOLE_LOG_SUFFIX}"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return b"", 0, 0
        except OSError as e:  # ELOOP: a symlink planted in its place
            raise OperationFailed(f"the console log of {vm_id} is not a plain file: {e}") from e
        with open(fd, "rb") as f:
            info = os.fstat(fd)
            size = info.st_size
            if not stat.S_ISREG(info.st_mode):
                raise OperationFailed(f"the console log of {vm_id} is not a plain file")
            start = _read_start(offset, size, limit)
            f.seek(start)
            return f.read(min(limit, size - start)), start, size

    def _unlink_vm_file(self, name) -> bool:
        try:
            os.unlink(self.vms_dir / name)  # a symlink itself, never its target
        except FileNotFoundError:
            return False
        return True


def _read_start(offset, size, limit):
    """Where to read a growing log from: the last limit bytes without an offset; from the
    start when it is smaller than the offset (virtlogd rotated it: a new file)."""
    if offset is None:
        return max(0, size - limit)
    return offset if offset <= size else 0


def publish_mode(path):
    """Make a new staged VM file readable by QEMU (another user on hosts) and, as root, owned by
    the user hosts write as (the export squashes them all to HOST_UID:HOST_GID): hosts write
    into VM files but own no entry in vms/, which is root's, so no host can put a link there
    for another host's root (virtlogd) to follow. Through a descriptor: never a symlink."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        os.fchmod(fd, 0o644)
        if os.geteuid() == 0:
            os.fchown(fd, HOST_UID, HOST_GID)
    finally:
        os.close(fd)
