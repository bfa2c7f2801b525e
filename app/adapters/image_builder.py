"""Builds a bootable Debian guest image (cloud kernel, cloud-init, SSH, guest agent, GRUB on the
serial console) as a compressed qcow2, without loop devices: mmdebstrap makes the tree,
`mkfs.ext4 -d` writes it into the raw disk's partition, GRUB's images are written by hand."""

import contextlib
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from app.adapters.commands import CommandRunner
from app.errors import OperationFailed

PACKAGES = (
    "linux-image-cloud-amd64",
    "systemd-sysv",
    # logind needs D-Bus: without it the power button (ACPI) is ignored and `shutdown`, which
    # the guest agent runs, fails, so a graceful stop could only end forced off
    "dbus",
    "libpam-systemd",
    "cloud-init",
    "openssh-server",
    "qemu-guest-agent",
    "ifupdown",
    "isc-dhcp-client",
    "netbase",
    "udev",
    "sudo",
    "iproute2",
    "iputils-ping",  # what an owner tries first on a VM's network
)
TOOLS = {  # command -> the Debian package that has it
    "mmdebstrap": "mmdebstrap",
    "sfdisk": "fdisk",
    "mkfs.ext4": "e2fsprogs",
    "grub-mkimage": "grub-pc-bin",
    "qemu-img": "qemu-utils",
}
GRUB_DIR = "/usr/lib/grub/i386-pc"
SECTOR = 512
PART_START = 2048  # sectors: the partition starts at 1 MiB, GRUB's core.img fits before it
MIN_FREE = 2 << 30  # the tree, the raw disk's used blocks and the qcow2, with room to spare
UNSTABLE = ("sid", "unstable", "experimental")  # no -updates or -security suites
SUFFIXES = ("", "-updates", "-security", "-backports", "-proposed-updates")  # Debian's own
STEPS = 5

GRUB_CFG = """\
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
menuentry "Debian GNU/Linux ({release})" {{
  insmod part_msdos
  insmod ext2
  search --no-floppy --fs-uuid --set=root {uuid}
  linux /vmlinuz root=UUID={uuid} ro console=tty0 console=ttyS0,115200n8
  initrd /initrd.img
}}
"""
CLOUD_CFG = """\
# Nube's image builder: a VM's first-boot data comes from its NoCloud seed (volume cidata).
datasource_list: [ NoCloud, None ]
# C.UTF-8 needs no generated locale (the image has no locales package)
locale: C.UTF-8
"""


def _mounts_below(folder):
    """Mount points under folder, deepest first."""
    prefix = str(folder).rstrip("/") + "/"
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        # the fifth field, with spaces and the like escaped as octal (\040)
        points = [
            re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            for line in handle
        ]
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


def remove_folder(folder):
    """Delete a build folder; first unmount what a killed mmdebstrap left mounted in its tree
    (/proc, /sys, /dev/pts), so deleting never reaches into the host's own."""
    folder = Path(folder).resolve()  # mountinfo names real paths, never through a symlink
    for point in _mounts_below(folder):
        subprocess.run(
            ["umount", "--lazy", "--", point], capture_output=True, timeout=60, check=False
        )
    left = _mounts_below(folder)
    if left:
        raise OperationFailed(f"{left[0]} is still mounted: {folder} left in place")
    if folder.exists():
        shutil.rmtree(folder)


def _suites(suites, host_codename, release):
    """A host sources entry's suites for another release, or None when it is not Debian's
    (a third party's bookworm-pgdg is not: its packages are no business of a guest image)."""
    words = suites.split()
    ours = [s for s in words if s.startswith(host_codename) and s[len(host_codename) :] in SUFFIXES]
    if not ours:
        return None
    mapped = [release + s[len(host_codename) :] for s in ours]
    return [s for s in mapped if s == release] if release in UNSTABLE else mapped


