"""The repository of base images and VM disks, driven through qemu-img."""

import contextlib
import hashlib
import os
import re
import secrets
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from app.adapters import qcow2_header
from app.adapters.disk_chain import backing_of
from app.adapters.qcow2_calls import Qcow2Calls
from app.adapters.qcow2_header import HeaderError
from app.adapters.qemu_img import (
    SECTOR,
    QemuImg,
    QemuImgError,
    check_upload,
    check_upload_content,
    image_format,
)
from app.adapters.vm_files import PARTIAL_SUFFIX, VmFiles, check_vm_id, publish_mode
from app.adapters.volume_files import VolumeFiles
from app.errors import InvalidInput, NotFound, OperationFailed
from app.limits import IMAGE_NAME_MAX

IMAGE_NAME_RE = rf"^[A-Za-z0-9][A-Za-z0-9_.+-]{{0,{IMAGE_NAME_MAX - 1}}}$"
DISK_MODES = ("overlay", "copy")

_IMAGE_NAME = re.compile(IMAGE_NAME_RE)
_UPLOAD_TMP = re.compile(r"^\.upload-[0-9a-f]+\.part$")
_DISK_TMP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\.[0-9a-f]{8}\.part$")
PARTIAL_MAX_AGE = 24 * 3600  # no upload or disk copy takes a day
STAGING = ".staging"  # beside images/ and vms/, the controller's only


def check_image_name(name) -> str:
    """Return name if it is a safe image file name, else raise InvalidInput."""
    ok = isinstance(name, str) and _IMAGE_NAME.fullmatch(name)
    if not ok or name.endswith(PARTIAL_SUFFIX):
        raise InvalidInput(
            f"invalid image name {name!r:.80}: use letters, digits, '_', '.', '+', '-' "
            f"(not ending in {PARTIAL_SUFFIX})"
        )
    return name


@dataclass
class ImageInfo:
    """What the UI shows about one base image."""

    name: str
    format: str
    virtual_size: int
    actual_size: int
    mtime: float


def _mb(n):
    return f"{n / 2**20:g}"


