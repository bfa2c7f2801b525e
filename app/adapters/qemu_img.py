"""Thin wrapper around the qemu-img command line (list args, never a shell)."""

import json
import shlex
import subprocess

from app.errors import InvalidInput, OperationFailed

# Uploads come from users: only formats without external references (no vmdk
# descriptors naming host files), and no backing or data files.
UPLOAD_FORMATS = ("qcow2", "raw")
# What an uploaded file's name promises: .img is the cloud images' habit for either format.
UPLOAD_EXTENSIONS = {".qcow2": ("qcow2",), ".raw": ("raw",), ".img": ("qcow2", "raw")}
SECTOR = 512
BOOT_SIGNATURE = b"\x55\xaa"  # the last two bytes of an MBR (GPT keeps a protective one)


class QemuImgError(OperationFailed):
    """qemu-img ran and exited non-zero (as opposed to not running at all or timing out)."""


class QemuImg:
    """Runs qemu-img with a timeout and turns failures into OperationFailed."""

    def __init__(self, binary="qemu-img", timeout=600):
        self.binary = binary
        self.timeout = timeout

    def run(self, args, log=None, prefix=(), pass_fds=()) -> str:
        """Run `qemu-img ARGS` (after prefix, e.g. a setpriv that drops privileges, with
        pass_fds open in it), logging the command line and stderr; return stdout."""
        cmd = [*prefix, self.binary, *args]
        if log:
            log("$ " + shlex.join(cmd))
        try:
            res = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
                pass_fds=pass_fds,
            )
        except subprocess.TimeoutExpired:
            raise OperationFailed(f"qemu-img {args[0]} timed out after {self.timeout}s") from None
        except OSError as e:
            raise OperationFailed(f"cannot run {self.binary}: {e}") from e
        if res.returncode != 0:
            detail = res.stderr.strip() or f"exit status {res.returncode}"
            if log:
                log(detail)
            raise QemuImgError(f"qemu-img {args[0]} failed: {detail}")
        return res.stdout

    def info(self, path, fmt=None) -> dict:
        """`qemu-img info --output=json` of one file (never its backing chain); fmt: the
        format it must have (no probing)."""
        # -U: a running VM may hold the image's lock; we only read the header
        forced = ["-f", fmt] if fmt else []
        out = self.run(["info", "--output=json", "-U", *forced, "--", str(path)])
        try:
            return json.loads(out)
        except ValueError as e:
            raise OperationFailed(f"qemu-img info returned bad JSON: {e}") from e


# the magic of image formats Nube does not take, so that one is named rather than read as raw
FOREIGN_MAGIC = {
    b"KDMV": "vmdk",
    b"# Disk DescriptorFile": "vmdk",
    b"conectix": "vpc",
    b"vhdxfile": "vhdx",
    b"QED\x00": "qed",
    b"<<< Oracle VM VirtualBox Disk Image >>>": "vdi",
}


def image_format(path) -> str:
    """The format Nube reads an image file as: qcow2 when it starts with qcow2's magic, else
    raw; InvalidInput for another format's magic. Never qemu-img's probing, which for some
    formats (a VMDK descriptor) opens whatever files the image names, as the controller's
    user."""
    with open(path, "rb") as handle:
        head = handle.read(64)
    if head.startswith(b"QFI\xfb"):
        return "qcow2"
    for magic, name in FOREIGN_MAGIC.items():
        if head.startswith(magic):
            raise InvalidInput(
                f"unsupported image format {name}: only qcow2 and raw are accepted"
                " (qemu-img convert -O qcow2 makes one)"
            )
    return "raw"


def check_upload(info: dict):
    """Refuse uploaded images that could make QEMU read files other than themselves."""
    fmt = info.get("format")
    if fmt not in UPLOAD_FORMATS:
        raise InvalidInput(
            f"unsupported image format {fmt!r}: upload {' or '.join(UPLOAD_FORMATS)}"
        )
    if "backing-filename" in info or "full-backing-filename" in info:
        raise InvalidInput("images with a backing file are not accepted")
    if ((info.get("format-specific") or {}).get("data") or {}).get("data-file"):
        raise InvalidInput("images with an external data file are not accepted")
    if not info.get("virtual-size"):
        raise InvalidInput("image is empty")


def check_upload_name(name: str) -> str:
    """Refuse an upload's name whose extension does not say it is a disk image."""
    if not name.lower().endswith(tuple(UPLOAD_EXTENSIONS)):
        raise InvalidInput(
            f"image name {name!r:.80} must end in {', '.join(UPLOAD_EXTENSIONS)}:"
            " the extension says what the file holds"
        )
    return name


def check_upload_content(name: str, info: dict, first_sector: bytes):
    """Refuse an upload whose detected format disagrees with its name, or a raw file a VM
    could not boot: no partition table or boot sector in its first sector."""
    fmt = info.get("format")
    extension = "." + name.rsplit(".", 1)[-1].lower()
    if fmt not in UPLOAD_EXTENSIONS.get(extension, ()):
        what = "raw bytes, not a qcow2 image" if fmt == "raw" else f"a {fmt} image"
        raise InvalidInput(f"{name} holds {what}: its name ends in {extension}")
    if fmt == "raw" and (len(first_sector) < SECTOR or first_sector[510:512] != BOOT_SIGNATURE):
        raise InvalidInput(
            f"{name} is raw data with no partition table or boot sector (its first sector does"
            " not end in 55 AA): a VM could not boot from it"
        )