def _stanzas(text):
    """deb822 stanzas as dicts (lower-case keys; comments dropped)."""
    stanzas, current, key = [], {}, None
    for line in text.splitlines() + [""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
        elif line[0].isspace() and key:
            current[key] += " " + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            current[key] = value.strip()
    return stanzas


def _public_uri(uri):
    """The URI when it carries no credentials (they would land in the operation's log and in
    every VM's sources.list), else None."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    return None if parts.username or parts.password else uri


def _deb822_entries(text, codename, release):
    """One-line `deb` entries of a deb822 .sources file's enabled Debian stanzas, moved to
    release."""
    found = []
    for stanza in _stanzas(text):
        if "deb" not in stanza.get("types", "").split() or stanza.get("enabled") == "no":
            continue
        suites = _suites(stanza.get("suites", ""), codename, release)
        keyring = stanza.get("signed-by", "")
        # a keyring file; a key embedded in the stanza is left to mmdebstrap's own search
        options = f"[signed-by={keyring}] " if keyring and " " not in keyring else ""
        components = stanza.get("components", "main")
        uris = [u for u in stanza.get("uris", "").split() if _public_uri(u)] if suites else []
        for uri in uris:
            found += [f"deb {options}{uri} {suite} {components}" for suite in suites]
    return found


def _list_entries(text, codename, release):
    """One-line `deb` entries of a sources.list's Debian lines, moved to release."""
    found = []
    for line in text.splitlines():
        match = re.match(r"^deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.+)$", line.strip())
        suites = _suites(match.group(3), codename, release) if match else None
        if suites and _public_uri(match.group(2)):
            options = _signed_by(match.group(1) or "")
            found.append(f"deb {options}{match.group(2)} {suites[0]} {match[4]}")
    return found


def _signed_by(options):
    """Of a one-line entry's [options], only signed-by (never trusted=yes and the like)."""
    keep = [o for o in options.strip("[] \t").split() if o.startswith("signed-by=")]
    return f"[{' '.join(keep)}] " if keep else ""


def _read(path):
    """A text file's contents, or "" when it cannot be read."""
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _host_codename(os_release):
    """VERSION_CODENAME of the machine's /etc/os-release (None when it does not say)."""
    with contextlib.suppress(OSError):
        for line in Path(os_release).read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"') or None
    return None


def _write(tree, relative, text, mode=0o644):
    """Write a file in the tree, replacing whatever is there (never following a symlink out
    of the tree: a link would otherwise land the write on the build machine's own file)."""
    path = tree / relative
    root, parent = tree.resolve(), path.parent.resolve()
    if parent != root and root not in parent.parents:
        raise OperationFailed(f"{relative} lies outside the image tree")
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with open(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)  # whatever the umask


class ImageBuilder:
    """The recipe; every command goes through the runner (a fake in unit tests)."""

    def __init__(
        self, runner=None, grub_dir=GRUB_DIR, apt_dir="/etc/apt", os_release="/etc/os-release"
    ):
        self.runner = runner or CommandRunner()
        self.grub_dir = Path(grub_dir)
        self.apt_dir = Path(apt_dir)
        self.os_release = os_release

    def mirrors(self, release):
        """The machine's configured Debian apt sources, moved to release, as one-line entries
        (mmdebstrap takes each as a MIRROR); [] leaves mmdebstrap its own default mirror."""
        codename = _host_codename(self.os_release)
        if not codename:
            return []
        entries = []
        for path in sorted(self.apt_dir.glob("sources.list.d/*.sources")):
            entries += _deb822_entries(_read(path), codename, release)
        for path in [
            self.apt_dir / "sources.list",
            *sorted(self.apt_dir.glob("sources.list.d/*.list")),
        ]:
            entries += _list_entries(_read(path), codename, release)
        return list(dict.fromkeys(entries))

    def check_ready(self, folder):
        """Refuse early, with what to install, when a tool or GRUB's images are missing."""
        missing = self.runner.missing(list(TOOLS))
        if missing:
            packages = " ".join(sorted({TOOLS[tool] for tool in missing}))
            raise OperationFailed(
                f"missing {', '.join(missing)}: install the Debian packages {packages}"
            )
        if not (self.grub_dir / "boot.img").is_file():
            raise OperationFailed(f"no {self.grub_dir}/boot.img: install grub-pc-bin")
        free = shutil.disk_usage(folder).free
        if free < MIN_FREE:
            raise OperationFailed(f"only {free >> 20} MiB free in {folder}: a build needs 2 GiB")

    def build(self, release, size, folder, out, *, log, check, progress=lambda done, total: None):
        """Build a bootable image of release, size bytes, as compressed qcow2 at out, working
        in folder (which the caller removes whatever happens)."""
        folder = Path(folder)
        self.check_ready(folder)
        tree, raw = folder / "tree", folder / "disk.raw"
        root_uuid = str(uuid.uuid4())
        progress(0, STEPS)
        self.bootstrap(release, tree, folder, log, check)
        progress(1, STEPS)
        self.configure(tree, release, root_uuid, log)
        progress(2, STEPS)
        self.make_disk(tree, raw, size, root_uuid, log, check)
        remove_folder(tree)  # in the disk now; frees half a gigabyte before compressing
        progress(3, STEPS)
        self.install_grub(raw, folder, log, check)
        progress(4, STEPS)
        self.runner.run(
            ["qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", "--", str(raw), str(out)],
            log=log,
            check=check,
        )
        progress(5, STEPS)

    def bootstrap(self, release, tree, folder, log, check):
        """mmdebstrap a minimal Debian tree of release with the image's packages."""
        mirrors = self.mirrors(release)
        log(f"apt sources: {'; '.join(mirrors) if mirrors else 'mmdebstrap default'}")
        scratch = folder / "tmp"
        scratch.mkdir(mode=0o700, exist_ok=True)
        args = [
            "mmdebstrap",
            "--mode=root",  # as root, so the tree's files have their real owners
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            "--",  # options end here: a release or a mirror line is never read as one
            release,
            str(tree),
            *mirrors,
        ]
        # its scratch files in our folder, so they go when the folder goes
        self.runner.run(args, log=log, check=check, env={"TMPDIR": str(scratch)})

    def configure(self, tree, release, root_uuid, log):
        """Make the tree a VM image: fstab, no identity of its own, cloud-init, GRUB's files."""
        log(f"configuring the tree (root filesystem UUID {root_uuid})")
        _write(tree, "etc/fstab", f"UUID={root_uuid} / ext4 errors=remount-ro 0 1\n")
        _write(tree, "etc/hostname", "debian\n")  # cloud-init sets the VM's own
        _write(tree, "etc/machine-id", "", 0o444)  # empty: systemd makes one at first boot
        _write(tree, "etc/resolv.conf", "")  # not the build machine's resolver
        # each VM must get its own SSH host keys: cloud-init makes them at first boot
        for key in (tree / "etc/ssh").glob("ssh_host_*"):
            key.unlink()
        _write(tree, "etc/cloud/cloud.cfg.d/90_nube.cfg", CLOUD_CFG)
        modules = tree / "boot/grub/i386-pc"
        modules.mkdir(parents=True, exist_ok=True)
        for source in self.grub_dir.iterdir():
            if source.suffix in (".mod", ".lst"):
                shutil.copyfile(source, modules / source.name)
        _write(tree, "boot/grub/grub.cfg", GRUB_CFG.format(release=release, uuid=root_uuid))

    def make_disk(self, tree, raw, size, root_uuid, log, check):
        """A raw disk of size bytes: an msdos label with one bootable partition at 1 MiB that
        holds the tree as ext4 (mkfs.ext4 -d, so no loop device is needed)."""
        with open(raw, "wb") as handle:
            handle.truncate(size)  # sparse
        self.runner.run(
            ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--", str(raw)],
            log=log,
            check=check,
            stdin_text=f"label: dos\nstart={PART_START}, type=83, bootable\n",
        )
        offset = PART_START * SECTOR
        self.runner.run(
            ["mkfs.ext4", "-q", "-F", "-d", str(tree), "-E", f"offset={offset}"]
            + ["-U", root_uuid, "-L", "root", "--", str(raw), f"{(size - offset) // 1024}k"],
            log=log,
            check=check,
        )

    def install_grub(self, raw, folder, log, check):
        """GRUB without grub-install: boot.img's code in the MBR, core.img right after it."""
        core = folder / "core.img"
        self.runner.run(
            ["grub-mkimage", "-O", "i386-pc", "-o", str(core), "-p", "(hd0,msdos1)/boot/grub"]
            + ["--", "biosdisk", "part_msdos", "ext2"],
            log=log,
            check=check,
        )
        code = (self.grub_dir / "boot.img").read_bytes()[:440]  # up to the partition table
        image = core.read_bytes()
        if len(image) > (PART_START - 1) * SECTOR:
            raise OperationFailed(f"GRUB's core.img ({len(image)} bytes) does not fit before 1 MiB")
        with open(raw, "r+b") as disk:
            disk.write(code)
            disk.seek(SECTOR)
            disk.write(image)
        log(f"GRUB written: boot.img code in the MBR, core.img ({len(image)} bytes) from sector 1")