def file_sha256(path, chunk_size=1 << 20) -> str:
    """The SHA-256 (hex) of a file Nube wrote, recorded with its image."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _first_sector(path: Path) -> bytes:
    """The first 512 bytes of a file (fewer when it is shorter)."""
    with open(path, "rb") as f:
        return f.read(SECTOR)


def _inside(base: Path, name: str) -> Path:
    """Resolve base/name and refuse anything (e.g. a symlink) that lands outside base."""
    root = base.resolve()
    path = (base / name).resolve()
    if root not in path.parents:
        raise InvalidInput(f"{name!r} points outside {base}")
    return path


class Storage(VmFiles, VolumeFiles, Qcow2Calls):
    """Images in <root>/images, one qcow2 disk per VM in <root>/vms, volumes in <root>/volumes."""

    def __init__(self, root, disk_mode="overlay", qemu_img="qemu-img", timeout=600):
        if disk_mode not in DISK_MODES:
            raise InvalidInput(f"disk_mode must be one of {DISK_MODES}, not {disk_mode!r}")
        self.root = Path(root).absolute()
        self.disk_mode = disk_mode
        self.qemu_img = QemuImg(qemu_img, timeout)
        # path -> (mtime_ns, size, info dict or error message); one entry per path
        self._info_cache: dict[str, tuple[int, int, dict | str]] = {}
        self._cache_lock = threading.Lock()
        self._place_lock = threading.Lock()

    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    @property
    def vms_dir(self) -> Path:
        return self.root / "vms"

    def ensure_layout(self):
        """Create images/, vms/ and volumes/ (0755) if they are missing; made by the controller,
        images/ is its own, so hosts (squashed to nobody over NFS) cannot write base images."""
        for d in (self.images_dir, self.vms_dir, self.volumes_dir):
            if not d.is_dir():
                d.mkdir(mode=0o755, parents=True, exist_ok=True)
                os.chmod(d, 0o755)  # hosts' QEMU user must traverse it, whatever our umask

    def _staging(self) -> Path:
        """The controller's private folder beside vms/ (0700, never a symlink) for disks in
        the making."""
        staging = self.root / STAGING
        with contextlib.suppress(FileExistsError):
            os.mkdir(staging, 0o700)
        info = os.lstat(staging)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            raise OperationFailed(f"{staging} is not this controller's own folder: not using it")
        os.chmod(staging, 0o700)
        return staging

    def staging_dir(self) -> Path:
        """The controller's private work folder beside images/ and vms/ (same filesystem, so
        finished files are linked in, never copied)."""
        return self._staging()

    def publish_image(self, path, name):
        """Link a finished image file (in staging) into images/<name>, 0644, never over an
        existing file; the caller checked its format."""
        self.image_path(name)
        os.chmod(path, 0o644)
        self._place(Path(path), self.images_dir / name, f"image {name} already exists")

    def image_path(self, name) -> Path:
        """Absolute path of an image, refused unless it stays inside images/."""
        return _inside(self.images_dir, check_image_name(name))

    def disk_path(self, vm_id) -> Path:
        """Absolute path of a VM's disk, refused unless it stays inside vms/."""
        return _inside(self.vms_dir, f"{check_vm_id(vm_id)}.qcow2")

    def _cached_info(self, path: Path, st: os.stat_result) -> dict:
        key = str(path)
        with self._cache_lock:
            hit = self._info_cache.get(key)
        if hit and hit[:2] == (st.st_mtime_ns, st.st_size):
            result = hit[2]
        else:
            try:
                result = self.qemu_img.info(path, fmt=image_format(path))
            except (QemuImgError, InvalidInput) as e:
                result = str(e)  # cached too, so a broken file costs one run, not one per listing
            with self._cache_lock:
                self._info_cache[key] = (st.st_mtime_ns, st.st_size, result)
        if isinstance(result, str):
            raise InvalidInput(f"{path.name} is not a readable disk image: {result}")
        return result

    # --- images ---------------------------------------------------------------

    def image_info(self, name) -> ImageInfo:
        """Format and sizes of one image; NotFound if absent, InvalidInput if unreadable."""
        path = self.image_path(name)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise NotFound(f"image {name} not found") from None
        if not stat.S_ISREG(st.st_mode):
            raise NotFound(f"image {name} not found")
        info = self._cached_info(path, st)
        return ImageInfo(
            name=name,
            format=info["format"],
            virtual_size=int(info["virtual-size"]),
            actual_size=int(info.get("actual-size", st.st_blocks * 512)),
            mtime=st.st_mtime,
        )

    def checked_base_format(self, name) -> str:
        """The format of an image about to back a VM disk, read afresh (never from the cache)
        and refused when it could make QEMU or qemu-img read another file: a backing file or
        an external data file, or a format that may name host files."""
        path = self.image_path(name)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise NotFound(f"image {name} not found") from None
        if not stat.S_ISREG(st.st_mode):
            raise NotFound(f"image {name} not found")
        try:
            info = self.qemu_img.info(path, fmt=image_format(path))
        except QemuImgError as e:
            raise InvalidInput(f"{name} is not a readable disk image: {e}") from None
        try:
            check_upload(info)
        except InvalidInput as e:
            raise InvalidInput(f"image {name} cannot back a VM: {e}") from None
        return info["format"]

    def list_images(self) -> list[ImageInfo]:
        """Readable images sorted by name; hidden, partial, odd or unreadable files are skipped."""
        try:
            names = sorted(os.listdir(self.images_dir))
        except FileNotFoundError:
            return []
        images = []
        for name in names:
            if name.startswith("."):
                continue
            try:
                images.append(self.image_info(name))
            except (InvalidInput, NotFound):
                continue
        return images

    def delete_image(self, name):
        """Remove an image file; the caller checks that no VM uses it."""
        path = self.image_path(name)
        if not path.is_file():
            raise NotFound(f"image {name} not found")
        try:
            os.unlink(self.images_dir / name)  # a symlink itself, never its target
        except FileNotFoundError:
            raise NotFound(f"image {name} not found") from None
        with self._cache_lock:
            self._info_cache.pop(str(path), None)

    def upload_target(self) -> tuple[Path, BinaryIO]:
        """Open a fresh hidden temp file in images/ (read-write) to stream an upload into."""
        path = self.images_dir / f".upload-{secrets.token_hex(8)}{PARTIAL_SUFFIX}"
        # opened by path (not fdopen) so the file object's .name is the path
        handle = open(path, "x+b", opener=lambda p, flags: os.open(p, flags, 0o600))  # noqa: SIM115
        return path, handle

    def sweep_partials(self, max_age=PARTIAL_MAX_AGE) -> list[str]:
        """Delete upload and disk temp files older than max_age seconds (left by a process that
        died mid-write); returns their names."""
        swept = []
        limit = time.time() - max_age
        for folder, pattern in ((self.images_dir, _UPLOAD_TMP), (self.root / STAGING, _DISK_TMP)):
            try:
                entries = list(os.scandir(folder))
            except FileNotFoundError:
                continue
            for entry in entries:
                if not pattern.fullmatch(entry.name):
                    continue
                try:
                    if entry.stat(follow_symlinks=False).st_mtime < limit:
                        os.unlink(entry.path)
                        swept.append(entry.name)
                except FileNotFoundError:
                    continue
        return swept

    def save_upload(self, name, stream, max_bytes, chunk_size=1 << 20) -> ImageInfo:
        """Copy stream into images/<name> (at most max_bytes) and check qemu-img reads it."""
        self.image_path(name)
        if os.path.lexists(self.images_dir / name):
            raise InvalidInput(f"image {name} already exists")
        tmp, f = self.upload_target()
        try:
            with f:
                total = 0
                while chunk := stream.read(chunk_size):
                    total += len(chunk)
                    if total > max_bytes:
                        raise InvalidInput(f"image is larger than {_mb(max_bytes)} MB")
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self.commit_upload(name, tmp)

    def commit_upload(self, name, tmp) -> ImageInfo:
        """Check a finished upload_target() file and move it to images/<name>; never overwrites."""
        tmp = Path(tmp)
        if tmp.parent.resolve() != self.images_dir.resolve() or not _UPLOAD_TMP.fullmatch(tmp.name):
            raise InvalidInput(f"{tmp} is not an upload temp file")
        try:
            self.image_path(name)
            try:
                info = self.qemu_img.info(tmp, fmt=image_format(tmp))
            except QemuImgError as e:
                raise InvalidInput(f"not a readable disk image: {e}") from None
            check_upload(info)
            check_upload_content(name, info, _first_sector(tmp))
            os.chmod(tmp, 0o644)
            self._place(tmp, self.images_dir / name, f"image {name} already exists")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self.image_info(name)

    def _place(self, tmp: Path, final: Path, exists_msg: str):
        """Move tmp to final, refusing (InvalidInput) to replace an existing file."""
        try:
            os.link(tmp, final)  # atomic and fails if final exists, even across processes
        except FileExistsError:
            raise InvalidInput(exists_msg) from None
        except OSError:
            # filesystem without hard links: best effort, race-free within this process only
            with self._place_lock:
                if os.path.lexists(final):
                    raise InvalidInput(exists_msg) from None
                os.rename(tmp, final)
            return
        os.unlink(tmp)

    # --- VM disks -------------------------------------------------------------

    def create_disk(self, vm_id, image, log=lambda msg: None) -> Path:
        """Create vms/<vm_id>.qcow2 from an image: a thin overlay or a full copy."""
        self.disk_path(vm_id)
        final = self.vms_dir / f"{vm_id}.qcow2"
        base = self.image_path(image)
        if os.path.lexists(final):
            raise InvalidInput(f"a disk for VM {vm_id} already exists")
        fmt = self.checked_base_format(image)  # at use: the file may have changed since upload
        # Made in the controller's own staging folder, never in vms/: hosts write vms/ (as
        # nobody over NFS) and could swap a temp file there for a symlink that our chmod and
        # chown would follow. Staging sits beside vms/, so the relative backing path is the
        # same while qemu-img creates the disk and after the disk is linked into vms/.
        tmp = self._staging() / f"{vm_id}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}"
        if self.disk_mode == "overlay":
            # Relative, so the same file works at /export/iaas and at /mnt/iaas on hosts
            args = ["create", "-f", "qcow2", "-F", fmt, "-b", f"../images/{image}", "--", str(tmp)]
        else:
            args = ["convert", "-f", fmt, "-O", "qcow2", "--", str(base), str(tmp)]
        try:
            self.qemu_img.run(args, log)
            publish_mode(tmp)
            self._place(tmp, final, f"a disk for VM {vm_id} already exists")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        log(f"created {final}")
        return final

    def disk_backing(self, vm_id, image) -> list[tuple[str, str]]:
        """The backing chain of a VM's disk relative to the repository, read from its header
        afresh and checked against the VM's image: [("images/<image>", format)] for an
        overlay, [] for a full copy; OperationFailed when a host altered it."""
        path = self.disk_path(vm_id)
        if not path.is_file():
            raise NotFound(f"no disk for VM {vm_id}")
        info = self.read_header(path, f"disk vms/{vm_id}.qcow2")
        return backing_of(
            info, f"vms/{vm_id}.qcow2", image, lambda: self.checked_base_format(image)
        )

    def disk_size(self, vm_id) -> int:
        """The virtual size of a VM's disk, in bytes, read from its header."""
        path = self.disk_path(vm_id)
        if not path.is_file():
            raise NotFound(f"no disk for VM {vm_id}")
        return self.read_header(path, f"disk vms/{vm_id}.qcow2")["virtual-size"]

    def read_header(self, path, label) -> dict:
        """The checked fields of a VM disk's or a volume's qcow2 header, read afresh
        (app/adapters/qcow2_header.py: no process per read); OperationFailed when it is not
        one Nube can vouch for. label: the file as messages name it."""
        try:
            return qcow2_header.read(path)
        except (HeaderError, OSError) as e:
            raise OperationFailed(f"{label} is not a readable qcow2: {e}") from None
