"""Volumes in the repository: volumes/<name>.qcow2 beside images/ and vms/, made empty or from
an image (an overlay or a copy, as VM disks are), their headers checked
before a host is given them, and deleted. A mixin of Storage (which gives root, qemu_img,
disk_mode, _staging, _place, image_path and checked_base_format)."""

import os
import secrets
from pathlib import Path

from app.adapters.disk_chain import backing_of
from app.adapters.vm_files import PARTIAL_SUFFIX, publish_mode
from app.errors import InvalidInput, NotFound
from app.limits import VOLUME_NAME_MESSAGE, VOLUME_NAME_RE


def check_volume_name(name) -> str:
    """Return name if it is a valid volume name, else raise InvalidInput."""
    if not isinstance(name, str) or not VOLUME_NAME_RE.fullmatch(name):
        raise InvalidInput(f"{VOLUME_NAME_MESSAGE}, not {name!r:.40}")
    return name


class VolumeFiles:
    """The volumes half of Storage."""

    @property
    def volumes_dir(self) -> Path:
        return self.root / "volumes"

    def volume_path(self, name) -> Path:
        """Absolute path of a volume's file (the name is checked, so it stays in volumes/)."""
        return self.volumes_dir / f"{check_volume_name(name)}.qcow2"

    def volume_exists(self, name) -> bool:
        """Whether a volume's file is in the repository (a regular file, not a link)."""
        path = self.volume_path(name)
        return path.is_file() and not path.is_symlink()

    def free_bytes(self) -> int:
        """What the repository's filesystem has free for the controller."""
        self.volumes_dir.mkdir(mode=0o755, exist_ok=True)
        stats = os.statvfs(self.volumes_dir)
        return stats.f_bavail * stats.f_frsize

    def create_volume(self, name, size_gib, image=None, log=lambda msg: None) -> Path:
        """Make volumes/<name>.qcow2 of size_gib GiB: empty, or from an image (an overlay on it
        or a copy, as DISK_MODE says, grown to size_gib); never over an existing file."""
        final = self.volume_path(name)
        if os.path.lexists(final):
            raise InvalidInput(f"volumes/{name}.qcow2 already exists in the repository")
        # made in the controller's private staging folder (see create_disk): hosts write
        # volumes/ and could swap a temp file there for a link our chmod would follow
        tmp = self._staging() / f"{name}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}"
        size = f"{size_gib}G"
        if image is None:
            steps = [["create", "-f", "qcow2", "--", str(tmp), size]]
        else:
            fmt = self.checked_base_format(image)  # at use: the file may have changed
            if self.disk_mode == "overlay":
                first = ["create", "-f", "qcow2", "-F", fmt, "-b", f"../images/{image}"]
                steps = [[*first, "--", str(tmp), size]]
            else:
                base = str(self.image_path(image))
                steps = [
                    ["convert", "-f", fmt, "-O", "qcow2", "--", base, str(tmp)],
                    ["resize", "-f", "qcow2", "--", str(tmp), size],
                ]
        try:
            for args in steps:
                self.qemu_img.run(args, log)
            publish_mode(tmp)
            self.volumes_dir.mkdir(mode=0o755, exist_ok=True)
            self._place(tmp, final, f"volumes/{name}.qcow2 already exists in the repository")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return final

    def volume_info(self, name) -> dict:
        """The checked fields of a volume's header (never its chain); NotFound when absent."""
        path = self.volume_path(name)
        if not path.is_file():
            raise NotFound(f"volumes/{name}.qcow2 is missing from the repository")
        return self.read_header(path, f"volumes/{name}.qcow2")

    def volume_backing(self, name, image) -> list[tuple[str, str]]:
        """The backing chain of a volume relative to the repository, read from its header
        afresh and checked against the image its row records (see backing_of)."""
        info = self.volume_info(name)
        return backing_of(
            info, f"volumes/{name}.qcow2", image, lambda: self.checked_base_format(image)
        )

    def volume_size(self, name) -> tuple[int, int]:
        """A volume's (virtual size, bytes used in the repository)."""
        info = self.volume_info(name)
        return info["virtual-size"], info["actual-size"]

    def delete_volume(self, name) -> bool:
        """Delete a volume's file; whether there was one."""
        try:
            os.unlink(self.volume_path(name))  # a link itself, never its target
        except FileNotFoundError:
            return False
        return True
